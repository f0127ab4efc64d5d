"""The scale-invariance audit classifies a table of architectures correctly, and leaves the model alone."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import examples
from hypothesis import given, settings
from strategies import net_specs
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import equivalence
from equivalence.invariance import AuditReport
from equivalence.verify.testing_nets import NetSpec, batches, build

pytestmark = pytest.mark.usefixtures("single_thread")


def _pre_resnet(frozen: bool) -> tuple[nn.Module, torch.Tensor]:
    net = build(
        NetSpec(
            "resnet",
            "bn",
            "pre",
            1,
            4,
            "relu",
            False,
            "trainable",
            "trainable",
            1e-5,
            3,
            4,
            3,
            True,
            0,
        )
    )
    if frozen:
        equivalence.make_scale_invariant(net.model)
    return net.model, batches(net.spec, 1, 6, 0)[0][0]


class TransformerMLP(nn.Module):
    """x + W2 φ(W1 LN(x)) with a final LayerNorm and a linear head (pre-LN transformer block)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(5, 6)
        self.ln1 = nn.LayerNorm(6, elementwise_affine=False)
        self.fc1 = nn.Linear(6, 12)
        self.fc2 = nn.Linear(12, 6)
        self.ln_f = nn.LayerNorm(6, elementwise_affine=False)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = self.embed(x)
        h = h + self.fc2(torch.relu(self.fc1(self.ln1(h))))
        return self.head(self.ln_f(h))


def _seeded(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.double()


def _gn_cnn():
    with torch.random.fork_rng(devices=[]):
        m = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.GroupNorm(2, 4),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.GroupNorm(2, 4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64, 3),
        )
    return _seeded(m, 1), torch.randn(
        4, 2, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )


def _wn():
    with torch.random.fork_rng(devices=[]):
        m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    m = _seeded(m, 3)
    weight_norm(m[0])
    weight_norm(m[2])
    return m, torch.randn(8, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)


def _plain():
    with torch.random.fork_rng(devices=[]):
        m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    return _seeded(m, 5), torch.randn(
        8, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64
    )


def _transformer():
    with torch.random.fork_rng(devices=[]):
        m = TransformerMLP()
    return _seeded(m, 7), torch.randn(
        8, 5, generator=torch.Generator().manual_seed(8), dtype=torch.float64
    )


# name -> (builder, individually invariant, only jointly invariant, not invariant (with reason words))
TABLE = {
    "preresnet_frozen_affine": (
        lambda: _pre_resnet(True),
        {"block0.conv1.weight"},
        {"stem.weight", "block0.conv2.weight"},
        {},
    ),
    "preresnet_trainable_affine": (
        lambda: _pre_resnet(False),
        {"block0.conv1.weight"},
        {"stem.weight", "block0.conv2.weight"},
        {
            "block0.norm1.weight": "scale",
            "block0.norm1.bias": "bias after the normaliser",
            "final_norm.weight": "scale",
            "head.weight": "unnormalised output layer",
            "head.bias": "unnormalised output layer",
        },
    ),
    "transformer_layernorm_mlp": (
        _transformer,
        set(),
        {"embed.weight", "embed.bias"},
        {"head.weight": "unnormalised output layer", "head.bias": "unnormalised output layer"},
    ),
    "groupnorm_cnn": (
        _gn_cnn,
        set(),
        {"0.weight", "0.bias", "3.weight", "3.bias"},
        {
            "1.weight": "scale",
            "4.bias": "bias after the normaliser",
            "7.weight": "unnormalised output layer",
        },
    ),
    "weight_norm": (
        _wn,
        {"0.parametrizations.weight.original1", "2.parametrizations.weight.original1"},
        set(),
        {
            "0.parametrizations.weight.original0": "gain",
            "0.bias": "normaliser",
            "4.weight": "output",
        },
    ),
    "plain_mlp": (
        _plain,
        set(),
        set(),
        {"0.weight": "normaliser", "2.weight": "unnormalised output layer"},
    ),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_audit_table(name):
    build_fn, individual, joint, broken = TABLE[name]
    model, x = build_fn()
    rep = equivalence.audit(model, x)
    assert isinstance(rep, AuditReport)
    for n in individual:
        assert rep.checks[n].status == "individual", (n, str(rep))
    for n in joint:
        assert rep.checks[n].status in ("joint", "individual"), (n, str(rep))
        assert rep.is_invariant[n]
    if name == "transformer_layernorm_mlp":
        # either fc1 or fc2 can carry the residual branch's scale (two maximal sets), never both
        assert rep.is_invariant["fc1.weight"] != rep.is_invariant["fc2.weight"], str(rep)
    for n, words in broken.items():
        assert rep.checks[n].status == "not", (n, str(rep))
        assert words in rep.reasons[n], (n, rep.reasons[n])
    assert set(rep.invariant_names) >= individual | joint
    if name == "plain_mlp":
        assert rep.invariant_names == [] and not rep.fully_invariant
    if name == "preresnet_frozen_affine":
        assert rep.fully_invariant
        assert {id(m) for m in rep.norm_layers()} == {
            id(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
        }
    named = dict(model.named_parameters())
    assert [id(p) for p in rep.invariant_parameters()] == [
        id(named[n]) for n in rep.invariant_names
    ]
    text = str(rep)
    assert "parameter" in text and "status" in text


def test_audit_leaves_the_model_untouched():
    model, x = _pre_resnet(False)
    model.float().eval()
    before = copy.deepcopy(model.state_dict())
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    equivalence.audit(model, x.float())
    after = model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert not model.training
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    for k, v in before.items():
        assert torch.equal(v.to(after[k].dtype), after[k]), k  # running stats included


def test_audit_eps_is_reported():
    model, x = _pre_resnet(True)  # BatchNorm eps = 1e-5
    rep = equivalence.audit(model, x, scales=[1e-3, 1e3])
    assert rep.fully_invariant and rep.eps_effect > rep.rtol
    assert any("eps" in n for n in rep.notes)
    strict = equivalence.audit(model, x, scales=[1e-3, 1e3], respect_eps=True)
    assert strict.not_invariant_names and all("eps" in r for r in strict.reasons.values())


def test_make_scale_invariant_freezes_affine_and_head():
    model, _ = _pre_resnet(False)
    frozen = equivalence.make_scale_invariant(model)
    assert "head.weight" in frozen and "head.bias" in frozen and "final_norm.weight" in frozen
    assert all(not p.requires_grad for n, p in model.named_parameters() if n in frozen)
    assert all(
        p.requires_grad for n, p in model.named_parameters() if ".conv" in n or n.startswith("stem")
    )
    assert equivalence.make_scale_invariant(model) == []  # idempotent


def test_bad_input_gives_clear_errors():
    model, x = _plain()
    with pytest.raises(TypeError, match="nn.Module"):
        equivalence.audit("not a model", x)
    with pytest.raises(TypeError, match="example_input"):
        equivalence.audit(model, 3.0)
    with pytest.raises(ValueError, match="scalar"):
        equivalence.audit(model, x, loss_fn=lambda out: out)
    with pytest.raises(ValueError, match="scales"):
        equivalence.audit(model, x, scales=[1.0])
    with pytest.raises(ValueError, match="rtol"):
        equivalence.audit(model, x, rtol=0.0)
    frozen = copy.deepcopy(model).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        equivalence.audit(frozen, x)
    with pytest.raises(TypeError, match="nn.Module"):
        equivalence.make_scale_invariant(object())
    with pytest.raises(ValueError, match="nn.Linear"):
        equivalence.make_scale_invariant(nn.Sequential(nn.Conv2d(1, 1, 1)))


@settings(max_examples=examples(12))
@given(spec=net_specs(max_width=4))
def test_audit_agrees_with_construction(spec):
    """On random networks the audit's set contains the constructed S, and it is invariant."""
    net = build(spec)
    x = batches(spec, 1, 4, 0)[0][0]
    rep = equivalence.audit(net.model, x, n_scales=2)
    assert set(net.invariant) <= set(rep.invariant_names), str(rep)
    assert set(net.individual) <= set(rep.individual_names), str(rep)
    assert rep.set_loss_error <= rep.rtol and rep.set_euler <= rep.grad_rtol
    if spec.head == "trainable":
        head = [
            n
            for n in rep.checks
            if n.startswith("head.") or n.startswith(f"{len(list(net.model.children())) - 1}.")
        ]
        assert all(rep.checks[n].status == "not" for n in head), str(rep)
    norms = {id(m) for m in rep.norm_layers()}
    assert norms == {id(m) for m in net.norm_layers()}
