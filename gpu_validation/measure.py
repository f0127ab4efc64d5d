"""Measurements of the recipes trained by :mod:`gpu_validation.train`.

- the relative parameter error max_i ‖θ_r,i / m_t − θ_a,i‖ / ‖θ_a,i‖ over the conv tensors i
  (:func:`param_errors`, as device tensors: no host sync per step);
- outputs on a fixed probe batch in training mode (batch statistics, the running ones left
  alone) and in eval mode (:func:`probe_outputs`);
- eval-mode loss and accuracy (:func:`evaluate`), squared weight norms, the angle between
  successive weights;
- the invariance of the initial network to a joint scaling of its convs, with its negative
  control (:func:`invariance_check`), and ``equivalence.audit``'s agreement with the conv
  weights and BN modules (:func:`audit_check`).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from equivalence import audit

from .model import conv_weights, norm_layers
from .recipes import Recipe

__all__ = [
    "audit_check",
    "autocast",
    "batch_stats_no_update",
    "evaluate",
    "invariance_check",
    "logits",
    "param_errors",
    "probe_outputs",
    "rel",
]


@contextlib.contextmanager
def batch_stats_no_update(model: nn.Module) -> Iterator[None]:
    """Training-mode forward (batch statistics) that leaves the running statistics alone."""
    bns = norm_layers(model)
    was_training = model.training
    saved = [m.track_running_stats for m in bns]
    model.train()
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, s in zip(bns, saved):
            m.track_running_stats = s
        model.train(was_training)


def probe_outputs(
    model: nn.Module, x: torch.Tensor, amp: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training-mode, eval-mode) outputs on ``x``, as float64, no side effects."""
    with torch.no_grad(), autocast(x.device, amp):
        with batch_stats_no_update(model):
            train_out = model(x).double()
        was = model.training
        model.eval()
        eval_out = model(x).double()
        model.train(was)
    return train_out, eval_out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-300))


def param_errors(rec: Recipe, ref: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """(max over tensors, joint) relative error of θ_rec / m against θ_ref, as 0-d device tensors."""
    m = rec.scale()
    with torch.no_grad():
        diffs = [
            torch.linalg.vector_norm(p.double() / m - q.double())
            for p, q in zip(rec.params, ref.params)
        ]
        norms = [torch.linalg.vector_norm(q.double()) for q in ref.params]
        d, n = torch.stack(diffs), torch.stack(norms)
        per = (d / n.clamp_min(1e-300)).max()
        joint = torch.linalg.vector_norm(d) / torch.linalg.vector_norm(n).clamp_min(1e-300)
    return per, joint


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, amp: bool
) -> tuple[float, float]:
    """Eval-mode (running statistics) mean loss and accuracy on (x, y)."""
    was = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad(), autocast(x.device, amp):
        for s in range(0, x.shape[0], batch):
            out = logits(model(x[s : s + batch]))
            yb = y[s : s + batch]
            loss += F.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
    model.train(was)
    n = x.shape[0]
    return float(loss) / n, float(correct) / n


def sq_norm(params: list[torch.Tensor]) -> float:
    with torch.no_grad():
        return float(sum(torch.linalg.vector_norm(p.double()) ** 2 for p in params))


def angle_deg(prev: list[torch.Tensor], cur: list[torch.Tensor]) -> float:
    with torch.no_grad():
        dot = sum((p.double() * q.double()).sum() for p, q in zip(prev, cur))
        na = math.sqrt(sum(float(torch.linalg.vector_norm(p.double()) ** 2) for p in prev))
        nb = math.sqrt(sum(float(torch.linalg.vector_norm(q.double()) ** 2) for q in cur))
        cos = max(-1.0, min(1.0, float(dot) / (na * nb)))
    return math.degrees(math.acos(cos))


def logits(out: torch.Tensor) -> torch.Tensor:
    """bf16 autocast outputs -> float32 for the loss; float32/float64 outputs unchanged."""
    return out if out.dtype in (torch.float32, torch.float64) else out.float()


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def invariance_check(model: nn.Module, x: torch.Tensor, factor: float = 3.0) -> dict[str, float]:
    """Relative output change when all convs are scaled by ``factor`` (≈ 0), and when only the stem is (> 0).

    The second number is the negative control: no single conv is invariant on its own.
    """
    ref, _ = probe_outputs(model, x, False)
    out = {}
    for label, which in (("all_convs", "all"), ("stem_only_negative_control", "stem")):
        m = copy.deepcopy(model)
        ws = conv_weights(m) if which == "all" else [m.stem.weight]  # type: ignore[union-attr]
        with torch.no_grad():
            for w in ws:
                w.mul_(factor)
        scaled, _ = probe_outputs(m, x, False)
        out[label] = rel(scaled, ref)
    return out


def audit_check(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Compare ``equivalence.audit``'s invariant set and norm layers with the conv weights and BN modules."""
    m = copy.deepcopy(model)
    report = audit(m, x)
    inv = _flatten(report.invariant_parameters())
    norms = _flatten(report.norm_layers())
    names = {id(p): n for n, p in m.named_parameters()}
    want = {n for n, p in m.named_parameters() if p.requires_grad}
    got = {
        (x if isinstance(x, str) else names.get(id(x), f"<unknown {type(x).__name__}>"))
        for x in inv
    }
    bn_names = {id(mod): n for n, mod in m.named_modules()}
    want_bn = {bn_names[id(b)] for b in norm_layers(m)}
    got_bn = {
        (b if isinstance(b, str) else bn_names.get(id(b), f"<unknown {type(b).__name__}>"))
        for b in norms
    }
    return {
        "available": True,
        "used": "equivalence.audit",
        "invariant_agrees": got == want,
        "norm_layers_agree": got_bn == want_bn,
        "missing": sorted(want - got),
        "unexpected": sorted(got - want),
        "n_invariant": len(got),
    }


def _flatten(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple, set)) or (
        hasattr(obj, "__iter__") and not isinstance(obj, (str, torch.Tensor, nn.Module))
    ):
        out: list[Any] = []
        for o in obj:
            out.extend(_flatten(o))
        return out
    return [obj]
