"""The audit's batched path: Euler's identity screens every set, random joint scalings confirm it.

Each positive claim is paired with a negative control that must come out the other way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchmarks.bench_audit import resnet18_and_batch
from test_audit import _seeded
from torch import nn

import equivalence
from equivalence.invariance.checks import EulerRows, ScaledLoss, joint_draws
from equivalence.invariance.search import search

pytestmark = pytest.mark.usefixtures("single_thread")

RTOL = 1e-8  # the audit's default: float64 rounding of these small forward passes is ~1e-15


def _x(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class TwoBranches(nn.Module):
    """BN(a(x) + b(x) [+ x]) -> head: {a, b} jointly invariant, neither alone; a skip breaks it."""

    def __init__(self, skip: bool) -> None:
        super().__init__()
        self.a = nn.Linear(5, 5, bias=False)  # a bias before BN is invariant on its own (BN
        self.b = nn.Linear(5, 5, bias=False)  # subtracts the mean): left out to keep the pair pure
        self.bn = nn.BatchNorm1d(5, affine=False, eps=1e-300)
        self.head = nn.Linear(5, 2)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.a(x) + self.b(x) + (x if self.skip else 0.0)
        return self.head(torch.relu(self.bn(z)))


@pytest.mark.parametrize("skip", [False, True])
def test_joint_set_without_invariant_members(skip):
    """Positive: a and b are invariant only together. Control: an unscaled skip breaks the set."""
    with torch.random.fork_rng(devices=[]):
        model = _seeded(TwoBranches(skip), 11)
    rep = equivalence.audit(model, _x(12, 8, 5))
    branches = ["a.weight", "b.weight"]
    statuses = {n: rep.checks[n].status for n in branches}
    if not skip:
        assert statuses == dict.fromkeys(branches, "joint"), str(rep)
        assert rep.set_loss_error <= rep.rtol and rep.set_grad_error <= rep.grad_rtol
        assert rep.individual_names == []  # neither member is invariant on its own
    else:
        assert statuses == dict.fromkeys(branches, "not"), str(rep)
    assert rep.checks["head.weight"].status == "not"


def test_joint_draws_tell_a_joint_set_from_individual_ones():
    """a and b scaled as one unit leave L unchanged; as two units (own factors) they do not."""
    with torch.random.fork_rng(devices=[]):
        model = _seeded(TwoBranches(False), 11)
    probe = ScaledLoss(model, (_x(12, 8, 5),), {}, None, seed=0, n_points=2)
    rng = np.random.default_rng(0)
    scales = [0.01, 0.5, 3.0, 100.0]
    a, b = ["a.weight"], ["b.weight"]
    one_unit = joint_draws([a + b], scales, rng)
    two_units = joint_draws([a, b], scales, rng)
    assert all(len(set(d.values())) == 1 for d in one_unit)
    assert all(d["a.weight"] != d["b.weight"] for d in two_units)
    assert probe.violation(one_unit, (0, 1)) <= RTOL
    assert probe.violation(two_units, (0, 1)) > 1e3 * RTOL


class DeadGate(nn.Module):
    """head(BN(fc(x)) + relu(gate(x) − 4)): every gate unit is dead on this batch: ⟨∇L, W_gate⟩ = 0.

    ``normalised``: the gate is BN(gate(x)) − 4 instead, which is truly invariant in gate.weight
    (and just as dead): the negative control of the confirmation.
    """

    def __init__(self, normalised: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 6, bias=False)
        self.bn = nn.BatchNorm1d(6, affine=False, eps=1e-300)
        self.gate = nn.Linear(5, 6, bias=False)
        self.gate_bn = nn.BatchNorm1d(6, affine=False, eps=1e-300) if normalised else None
        self.register_buffer("threshold", torch.tensor(4.0))
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate(x)
        if self.gate_bn is not None:
            g = self.gate_bn(g)
        return self.head(self.bn(self.fc(x)) + torch.relu(g - self.threshold))


@pytest.mark.parametrize("normalised", [False, True])
def test_accidentally_vanishing_euler_is_rejected_by_the_confirmation(normalised):
    """Positive: the dead gate passes the screen (⟨∇L, W⟩ = 0 at every test point) and is rejected
    by the joint scalings (scaled by 100 its units come alive). Control: a normalised dead gate
    passes both and is invariant."""
    with torch.random.fork_rng(devices=[]):
        model = DeadGate(normalised).double()
    with torch.no_grad():
        model.gate.weight.mul_(0.1)  # |gate(x)| ≲ 1 at every test point: far below the threshold
    x = _x(13, 16, 5)
    rep = equivalence.audit(model, x, scales=[0.01, 0.1, 10.0, 100.0])
    assert rep.checks["gate.weight"].euler == 0.0, str(rep)  # the screen cannot tell
    assert rep.checks["fc.weight"].status == "individual", str(rep)
    if normalised:
        assert rep.checks["gate.weight"].status == "individual", str(rep)
        assert rep.set_loss_error <= rep.rtol
    else:
        assert rep.checks["gate.weight"].status == "not", str(rep)
        # measured alone (group testing)
        assert rep.checks["gate.weight"].loss_error > 1e3 * rep.rtol
        assert rep.set_loss_error <= rep.rtol  # the set without it is confirmed


def _synthetic_rows(n_joint: int, seed: int) -> tuple[EulerRows, list[str], set[str]]:
    """Euler rows of n_joint tensors whose values sum to zero at each point, and two that don't."""
    rng = np.random.default_rng(seed)
    k = 3
    joint = rng.normal(size=(k, n_joint))
    joint[:, -1] = -joint[:, :-1].sum(axis=1)
    dots = np.concatenate([joint, rng.normal(size=(k, 2))], axis=1)
    names = [f"j{i}.weight" for i in range(n_joint)] + ["head.weight", "head.bias"]
    rows = EulerRows(tuple(names), dots, np.ones_like(dots), np.ones(k), np.ones(k))
    return rows, names, set(names[:n_joint])


@pytest.mark.parametrize("n_joint", [6, 40])
@pytest.mark.parametrize("invariant", [True, False])
def test_search_finds_the_vanishing_set(n_joint, invariant):
    """Positive: the set whose Euler sums vanish is found (the smallest removal, enumerated) and
    confirmed by one forward test. Control: a confirmation that fails leaves the search to the
    forward tests, which find no invariant set."""
    rows, names, truth = _synthetic_rows(n_joint, 1)
    calls = []

    def violation(singles, rest):
        calls.append((tuple(singles), tuple(rest)))
        scaled = set(singles) | set(rest)
        if not scaled:
            return 0.0  # nothing scaled, nothing changes
        return 0.0 if invariant and scaled <= truth and not singles else 1.0

    found = search(rows, names, lambda n: True, violation, violation, rtol=RTOL, scales=[0.5, 2.0])
    if invariant:
        assert set(found.members) == truth and found.individual == [] and len(calls) == 1
    else:
        assert found.members == [] and len(calls) > 1


@pytest.mark.parametrize("affine", [True, False])
def test_resnet18_verdict(affine):
    """torchvision's ResNet-18 layout: every conv (each feeds a BatchNorm) is invariant on its own;
    the BN scales and shifts (affine on) and the linear head are not, with their reasons; in the
    passes the audit's docstring states: 6 forward + backward and 8 forward passes."""
    model, x = resnet18_and_batch(affine, batch=4, size=16)
    passes = []  # the hook travels with the audit's deep copy; the list is shared
    model.register_forward_hook(lambda *args: passes.append(torch.is_grad_enabled()))
    rep = equivalence.audit(model, x)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20
    assert rep.individual_names == [f"{n}.weight" for n in convs], str(rep)
    assert rep.joint_names == []
    not_inv = set(rep.not_invariant_names)
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    expected = {"fc.weight", "fc.bias"} | (
        {f"{n}.{a}" for n in bns for a in ("weight", "bias")} if affine else set()
    )
    assert not_inv == expected, str(rep)
    assert "unnormalised output layer" in rep.reasons["fc.weight"]
    if affine:
        assert all("bias after the normaliser" in rep.reasons[f"{n}.bias"] for n in bns)
        assert all("scale" in rep.reasons[f"{n}.weight"] for n in bns)
    assert {id(m) for m in rep.norm_layers()} == {
        id(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
    }
    assert (sum(passes), len(passes)) == (6, 14), passes  # (with a backward pass, in all)


def test_resnet18_without_a_norm_is_not_invariant_there():
    """Negative control of the ResNet-18 verdict: with layer4.1.bn2 removed, layer4.1.conv2 feeds
    the head through the residual sum with no normaliser after it, and only it leaves the set."""
    model, x = resnet18_and_batch(False, batch=4, size=16)
    model.layer4[1].bn2 = nn.Identity()
    rep = equivalence.audit(model, x)
    convs = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert rep.checks["layer4.1.conv2.weight"].status == "not", str(rep)
    assert "layer4.1.conv2" in rep.reasons["layer4.1.conv2.weight"]
    assert set(rep.invariant_names) == set(convs) - {"layer4.1.conv2.weight"}, str(rep)


@pytest.mark.parametrize("invariant", [True, False])
def test_search_past_the_enumeration_budget(monkeypatch, invariant):
    """Past the budget the screen searches greedily; whatever it proposes, the forward tests decide:
    the invariant set is still found (positive), and none is reported when none is (control)."""
    monkeypatch.setattr("equivalence.invariance.search.ENUMERATION_BUDGET", 0)
    rows, names, truth = _synthetic_rows(6, 2)

    def violation(singles, rest):
        scaled = set(singles) | set(rest)
        return 0.0 if not scaled or (invariant and scaled <= truth and not singles) else 1.0

    found = search(rows, names, lambda n: True, violation, violation, rtol=RTOL, scales=[0.5, 2.0])
    assert set(found.members) == (truth if invariant else set())
