"""Small scale-invariant test networks, known invariant sets included (float64, seeded).

One zoo for the property suite, the PyTorch equivalence tests, the main job
(``exp_lr_verify``) and the CPU smoke checks:

- :class:`NetSpec` / :func:`build`: a *tiny* normalised network (MLP, CNN or residual
  network; BatchNorm, GroupNorm, LayerNorm, InstanceNorm or weight normalisation; its depth,
  width, activation, bias, affine parameters and where the normaliser sits), built with the
  ground truth: the names of the parameters in the scale-invariant set S (known by
  construction) and of those invariant on their own. The normalisers' eps is 0 or 1e-300,
  so scale invariance holds to rounding.
- :func:`plain_mlp`: the negative control, an MLP with no normaliser (nothing is invariant).
- :class:`InvariantMLP`: a fixed two-layer BatchNorm MLP with a frozen head, jointly
  invariant in (fc1.weight, fc1.bias, fc2.weight).
- :func:`main_job_nets`: the three small networks of the main job (BatchNorm MLP, GroupNorm
  CNN, LayerNorm MLP with GELU).

Everything is seeded locally (``torch.Generator``); module construction runs under
``fork_rng`` and every parameter is then re-initialised from a local generator, so nothing
here touches the global RNG.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..invariance.layer_kinds import NORM_CLASSES

DTYPE = torch.float64
#: the normalisers' eps: eps breaks scale invariance; at 1e-300 it is below float64 rounding
EPS_BN = 1e-300

# Activations that commute with positive scaling, φ(cz) = c φ(z): the only ones
# allowed between a scaled layer and its normaliser.
HOMOGENEOUS_ACTS = ("relu", "leaky_relu", "identity")
ALL_ACTS = (*HOMOGENEOUS_ACTS, "tanh", "gelu", "silu", "elu")


def make_act(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ALL_ACTS`)."""
    makers: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.1),
        "identity": nn.Identity,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "elu": nn.ELU,
    }
    if name not in makers:
        raise ValueError(f"act = {name!r} is not one of {ALL_ACTS}")
    return makers[name]()


@dataclass(frozen=True)
class NetSpec:
    """A tiny normalised network, fully determined by its fields (and ``seed``).

    ``order``: ``"norm_act"`` (normaliser then activation) or ``"act_norm"``
    (activation then normaliser, homogeneous activation only) for MLPs and
    CNNs; ``"pre"`` or ``"post"`` (activation) residual blocks for ResNets.
    ``affine``: ``"trainable"`` (the normalisers' affine parameters are trained
    and keep their own recipe: they are not in S), ``"frozen"`` (the paper's
    choice) or ``"none"``. ``head``: ``"trainable"`` or ``"frozen"`` output layer.
    """

    family: str
    norm: str
    order: str
    depth: int
    width: int
    act: str
    bias: bool
    affine: str
    head: str
    eps: float
    in_dim: int
    image: int
    out_dim: int
    track: bool
    seed: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.family == "mlp":
            return (self.in_dim,)
        return (self.in_dim, self.image, self.image)


@dataclass
class Net:
    """A built network with its ground truth, known by construction."""

    model: nn.Module
    spec: NetSpec
    invariant: list[str]  # names of the parameters in S
    individual: list[
        str
    ]  # known invariant on their own (a subset: BatchNorm can add stream biases)
    not_invariant: list[str] = field(default_factory=list)  # trainable, outside S

    def params(self, names: list[str]) -> list[torch.Tensor]:
        named = dict(self.model.named_parameters())
        return [named[n] for n in names]

    def trainable(self) -> list[torch.Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def trainable_names(self) -> list[str]:
        return [n for n, p in self.model.named_parameters() if p.requires_grad]

    def norm_layers(self) -> list[nn.Module]:
        return [m for m in self.model.modules() if isinstance(m, NORM_CLASSES)]


def _norm(
    spec: NetSpec, channels: int, dim: int, shape: tuple[int, ...] | None = None
) -> nn.Module:
    affine = spec.affine != "none"
    if spec.norm == "bn":
        cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
        return cls(channels, eps=spec.eps, affine=affine)
    if spec.norm == "gn":
        # a divisor of the channel count; spec.seed picks which one
        min_size = 3 if dim == 1 else 1
        divisors = [
            g for g in range(1, channels + 1) if channels % g == 0 and channels // g >= min_size
        ]
        return nn.GroupNorm(
            divisors[spec.seed % len(divisors)], channels, eps=spec.eps, affine=affine
        )
    if spec.norm == "ln":
        return nn.LayerNorm(channels, eps=spec.eps, elementwise_affine=affine)
    if spec.norm == "in":
        return nn.InstanceNorm2d(
            channels, eps=spec.eps, affine=affine, track_running_stats=spec.track
        )
    raise ValueError(f"unknown norm {spec.norm!r}")


class PreActBlock(nn.Module):
    """x + conv2(φ(norm2(conv1(φ(norm1(x)))))): convs only jointly invariant."""

    def __init__(self, spec: NetSpec, width: int) -> None:
        super().__init__()
        self.norm1 = _norm(spec, width, 2)
        self.act1 = make_act(spec.act)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=spec.bias)
        self.norm2 = _norm(spec, width, 2)
        self.act2 = make_act(spec.act)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=spec.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act2(self.norm2(self.conv1(self.act1(self.norm1(x))))))


