"""The architecture-coverage table's code on small configurations of its six families.

``scripts/architecture_coverage.py`` audits ResNet-50, ConvNeXt-T, ViT-B/16, Swin-T, BERT-base
and GPT-2 small from their default configurations (a manual command, minutes). Here the same
code runs on reduced configurations of the same six classes (depths 1, widths 16 to 64, one
layer, hidden 32): no crash, shares in [0, 1], the set found confirmed, the audit's time per
forward + backward measured and reported (a figure of the table, not asserted here). Paired
claims: GPT-2's embedding is not invariant because it is tied to the output layer (the reason says so), and untied it joins the invariant
set; a ResNet is fully invariant once ``make_scale_invariant`` froze its BatchNorm affine
parameters and head, and not before (the reasons name the BatchNorm scales and shifts). The
audit's robustness fixes each have a positive claim and a negative control: random layers
(dropout, drop path, noise) repeat identically; a dict output is audited without a loss
function; a BatchNorm over 2 values per channel is flagged; the set returned always passes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import equivalence
from equivalence.invariance.search import search

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("single_thread")

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "architecture_coverage.py"
_spec = importlib.util.spec_from_file_location("architecture_coverage", _PATH)
assert _spec is not None and _spec.loader is not None
coverage = importlib.util.module_from_spec(_spec)
sys.modules["architecture_coverage"] = coverage
_spec.loader.exec_module(coverage)


@pytest.mark.parametrize("key", [s.key for s in coverage.SPECS])
def test_family_runs_and_reports_sane_shares(key):
    spec = coverage.BY_KEY[key]
    result = coverage.run_model(spec, reduced=True, repeats=5)
    a, msi = result["audit"], result["make_scale_invariant"]
    for summary in (a, msi["audit"]):
        for share in ("invariant_share", "invariant_share_of_decayed"):
            assert 0.0 <= summary[share] <= 1.0, (key, share, summary[share])
        assert summary["invariant_params"] <= summary["params"]
        # the set found passed its forward test (scaled by factors across 10^±3)
        assert summary["invariant_tensors"] == 0 or summary["set_loss_error"] <= 1e-8
        counted = sum(k["tensors"] for k in summary["reasons"].values())
        assert counted == summary["tensors"] - summary["invariant_tensors"]
        joint = sum(j["tensors"] for j in summary["joint_sets"])
        assert joint == summary["joint_tensors"]
    assert 0.0 <= msi["invariant_share_of_all"] <= 1.0
    assert msi["frozen_tensors"] > 0 and msi["last_layer"]
    # the audit's time is measured and reported (the table's "ratio"), not asserted here: speed
    # targets live in measurements (scripts/architecture_coverage.py, tests/benchmarks/)
    assert result["ratio"] > 0
    md = coverage.markdown([result], _meta())
    assert spec.title in md and "| ratio |" in md


def _meta():
    return {
        "command": "pytest",
        "date": "-",
        "reduced": True,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": 1,
        "machine": "-",
    }


def _gpt2(tied: bool):
    cfg = transformers.GPT2Config(
        vocab_size=100, n_embd=32, n_layer=1, n_head=2, n_positions=32, tie_word_embeddings=tied
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(cfg)
    ids = torch.randint(0, 100, (2, 16), generator=torch.Generator().manual_seed(1))
    return model, {"input_ids": ids, "labels": ids, "use_cache": False}


@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_embedding_is_not_invariant_because_it_is_tied(tied):
    """Tied to lm_head, wte scales the logits: not invariant, and the reason names the tie.
    Untied, wte writes only into the residual stream, which ln_f normalises: it joins the joint
    set with wpe and the residual branches' output projections (their weights and biases)."""
    model, inputs = _gpt2(tied)
    rep = equivalence.audit(model, inputs, loss_fn=coverage.own_loss)
    wte = rep.checks["transformer.wte.weight"]
    if tied:
        assert wte.status == "not", str(rep)
        assert wte.reason_kind == "output layer"
        assert "tied to lm_head.weight" in wte.reason
        assert rep.invariant_names == []
    else:
        assert wte.status == "joint", str(rep)
        part = next(p for p in rep.joint_sets if "transformer.wte.weight" in p)
        assert {
            "transformer.wpe.weight",
            "transformer.h.0.attn.c_proj.bias",
            "transformer.h.0.mlp.c_proj.weight",
            "transformer.h.0.mlp.c_proj.bias",
        } <= set(part)
        assert rep.checks["lm_head.weight"].status == "not"
        assert rep.set_loss_error <= rep.rtol


@pytest.mark.parametrize("frozen", [True, False])
def test_resnet_is_fully_invariant_after_make_scale_invariant(frozen):
    model, inputs = coverage.build(coverage.BY_KEY["resnet50"], reduced=True)
    if frozen:
        equivalence.make_scale_invariant(model)
    rep = equivalence.audit(model, inputs, loss_fn=coverage.own_loss)
    convs = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert set(convs) <= set(rep.individual_names), str(rep)
    if frozen:
        assert rep.fully_invariant, str(rep)
    else:
        kinds = {rep.checks[n].reason_kind for n in rep.not_invariant_names}
        assert kinds == {"norm scale", "norm shift", "output layer"}, str(rep)


