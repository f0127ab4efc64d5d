"""A converter's state, saved inside its optimizer's ``state_dict`` and restored on load.

The converters drive a stock optimizer through step hooks; their own state (the scale
sequence, step count, moment factors) must travel with the optimizer's checkpoint, so that
``torch.save({"opt": opt.state_dict(), ...})`` and ``opt.load_state_dict(...)`` resume a
converted run bit-identically. :class:`StateDictHooks` registers the three hooks that do it.
"""

from __future__ import annotations

from typing import Any

from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

__all__ = ["StateDictHooks"]


class StateDictHooks:
    """Mixin: the converter's ``state_dict()`` rides in the optimizer's under ``STATE_KEY``.

    Subclasses set ``STATE_KEY`` and ``SCALE_NAME`` (what a resume without it would lose, for
    the error message) and define ``state_dict()`` / ``load_state_dict(state)``.
    """

    STATE_KEY: str = ""
    SCALE_NAME: str = "the scale"
    _loaded: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _register_state_dict_hooks(self, optimizer: Optimizer) -> list[RemovableHandle]:
        return [
            optimizer.register_state_dict_post_hook(self._save_hook),
            optimizer.register_load_state_dict_pre_hook(self._load_pre_hook),
            optimizer.register_load_state_dict_post_hook(self._load_post_hook),
        ]

    def _save_hook(self, opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        state_dict[self.STATE_KEY] = self.state_dict()
        return state_dict

    def _load_pre_hook(self, opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
        if self.STATE_KEY not in state_dict:
            raise ValueError(
                f"this optimizer is driven by {type(self).__name__} and the checkpoint has no "
                f"'{self.STATE_KEY}' entry (a stock optimizer's state_dict): resuming it would "
                f"lose {self.SCALE_NAME}; save with this optimizer's state_dict()"
            )
        state_dict = dict(state_dict)
        self._loaded = state_dict.pop(self.STATE_KEY)
        return state_dict

    def _load_post_hook(self, opt: Optimizer) -> None:
        if self._loaded is not None:
            self.load_state_dict(self._loaded)
            self._loaded = None