class PostActBlock(nn.Module):
    """φ(x + norm2(conv2(φ(norm1(conv1(x)))))): each conv invariant on its own."""

    def __init__(self, spec: NetSpec, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=spec.bias)
        self.norm1 = _norm(spec, width, 2)
        self.act1 = make_act(spec.act)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=spec.bias)
        self.norm2 = _norm(spec, width, 2)
        self.act2 = make_act(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(x + self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x))))))


def _mlp(spec: NetSpec) -> tuple[nn.Module, list[str], list[str]]:
    layers: list[nn.Module] = []
    inv: list[str] = []
    indiv: list[str] = []
    prev = spec.in_dim
    for _ in range(spec.depth):
        layers.append(nn.Linear(prev, spec.width, bias=spec.bias))
        lin = f"{len(layers) - 1}"
        if spec.norm == "wn":
            layers.append(make_act(spec.act))
            inv.append(f"{lin}.weight")  # renamed to the weight-norm direction below
            indiv.append(f"{lin}.weight")
        else:
            if spec.order == "norm_act":
                layers += [_norm(spec, spec.width, 1), make_act(spec.act)]
            else:
                layers += [make_act(spec.act), _norm(spec, spec.width, 1)]
            inv.append(f"{lin}.weight")
            if spec.bias:
                inv.append(f"{lin}.bias")
            # BatchNorm removes a bias, so the weight is invariant on its own;
            # LayerNorm/GroupNorm do not, so weight and bias are only jointly invariant.
            # (only when the normaliser directly follows the layer: a ReLU in between keeps the bias)
            if (spec.norm == "bn" and spec.order == "norm_act") or not spec.bias:
                indiv.append(f"{lin}.weight")
                if spec.bias:
                    indiv.append(f"{lin}.bias")
        prev = spec.width
    layers.append(nn.Linear(prev, spec.out_dim))
    return nn.Sequential(*layers), inv, indiv


def _cnn(spec: NetSpec) -> tuple[nn.Module, list[str], list[str]]:
    layers: list[nn.Module] = []
    inv: list[str] = []
    indiv: list[str] = []
    prev = spec.in_dim
    for _ in range(spec.depth):
        layers.append(nn.Conv2d(prev, spec.width, 3, padding=1, bias=spec.bias))
        conv = f"{len(layers) - 1}"
        if spec.norm == "wn":
            layers.append(make_act(spec.act))
            inv.append(f"{conv}.weight")
            indiv.append(f"{conv}.weight")
        else:
            if spec.order == "norm_act":
                layers += [_norm(spec, spec.width, 2), make_act(spec.act)]
            else:
                layers += [make_act(spec.act), _norm(spec, spec.width, 2)]
            inv.append(f"{conv}.weight")
            if spec.bias:
                inv.append(f"{conv}.bias")
            if (spec.norm in ("bn", "in") and spec.order == "norm_act") or not spec.bias:
                indiv.append(f"{conv}.weight")
                if spec.bias:
                    indiv.append(f"{conv}.bias")
        prev = spec.width
    # flatten rather than average-pool: a per-channel normaliser (InstanceNorm, GroupNorm with a
    # group per channel) followed by a global mean gives a constant and a zero gradient
    layers += [nn.Flatten(), nn.Linear(prev * spec.image**2, spec.out_dim)]
    return nn.Sequential(*layers), inv, indiv


def _resnet(spec: NetSpec) -> tuple[nn.Module, list[str], list[str]]:
    w = spec.width
    mods: dict[str, nn.Module] = {"stem": nn.Conv2d(spec.in_dim, w, 3, padding=1, bias=spec.bias)}
    inv = ["stem.weight"] + (["stem.bias"] if spec.bias else [])
    indiv: list[str] = []
    if spec.order == "post":
        mods["stem_norm"] = _norm(spec, w, 2)
        mods["stem_act"] = make_act(spec.act)
    block = PreActBlock if spec.order == "pre" else PostActBlock
    for i in range(spec.depth):
        mods[f"block{i}"] = block(spec, w)
        for c in ("conv1", "conv2"):
            inv.append(f"block{i}.{c}.weight")
            if spec.bias:
                inv.append(f"block{i}.{c}.bias")
    if spec.order == "pre":
        mods["final_norm"] = _norm(spec, w, 2)
        mods["final_act"] = make_act(spec.act)
    # A conv feeding a normaliser directly is invariant on its own (with its
    # bias only if the normaliser removes a per-channel shift: BN, IN); the
    # stem and the pre-activation conv2s feed the residual stream and are only
    # jointly invariant.
    removes_bias = spec.norm in ("bn", "in") or not spec.bias
    direct = [n for n in inv if spec.order == "post" or ".conv1." in n]
    indiv = [n for n in direct if removes_bias]
    mods["flat"] = nn.Flatten()
    mods["head"] = nn.Linear(w * spec.image**2, spec.out_dim)
    return _Seq(mods), inv, indiv


class _Seq(nn.Module):
    """Runs its children in insertion order (names kept readable: ``stem.weight``)."""

    def __init__(self, mods: dict[str, nn.Module]) -> None:
        super().__init__()
        for k, m in mods.items():
            self.add_module(k, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.children():
            x = m(x)
        return x


def _reinit(model: nn.Module, seed: int) -> None:
    """Re-initialise every parameter from a local generator (no global RNG)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            leaf = name.rsplit(".", 1)[-1]
            owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            is_norm = isinstance(
                owner, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
            )
            if is_norm and leaf == "weight":
                p.copy_(1.0 + 0.2 * noise)
            elif leaf == "bias":
                p.copy_(0.2 * noise)  # nonzero: a zero bias would hide a broken invariance
            else:
                fan_in = max(1, p[0].numel()) if p.dim() > 1 else p.numel()
                p.copy_(noise / math.sqrt(fan_in))


def build(spec: NetSpec) -> Net:
    """Build ``spec`` in float64 with its ground-truth invariant set S."""
    with torch.random.fork_rng(devices=[]):
        model, inv, indiv = {"mlp": _mlp, "cnn": _cnn, "resnet": _resnet}[spec.family](spec)
    model = model.to(DTYPE)
    _reinit(model, spec.seed)
    if spec.norm == "wn":
        # weight normalisation on every hidden layer: S is the direction v (original1)
        for name in list(inv):
            mod = model.get_submodule(name.rsplit(".", 1)[0])
            weight_norm(mod, "weight", dim=0)
        ren = {n: n.rsplit(".", 1)[0] + ".parametrizations.weight.original1" for n in inv}
        inv = [ren[n] for n in inv]
        indiv = [ren.get(n, n) for n in indiv]
    for mod in model.modules():
        if isinstance(mod, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
            if spec.affine == "frozen":
                mod.requires_grad_(False)
    if spec.head == "frozen":
        model.get_submodule(_head_name(model)).requires_grad_(False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    rest = [n for n in trainable if n not in inv]
    return Net(model, spec, inv, indiv, rest)


def _head_name(model: nn.Module) -> str:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def batches(
    spec: NetSpec, steps: int, batch: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` seeded (input, target) batches for ``spec`` (targets: classes, or reals if out_dim 1)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x = torch.randn((batch, *spec.input_shape), generator=g, dtype=DTYPE)
        if spec.out_dim == 1:
            y = torch.randn((batch, 1), generator=g, dtype=DTYPE)
        else:
            y = torch.randint(0, spec.out_dim, (batch,), generator=g)
        out.append((x, y))
    return out


def loss_fn(spec: NetSpec) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if spec.out_dim == 1:
        return lambda out, y: ((out - y) ** 2).mean()
    return lambda out, y: nn.functional.cross_entropy(out, y)


def plain_mlp(seed: int, in_dim: int = 4, width: int = 6, out_dim: int = 2) -> Net:
    """A negative control: an MLP with no normalisation at all (nothing is scale invariant)."""
    spec = NetSpec(
        "mlp",
        "none",
        "norm_act",
        2,
        width,
        "relu",
        True,
        "none",
        "trainable",
        0.0,
        in_dim,
        3,
        out_dim,
        False,
        seed,
    )
    with torch.random.fork_rng(devices=[]):
        model = nn.Sequential(
            nn.Linear(in_dim, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, out_dim),
        )
    model = model.to(DTYPE)
    _reinit(model, seed)
    names = [n for n, _ in model.named_parameters()]
    return Net(model, spec, [], [], names)


def copy_net(net: Net) -> Net:
    """An independent copy of ``net`` (its model deep-copied, the ground truth kept)."""
    return Net(
        copy.deepcopy(net.model),
        net.spec,
        list(net.invariant),
        list(net.individual),
        list(net.not_invariant),
    )


class InvariantMLP(nn.Module):
    """Linear → BN(affine off) → ReLU, twice, then a frozen output layer.

    The loss is jointly scale invariant in (fc1.weight, fc1.bias, fc2.weight): scaling them
    by c > 0 scales each BN input by c, which BN removes. ``fc2`` has no bias (a bias there
    would not scale with c).
    """

    def __init__(self, d_in: int = 6, width: int = 12, d_out: int = 3, eps: float = EPS_BN):
        super().__init__()
        self.fc1 = nn.Linear(d_in, width)
        self.bn1 = nn.BatchNorm1d(width, affine=False, eps=eps)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.bn2 = nn.BatchNorm1d(width, affine=False, eps=eps)
        self.head = nn.Linear(width, d_out)
        self.head.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.fc1(x)))
        return self.head(torch.relu(self.bn2(self.fc2(h))))

    def invariant(self) -> list[torch.Tensor]:
        return [self.fc1.weight, self.fc1.bias, self.fc2.weight]

    def norm_layers(self) -> list[nn.Module]:
        return [self.bn1, self.bn2]


def make_pair(
    seed: int, dtype: torch.dtype = torch.float64, **kw: Any
) -> tuple[InvariantMLP, InvariantMLP]:
    """Two identical :class:`InvariantMLP` (the second a deep copy), initialised from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        a = InvariantMLP(**kw).to(dtype)
    return a, copy.deepcopy(a)


def make_batches(
    steps: int,
    seed: int,
    batch: int = 16,
    d_in: int = 6,
    d_out: int = 3,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` seeded batches for :class:`InvariantMLP`: inputs (steps, batch, d_in), classes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, d_in, generator=g, dtype=dtype)
    y = torch.randint(0, d_out, (steps, batch), generator=g)
    return x, y


def main_job_nets(seed: int, bias: bool = True) -> list[tuple[str, Net]]:
    """The main job's three small networks, their widths drawn from ``seed``.

    A BatchNorm MLP (ReLU), a GroupNorm CNN (ReLU, 1×3×3 images) and a LayerNorm MLP (GELU),
    two normalised layers each, affine parameters off and the output layer frozen, so the
    whole trainable set is one jointly scale-invariant set S. ``bias=False``: no bias before
    a normaliser, for Adam: such a bias has an exact gradient of 0 through the normaliser, and
    Adam divides the rounding noise of that 0 by its own square root, an O(η) step driven by
    rounding alone in both runs.
    """
    rng = np.random.default_rng(seed)
    out = []
    for name, family, norm, act in (
        ("BatchNorm MLP", "mlp", "bn", "relu"),
        ("GroupNorm CNN", "cnn", "gn", "relu"),
        ("LayerNorm MLP", "mlp", "ln", "gelu"),
    ):
        width = int(rng.integers(4, 11)) * (2 if family == "cnn" else 1)
        spec = NetSpec(
            family,
            norm,
            "norm_act",
            2,
            width,
            act,
            bias,
            "none",
            "frozen",
            1e-300,
            1 if family == "cnn" else 6,
            3,
            3,
            True,
            int(rng.integers(2**31)),
        )
        out.append((name, build(spec)))
    return out


def ratio_of_quadratics(n: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """∇L for L(θ) = θᵀMθ/θᵀθ, M a seeded random symmetric n×n matrix: a scale-invariant loss
    in numpy, ∇L(θ) = 2(Mθ − L(θ)θ)/θᵀθ, for the references of conventions PyTorch has no
    optimizer for."""
    if n < 2:
        raise ValueError(f"n = {n} is outside the valid range n >= 2 (L is constant for n = 1)")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    mat = (a + a.T) / 2

    def grad(th: np.ndarray) -> np.ndarray:
        sq = th @ th
        return 2 * (mat @ th - (th @ mat @ th) / sq * th) / sq

    return grad