class _Noisy(nn.Module):
    """conv -> BN -> ReLU -> drop path (class name) -> noise (torch.rand) -> attention-style
    dropout read from a float attribute -> head."""

    class DropPath(nn.Module):
        def forward(self, x):
            if not self.training:
                return x
            keep = (torch.rand(x.shape[0], 1, 1, 1) > 0.5).to(x.dtype)
            return x * keep * 2.0

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.drop_path = self.DropPath()
        self.attention_dropout = 0.3
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h = self.drop_path(torch.relu(self.bn(self.conv(x))))
        h = h * (1.0 + 0.1 * torch.rand_like(h))  # noise no rule recognises
        h = nn.functional.dropout(h, self.attention_dropout, self.training)
        return {"logits": self.head(h.mean(dim=(2, 3)))}


def test_random_layers_repeat_and_dict_outputs_need_no_loss():
    """Positive: drop path, noise and float-attribute dropout do not stop the audit finding the
    conv invariant (default loss on a dict output); the caller's random state is untouched.
    Control: the head is still not invariant."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = _Noisy()
    x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(4))
    state = torch.get_rng_state()
    rep = equivalence.audit(model, x)
    assert torch.equal(state, torch.get_rng_state())
    assert rep.checks["conv.weight"].status == "individual", str(rep)
    assert rep.checks["head.weight"].status == "not", str(rep)
    assert model.attention_dropout == 0.3 and model.training  # the model itself untouched


@pytest.mark.parametrize("batch", [2, 8])
def test_batchnorm_over_two_values_is_flagged(batch):
    """Batch 2 at 1x1 spatial size: each BN channel normalises 2 values (output ±1): a note.
    Control: batch 8, no note."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    x = torch.randn(batch, 3, 1, 1, generator=torch.Generator().manual_seed(6))
    rep = equivalence.audit(model, x)
    flagged = any("2 values or fewer" in n for n in rep.notes)
    assert flagged == (batch == 2), rep.notes


@pytest.mark.parametrize("together_ok", [False, True])
def test_the_set_returned_always_passes(together_ok):
    """Two tensors each within rtol alone but not together (near-invariance adds up): the search
    returns a set that passes, with one of them. Control: when they pass together both stay."""
    import numpy as np

    from equivalence.invariance.checks import EulerRows

    names = ["a.weight", "b.weight", "head.weight"]
    dots = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -2.0]])
    rows = EulerRows(tuple(names), dots, np.ones_like(dots), np.ones(2), np.ones(2))

    def violation(singles, rest, parts=None):
        scaled = set(singles) | set(rest)
        if "head.weight" in scaled:
            return 1.0
        if scaled == {"a.weight", "b.weight"} and not together_ok:
            return 1e-7
        return 0.0

    found = search(rows, names, lambda n: True, violation, violation, rtol=1e-8, scales=[0.5, 2])
    assert violation(found.individual, [n for n in found.members if n not in found.individual]) == 0
    assert len(found.members) == (2 if together_ok else 1), found


class _PreLN(nn.Module):
    """A pre-LayerNorm transformer block: LayerNorm without bias, nn.MultiheadAttention (fused
    query-key-value projection), a GELU MLP, keyword (dict) input, a dict output."""

    def __init__(self, affine: bool, d: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.ln1 = nn.LayerNorm(d, elementwise_affine=affine, bias=False)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.ln2 = nn.LayerNorm(d, elementwise_affine=affine, bias=False)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)
        self.lnf = nn.LayerNorm(d, elementwise_affine=affine, bias=False)
        self.head = nn.Linear(d, 3)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.embed(tokens)
        a = self.ln1(h)
        h = h + self.attn(a, a, a, need_weights=False)[0]
        h = h + self.fc2(nn.functional.gelu(self.fc1(self.ln2(h))))
        return {"logits": self.head(self.lnf(h))}


@pytest.mark.parametrize("affine", [False, True])
def test_pre_layernorm_block_without_bias(affine):
    """The residual stream is read only through LayerNorms, so its writers (the embedding, the
    attention's output projection, the MLP's second layer, weights and biases) are invariant
    together, with or without LayerNorm scales. Control: the packed query-key-value projection,
    the GELU's input layer and the head are not, and trainable LayerNorm scales are not either
    (reason: a normaliser's scale)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _PreLN(affine)
    tokens = torch.randn(4, 5, 8, generator=torch.Generator().manual_seed(1))
    rep = equivalence.audit(model, {"tokens": tokens})
    writers = {f"{m}.{p}" for m in ("embed", "attn.out_proj", "fc2") for p in ("weight", "bias")}
    assert [set(p) for p in rep.joint_sets] == [writers], str(rep)
    assert rep.set_loss_error <= rep.rtol
    kinds = {n: rep.checks[n].reason_kind for n in rep.not_invariant_names}
    expected = {"attn.in_proj_weight", "attn.in_proj_bias", "fc1.weight", "fc1.bias"}
    expected |= {"head.weight", "head.bias"}
    expected |= {f"{ln}.weight" for ln in ("ln1", "ln2", "lnf")} if affine else set()
    assert set(kinds) == expected, kinds
    if affine:
        assert {kinds[f"{ln}.weight"] for ln in ("ln1", "ln2", "lnf")} == {"norm scale"}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--models", "foo"], "unknown model(s) ['foo']"),
        (["--repeats", "0"], "--repeats: 0 is outside the valid range [1, inf)"),
        (["--threads", "0"], "--threads: 0 is outside the valid range [1, inf)"),
        (["--size", "vit_b16=0"], "N >= 1"),
        (["--size", "vit_b16=224", "--reduced"], "no --reduced"),
    ],
)
def test_command_line_rejects_nonsense(argv, says, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        coverage.main([*argv, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert says in capsys.readouterr().err
