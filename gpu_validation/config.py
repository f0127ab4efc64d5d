"""Run configuration (a frozen dataclass) and the command-line parser over it.

Glossary (code name -> symbol in the docs): ``lr`` η (the initial learning
rate), ``momentum`` γ, ``weight_decay`` λ, ``lr_gamma`` the factor of each
step-decay drop, ``rescale_log2`` R (the no-WD runs' stored weights stay
within [1, 2^R) times the WD run's).

The defaults are the paper's CIFAR-10 setting (docs/paper.md): PreResNet32, η = 0.1, γ = 0.9, λ = 5e-4, batch 128, 160 epochs,
η divided by 10 at epochs 80 and 120 (milestones scaled with ``epochs``).

Recipes (all from one θ_0, one batch order, one augmentation stream):

- ``a``: step decay with weight decay: stock ``SGD(weight_decay=λ)`` +
  stock ``MultiStepLR`` stepped per epoch;
- ``b``: the exactly equivalent no-WD schedule, ``equivalence.convert(...,
  form="general")`` (general theorem);
- ``c``: TEXP, ``equivalence.convert(..., form="texp")`` (tapered
  exponential, exact with the momentum-buffer corrections).

``SMOKE`` holds the CPU smoke mode's overrides: real CIFAR-10 images (2048
train, 1024 test), a narrower and shallower PreResNet8 of width 4 (for speed
on two CPU cores: float64 convolutions have no fast CPU kernel), batch 32
for 4 epochs (256 steps, LR drops at steps 128 and 192), float64 and BN eps
1e-30 (exact invariance), one CPU thread (robust on a shared machine). The
optimiser settings stay the paper's. With λ = 5e-4, 1/c_t only reaches
about 1.07 in 256 steps, so the power-of-two rescaling does not fire in the
smoke run (it does, twice, in the full run; the library's tests cover it);
a larger λ makes it fire but also raises the effective learning rate, and
the float64 rounding noise then grows chaotically to within a factor 2 of
the 1e-10 tolerance.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "SMOKE", "RECIPES", "build_parser", "parse_config"]

RECIPES = ("a", "b", "c")
DTYPES = ("float32", "float64")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} = {value!r} is outside the valid range [{lo}, inf)")
    return value


@dataclass(frozen=True)
class Config:
    """Settings of one invocation (every seed and recipe shares them).

    Raises ``ValueError`` (``TypeError`` for a wrong type) naming the field,
    its value and the valid range.
    """

    smoke: bool = False
    device: str | None = None  # None: cuda when available, else cpu
    data: str | None = None  # None: see data.default_data_path
    download: bool = False
    out: str = "out/gpu_validation"
    cache_dir: str | None = None  # None: <repo>/data/cache (git-ignored)
    epochs: int = 160
    milestone_fractions: tuple[float, ...] = (0.5, 0.75)  # epochs 80 and 120 of 160
    seeds: tuple[int, ...] = (0,)
    recipes: tuple[str, ...] = RECIPES
    dtype: str = "float32"
    amp: bool = False
    compile: bool = False
    compile_mode: str = "default"
    channels_last: bool | None = None  # None: on CUDA only
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_gamma: float = 0.1
    batch_size: int = 128
    depth: int = 32
    width: int = 16
    bn_eps: float = 1e-5
    rescale_log2: float = 16.0
    n_train: int | None = None  # None: all 50,000
    n_test: int | None = None  # None: all 10,000
    subset_seed: int = 0
    probe_size: int = 256
    eval_batch: int = 1000
    check_every: int = 0  # steps between parameter checks; 0: once per epoch
    exact_check: bool = False  # fail unless b and c equal a/c_t to `tolerance`
    tolerance: float = 1e-10
    num_threads: int | None = None  # CPU threads during the run; None: leave torch's setting
    progress: bool = True
    monitor: bool = False  # attach equivalence.Monitor to every recipe (logs in out/monitor_seed*)
    milestones: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.recipes, str):
            object.__setattr__(self, "recipes", tuple(r.strip() for r in self.recipes.split(",")))
        for name in ("recipes", "seeds", "milestone_fractions"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _int("epochs", self.epochs, 1)
        _int("batch_size", self.batch_size, 1)
        _int("width", self.width, 1)
        _int("probe_size", self.probe_size, 2)
        _int("eval_batch", self.eval_batch, 1)
        _int("check_every", self.check_every, 0)
        _int("subset_seed", self.subset_seed, 0)
        if self.depth < 8 or (_int("depth", self.depth, 8) - 2) % 6:
            raise ValueError(
                f"depth = {self.depth!r} must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...)"
            )
        for name in ("n_train", "n_test", "num_threads"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), 1)
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device = {self.device!r} is not one of 'cpu', 'cuda'")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype = {self.dtype!r} is not one of {DTYPES}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode = {self.compile_mode!r} is not one of {COMPILE_MODES}")
        if self.amp and self.dtype == "float64":
            raise ValueError(
                "amp = True (bf16 autocast) with dtype = 'float64' makes no sense; use float32"
            )
        if self.amp and self.exact_check:
            raise ValueError(
                "amp = True breaks the exact check (exact_check = True); drop one of them"
            )
        if not isinstance(self.seeds, tuple) or not self.seeds:
            raise ValueError(f"seeds = {self.seeds!r} must be a non-empty tuple of integers >= 0")
        for s in self.seeds:
            _int("seeds[i]", s, 0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds = {self.seeds!r} holds a duplicate")
        if not isinstance(self.recipes, tuple) or not self.recipes:
            raise ValueError(f"recipes = {self.recipes!r} must be a non-empty subset of {RECIPES}")
        bad = [r for r in self.recipes if r not in RECIPES]
        if bad or len(set(self.recipes)) != len(self.recipes):
            raise ValueError(
                f"recipes = {','.join(map(str, self.recipes))!r}: each must be one of "
                f"{','.join(RECIPES)} and appear once"
            )
        if self.exact_check and ("a" not in self.recipes or len(self.recipes) < 2):
            raise ValueError(
                f"exact_check needs recipe a and at least one of b, c; got {self.recipes!r}"
            )
        lr = _real("lr", self.lr)
        if lr <= 0:
            raise ValueError(f"lr = {self.lr!r} must be > 0")
        g = _real("momentum", self.momentum)
        if not 0 <= g < 1:
            raise ValueError(f"momentum = {self.momentum!r} is outside the valid range [0, 1)")
        wd = _real("weight_decay", self.weight_decay)
        if wd <= 0:
            raise ValueError(
                f"weight_decay = {self.weight_decay!r} must be > 0 (the theorem maps WD away)"
            )
        if lr * wd > (1 - math.sqrt(g)) ** 2 and "c" in self.recipes:
            raise ValueError(
                f"lr * weight_decay = {lr * wd:.6g} exceeds (1 - sqrt(momentum))**2 = "
                f"{(1 - math.sqrt(g)) ** 2:.6g}: TEXP (recipe c) has no real root α"
            )
        lg = _real("lr_gamma", self.lr_gamma)
        if not 0 < lg <= 1:
            raise ValueError(f"lr_gamma = {self.lr_gamma!r} is outside the valid range (0, 1]")
        if not _real("bn_eps", self.bn_eps) > 0:
            raise ValueError(f"bn_eps = {self.bn_eps!r} must be > 0")
        if not 1 <= _real("rescale_log2", self.rescale_log2) <= 512:
            raise ValueError(
                f"rescale_log2 = {self.rescale_log2!r} is outside the valid range [1, 512]"
            )
        if not _real("tolerance", self.tolerance) > 0:
            raise ValueError(f"tolerance = {self.tolerance!r} must be > 0")
        fr = tuple(_real("milestone_fractions[i]", f) for f in self.milestone_fractions)
        if any(not 0 < f < 1 for f in fr) or list(fr) != sorted(set(fr)):
            raise ValueError(
                f"milestone_fractions = {self.milestone_fractions!r} must be increasing, each in (0, 1)"
            )
        ms = sorted({round(f * self.epochs) for f in fr} - {0, self.epochs})
        object.__setattr__(self, "milestones", tuple(ms))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


SMOKE: dict[str, Any] = dict(
    smoke=True,
    n_train=2048,
    n_test=1024,
    depth=8,
    width=4,
    batch_size=32,
    epochs=4,
    dtype="float64",
    bn_eps=1e-30,
    probe_size=128,
    eval_batch=128,
    check_every=1,
    exact_check=True,
    num_threads=1,
)
"""Overrides of the CPU smoke mode (see the module docstring); explicit arguments win."""


def _csv_recipes(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in RECIPES]
    if not parts or bad or len(set(parts)) != len(parts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a comma-separated subset of {','.join(RECIPES)}, each once (e.g. a,b)"
        )
    return parts


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    S = argparse.SUPPRESS
    p = argparse.ArgumentParser(
        prog="python -m gpu_validation",
        description=(
            "Li & Arora (ICLR 2020) at CIFAR-10 scale: step decay with weight decay (a), its exact "
            "no-WD exponential-LR equivalent (b) and TEXP (c) from one initialisation and one batch "
            "stream, with a JSON record and plots. --smoke: the same code on a CPU-sized problem in "
            "float64, checking b and c against a to 1e-10."
        ),
        argument_default=S,
    )
    p.add_argument(
        "--smoke", action="store_true", help="CPU smoke mode (small, float64, exact check)"
    )
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--data", help="cifar10_jpeg.npz or a directory holding cifar-10-batches-py")
    p.add_argument(
        "--download",
        action="store_true",
        help="fetch CIFAR-10 (standard archive + published MD5, or torchvision where it imports) "
        "into --data (a directory) or the cache folder",
    )
    p.add_argument("--out", help="output directory (default out/gpu_validation)")
    p.add_argument("--cache-dir", dest="cache_dir", help="where decoded images are cached")
    p.add_argument(
        "--epochs", type=_positive_int, help="epochs (milestones at 1/2 and 3/4 of them)"
    )
    p.add_argument("--seeds", type=_nonneg_int, nargs="+", help="one run per seed (default 0)")
    p.add_argument(
        "--recipes", type=_csv_recipes, help="comma-separated subset of a,b,c (default all)"
    )
    p.add_argument("--dtype", choices=DTYPES)
    p.add_argument("--amp", action="store_true", help="bf16 autocast for the forward pass (CUDA)")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the training forward/backward"
    )
    p.add_argument("--compile-mode", dest="compile_mode", choices=COMPILE_MODES)
    p.add_argument("--channels-last", dest="channels_last", action=argparse.BooleanOptionalAction)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int)
    p.add_argument("--depth", type=_positive_int, help="6n + 2 (32: PreResNet32)")
    p.add_argument("--width", type=_positive_int)
    p.add_argument("--bn-eps", dest="bn_eps", type=float)
    p.add_argument("--rescale-log2", dest="rescale_log2", type=float)
    p.add_argument("--n-train", dest="n_train", type=_positive_int)
    p.add_argument("--n-test", dest="n_test", type=_positive_int)
    p.add_argument("--check-every", dest="check_every", type=_nonneg_int)
    p.add_argument("--tolerance", type=float)
    p.add_argument("--threads", dest="num_threads", type=_positive_int)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument(
        "--monitor",
        action="store_true",
        help="attach the effective-LR/equilibrium monitor to every recipe (CSV, JSON, plots)",
    )
    return p


def parse_config(argv: list[str] | None = None) -> Config:
    """Parse ``argv`` into a :class:`Config`; errors exit with status 2 and a message naming the argument."""
    parser = build_parser()
    ns = vars(parser.parse_args(argv))
    given = dict(ns)
    if "seeds" in given:
        given["seeds"] = tuple(given["seeds"])
    base: dict[str, Any] = dict(SMOKE) if given.get("smoke") else {}
    base.update(given)
    if base.get("smoke") and "device" not in given:
        base["device"] = "cpu"
    try:
        return Config(**base)
    except (TypeError, ValueError) as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits
