"""Stock AdamW + stock schedulers ≡ stock Adam without weight decay, driven by convert_adamw.

The reference side is always ``torch.optim.AdamW(weight_decay=λ)`` with PyTorch's own
schedulers; the converted side is a stock ``torch.optim.Adam`` whose hyper-parameters the
converter sets per step (equivalence/torch_adamw.py, derived in proofs/adamw.py).

Error model (float64 trajectories): both runs round differently at every step and the
training dynamics amplify those differences, so the converted run is judged against the
stock run's own measured noise floor: the largest relative distance, over the run, between
the stock run and a twin of it started from weights nudged by one ulp (every trainable
weight moved to its next float) and nudged again by four ulps, in a random direction per
weight and per Adam buffer entry, after every step: the initial nudge measures how the dynamics amplify a
perturbation, the per-step one measures the rounding the converted run adds at every
step (its linear error model: about one ulp per weight per step). A correct map must
stay within 3× that floor; a wrong one (the LR-only negative control) is off by orders
of magnitude more.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import mpmath
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR

import equivalence
from equivalence.torch_adamw import (
    AdamWEquivalence,
    adamw_equivalent_schedule,
    adamw_step_params,
    convert_adamw,
)

torch.set_num_threads(1)

EPS_BN = 1e-300  # BatchNorm's eps breaks invariance; at 1e-300 it is below float64 rounding


class BNNet(nn.Module):
    """Linear(no bias) → BN → ReLU, ``depth`` times, then a linear head.

    No bias before a BN: its exact gradient is zero, and Adam divides that rounding
    noise by its own square root (an O(η) step driven by rounding alone).
    """

    def __init__(self, d_in: int, width: int, depth: int, d_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(depth):
            layers += [nn.Linear(d, width, bias=False), nn.BatchNorm1d(width, eps=EPS_BN), nn.ReLU()]
            d = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def make_net(seed: int, d_in: int = 5, width: int = 8, depth: int = 2, d_out: int = 3):
    """A random BN network made scale invariant, its invariant set and normalisers (audited)."""
    torch.manual_seed(seed)
    net = BNNet(d_in, width, depth, d_out).double()
    equivalence.make_scale_invariant(net)
    x = torch.randn(16, d_in, dtype=torch.float64)
    report = equivalence.audit(net, x)
    assert report.fully_invariant or report.invariant_parameters(), str(report)
    inv = report.invariant_parameters()
    assert len(inv) == depth  # every hidden weight, nothing else
    return net, inv, report.norm_layers()


def batches(steps: int, seed: int, d_in: int = 5, d_out: int = 3, batch: int = 16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, d_in, generator=g, dtype=torch.float64)
    y = torch.randint(0, d_out, (steps, batch), generator=g)
    return x, y


def step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


SCHEDULERS = {
    "constant": None,
    "multistep": lambda o, n: MultiStepLR(o, milestones=[n // 3, 2 * n // 3], gamma=0.1),
    "cosine": lambda o, n: CosineAnnealingLR(o, T_max=n),
}


def run_pair(
    seed: int,
    sched: str,
    steps: int,
    *,
    lr: float = 1e-2,
    wd: float = 0.5,
    eps: float = 1e-8,
    betas: tuple[float, float] = (0.9, 0.999),
    amsgrad: bool = False,
    maximize: bool = False,
    lr_only: bool = False,
    rescale_log2: float | None = 16.0,
    **adam_kw,
):
    """Stock AdamW, its one-ulp twin and the converted Adam in lockstep.

    Returns (max parameter error, max floor, final eval-output error, eval floor, run).
    ``lr_only``: the negative control, which keeps the stock betas and ε and schedules
    only the LR η_k/(A_{k-1} A_k) (the SGD theorem's LR; no ν, σ, ε rescaling).
    """
    net, inv, norms = make_net(seed)
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p in (q for q in twin.parameters() if q.requires_grad):
            p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    conv = copy.deepcopy(net)
    names = [n for n, p in net.named_parameters() if any(p is q for q in inv)]
    twin_inv = [dict(twin.named_parameters())[n] for n in names]
    conv_inv = [dict(conv.named_parameters())[n] for n in names]
    conv_norms = [m for m in conv.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == len(conv_norms)
    kw = dict(lr=lr, weight_decay=wd, eps=eps, betas=betas, amsgrad=amsgrad, maximize=maximize,
              **adam_kw)

    def trainable(m: nn.Module) -> list[nn.Parameter]:
        return [p for p in m.parameters() if p.requires_grad]

    o_ref = torch.optim.AdamW(trainable(net), **kw)
    o_twin = torch.optim.AdamW(trainable(twin), **kw)
    o_user = torch.optim.AdamW(trainable(conv), **kw)
    run = convert_adamw(o_user, invariant=conv_inv, norm_layers=conv_norms,
                        rescale_log2=rescale_log2)
    if lr_only:
        _make_lr_only(run)
    make = SCHEDULERS[sched]
    scheds = [make(o, steps) for o in (o_ref, o_twin, run.optimizer)] if make else []
    x, y = batches(steps, seed + 1000)
    gen = torch.Generator().manual_seed(seed + 2000)
    err = floor = 0.0
    for k in range(steps):
        for m, o in ((net, o_ref), (twin, o_twin), (conv, run.optimizer)):
            step(m, o, x[k], y[k])
        for s in scheds:
            s.step()
        jitter(twin, o_twin, gen)
        w = flat(inv)
        err = max(err, rel(flat(conv_inv) / run.current_scale(), w))
        floor = max(floor, rel(flat(twin_inv), w))
    for m in (net, twin, conv):
        m.eval()
    with torch.no_grad():
        xe = x[0]
        out = net(xe)
        out_err = rel(conv(xe), out)
        out_floor = rel(twin(xe), out)
    return err, floor, out_err, out_floor, run


#: Per-step jitter of the twin, in ulps: the per-step rounding budget of the linear error
#: model (an Adam step rounds each weight after the decay and after addcdiv, and each buffer
#: in lerp / mul + addcmul), the same four ulps as the SGD suite's jitter twins.
JITTER_ULPS = 4


def jitter(net: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
    """Move every trainable weight and Adam buffer by JITTER_ULPS ulps, random direction each."""
    with torch.no_grad():
        for p in (q for q in net.parameters() if q.requires_grad):
            st = opt.state.get(p, {})
            for t in (p, st.get("exp_avg"), st.get("exp_avg_sq"), st.get("max_exp_avg_sq")):
                if t is None:
                    continue
                up = torch.rand(t.shape, generator=gen, dtype=t.dtype) < 0.5
                target = torch.where(up, math.inf, -math.inf).to(t.dtype)
                for _ in range(JITTER_ULPS):
                    t.copy_(torch.nextafter(t, target))
            if "exp_avg_sq" in st:
                st["exp_avg_sq"].clamp_(min=0.0)  # a second moment stays non-negative


def _make_lr_only(run: AdamWEquivalence) -> None:
    """Replace the map by the LR-only one: η_k/(A_{k-1}A_k), stock betas and ε (must fail)."""

    def pre(opt, args, kwargs):
        for i in run.invariant_groups:
            g = opt.param_groups[i]
            a = 1.0 - g["lr"] * g["weight_decay"]
            run._stock[i] = {k: g[k] for k in ("lr", "weight_decay", "betas", "eps")}
            g["lr"] = g["lr"] / (run.scale * run.scale * a)
            g["weight_decay"] = 0.0
            run.sigma[i] = run.scale * a  # carry A_k through the post-hook

    def post(opt, args, kwargs):
        for i, saved in run._stock.items():
            opt.param_groups[i].update(saved)
        run._stock = {}
        run.scale = run.sigma[run.invariant_groups[0]]

    run.remove()
    run.rescale_log2 = None
    run._handles = [run.optimizer.register_step_pre_hook(pre),
                    run.optimizer.register_step_post_hook(post)]


@pytest.mark.parametrize("sched", ["constant", "multistep", "cosine"])
def test_adamw_equals_converted_adam(sched: str) -> None:
    steps = 1000
    err, floor, out_err, out_floor, run = run_pair(3, sched, steps)
    print(f"\n{sched}: param err {err:.3g} floor {floor:.3g}; eval out err {out_err:.3g} "
          f"floor {out_floor:.3g}; scale {run.current_scale():.4g}")
    assert run.current_scale() > 1.5  # the decay really acted (m = 1/A_k)
    assert err <= 3 * floor, (err, floor)
    assert out_err <= 3 * max(out_floor, floor), (out_err, out_floor)
