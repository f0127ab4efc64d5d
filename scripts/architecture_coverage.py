"""How much of a standard architecture the equivalence theorem covers: the audit's table.

For six ``transformers`` models built from their default configurations with random
initialisation (no download), float32, batch 2, this runs :func:`equivalence.audit` and reports

- the scale-invariant share of the parameters, and of the weight-decayed parameters (the
  Hugging Face ``Trainer`` default: every parameter except those inside an ``nn.LayerNorm`` and
  those whose name matches ``bias``, ``layernorm``, ``rmsnorm``, ``norm`` or ``_norm`` as a
  name component; :func:`decayed_names`);
- the joint sets (tensors invariant only together), how many, their sizes, examples;
- why the rest is not invariant, the audit's reasons counted by kind;
- what :func:`equivalence.make_scale_invariant` freezes, and the invariant share after it
  (audited again);
- the audit's time as a multiple of one forward + backward pass of the same float32 model on
  the same input (the fastest of several runs each, interleaved), and of the same model in
  float64, the precision the audit computes in.

Run from the repository root::

    python scripts/architecture_coverage.py            # all six, default configs (minutes)
    python scripts/architecture_coverage.py --reduced  # the test's small configs (seconds)

It writes ``scripts/results/architecture_coverage.md`` and ``.json`` (``--out`` to change).
``tests/test_architecture_coverage.py`` runs the same code on the small configurations.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: this repository's ``equivalence``
    sys.path.insert(0, str(ROOT))

import equivalence  # noqa: E402
from equivalence.invariance.reasons import KINDS  # noqa: E402

BATCH = 2
SEQ_LEN = 16
BUDGET = 30.0  # the audit's time target, in forward + backward passes


@dataclass(frozen=True)
class Spec:
    """One architecture: its ``transformers`` class and config, the input, the small variant."""

    key: str
    title: str
    model_class: str
    config_class: str
    kind: str  # "image" or "text"
    size: int  # image side or sequence length, full configuration
    reduced: dict[str, Any] = field(default_factory=dict)  # config overrides for the test
    reduced_size: int = 0
    note: str = ""
    call: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of forward


SPECS = [
    Spec(
        "resnet50",
        "ResNet-50",
        "ResNetForImageClassification",
        "ResNetConfig",
        "image",
        64,
        dict(embedding_size=16, hidden_sizes=[16, 32, 32, 64], depths=[1, 1, 1, 1]),
        64,
        "64×64 (not 224): the last stage is 2×2, so each BatchNorm averages over ≥ 8 values "
        "(32×32 would leave 2 per channel at batch 2)",
    ),
    Spec(
        "convnext_t",
        "ConvNeXt-T",
        "ConvNextForImageClassification",
        "ConvNextConfig",
        "image",
        64,
        dict(hidden_sizes=[16, 32, 32, 64], depths=[1, 1, 1, 1]),
        32,
        "64×64 (not 224)",
    ),
    Spec(
        "vit_b16",
        "ViT-B/16",
        "ViTForImageClassification",
        "ViTConfig",
        "image",
        64,
        dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        ),
        32,
        "64×64 (not 224): 16 patches + CLS, the 224 position table interpolated "
        "(interpolate_pos_encoding=True)",
        dict(interpolate_pos_encoding=True),
    ),
    Spec(
        "swin_t",
        "Swin-T",
        "SwinForImageClassification",
        "SwinConfig",
        "image",
        224,
        dict(
            embed_dim=16,
            depths=[1, 1],
            num_heads=[2, 2],
            image_size=32,
            patch_size=4,
            window_size=4,
        ),
        32,
        "224×224 (native): with window 7, a smaller input makes a stage smaller than the "
        "window, which this transformers version's Swin cannot run",
    ),
    Spec(
        "bert_base",
        "BERT-base",
        "BertForMaskedLM",
        "BertConfig",
        "text",
        SEQ_LEN,
        dict(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=32,
        ),
        SEQ_LEN,
        "masked-LM head (decoder tied to the word embeddings), every token a label",
    ),
    Spec(
        "gpt2",
        "GPT-2 small",
        "GPT2LMHeadModel",
        "GPT2Config",
        "text",
        SEQ_LEN,
        dict(vocab_size=100, n_embd=32, n_layer=1, n_head=2, n_positions=32),
        SEQ_LEN,
        "LM head tied to wte; use_cache=False",
        dict(use_cache=False),
    ),
]
BY_KEY = {s.key: s for s in SPECS}


def build(spec: Spec, reduced: bool, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """The model (float32, training mode, random init from ``seed``) and its keyword inputs."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    overrides = spec.reduced if reduced else {}
    config = getattr(transformers, spec.config_class)(**overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(transformers, spec.model_class)(config)
    model.train()
    g = torch.Generator().manual_seed(seed + 1)
    size = spec.reduced_size if reduced else spec.size
    inputs: dict[str, Any] = dict(spec.call)
    if spec.kind == "image":
        inputs["pixel_values"] = torch.randn(BATCH, config.num_channels, size, size, generator=g)
        inputs["labels"] = torch.randint(0, config.num_labels, (BATCH,), generator=g)
    else:
        ids = torch.randint(0, config.vocab_size, (BATCH, size), generator=g)
        inputs["input_ids"] = ids
        inputs["labels"] = ids.clone()
    return model, inputs


def own_loss(out: Any) -> torch.Tensor:
    """The model's own loss (labels are among the inputs)."""
    return out.loss


def decayed_names(model: nn.Module) -> list[str]:
    """The parameters the Hugging Face ``Trainer`` decays by default: its own
    ``get_decay_parameter_names``, called as the ``Trainer`` calls it (it reads nothing of the
    trainer), tied tensors under their first name."""
    import transformers

    decayed = set(transformers.Trainer.get_decay_parameter_names(None, model))  # type: ignore[arg-type]
    return [n for n, _ in model.named_parameters() if n in decayed]


def forward_backward_seconds(model: nn.Module, inputs: dict[str, Any], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        own_loss(model(**inputs)).backward()
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return times


def _measured(x: float) -> float | None:
    """``x``, or None where the audit measured nothing (its NaN)."""
    return None if math.isnan(x) else x


def _numel(named: dict[str, torch.Tensor], names: list[str]) -> int:
    return sum(named[n].numel() for n in names)


def summarise(model: nn.Module, report: Any) -> dict[str, Any]:
    """Shares, joint sets and reasons of one audit."""
    named = dict(model.named_parameters())
    trainable = [n for n, p in named.items() if p.requires_grad]
    inv = report.invariant_names
    decayed = [n for n in decayed_names(model) if n in trainable]
    norm_params = {
        f"{mn}.{pn}" if mn else pn
        for mn, m in model.named_modules()
        if isinstance(m, equivalence.invariance.layer_kinds.NORM_CLASSES)
        for pn, _ in m.named_parameters(recurse=False)
    }
    decayed_strict = [n for n in trainable if not n.endswith("bias") and n not in norm_params]
    inv_set = set(inv)
    total, inv_n = _numel(named, trainable), _numel(named, inv)
    parts = sorted(report.joint_sets, key=lambda p: -_numel(named, p))
    kinds: dict[str, dict[str, Any]] = {}
    for n in report.not_invariant_names:
        c = report.checks[n]
        k = kinds.setdefault(
            c.reason_kind or "other", {"tensors": 0, "params": 0, "example": c.reason, "names": []}
        )
        k["tensors"] += 1
        k["params"] += named[n].numel()
        k["names"].append(n)
    return {
        "tensors": len(trainable),
        "params": total,
        "invariant_tensors": len(inv),
        "invariant_params": inv_n,
        "invariant_share": inv_n / total if total else 0.0,
        "individual_tensors": len(report.individual_names),
        "individual_params": _numel(named, report.individual_names),
        "joint_tensors": len(report.joint_names),
        "joint_params": _numel(named, report.joint_names),
        "decayed_tensors": len(decayed),
        "decayed_params": _numel(named, decayed),
        "invariant_decayed_params": _numel(named, [n for n in decayed if n in inv_set]),
        "invariant_share_of_decayed": (
            _numel(named, [n for n in decayed if n in inv_set]) / _numel(named, decayed)
            if decayed
            else 0.0
        ),
        "decayed_norm_tensors": sorted(n for n in decayed if n in norm_params),
        "strict_decayed_params": _numel(named, decayed_strict),
        "invariant_share_of_strict_decayed": (
            _numel(named, [n for n in decayed_strict if n in inv_set])
            / _numel(named, decayed_strict)
            if decayed_strict
            else 0.0
        ),
        "joint_sets": [
            {"tensors": len(p), "params": _numel(named, p), "names": list(p)} for p in parts
        ],
        "reasons": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["params"])),
        # not measured for an empty set: null in the JSON (NaN is not JSON)
        "set_loss_error": _measured(report.set_loss_error),
        "set_grad_error": _measured(report.set_grad_error),
        "notes": list(report.notes),
    }


def _float64(model: nn.Module, inputs: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    cast = {
        k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in inputs.items()
    }
    return copy.deepcopy(model).double(), cast


def run_model(
    spec: Spec,
    reduced: bool = False,
    repeats: int = 5,
    step: Callable[[str], None] | None = None,
    audits: int = 2,
) -> dict[str, Any]:
    """Build, time one forward + backward (float32, and float64 as the audit computes), audit
    (``audits`` times: the fastest counts, all are kept), make scale invariant, audit again."""
    step = step or (lambda what: None)
    step("build")
    model, inputs = build(spec, reduced)
    step("forward + backward")
    forward_backward_seconds(model, inputs, 1)  # warm-up
    fb_times = [forward_backward_seconds(model, inputs, repeats)]
    model64, inputs64 = _float64(model, inputs)
    forward_backward_seconds(model64, inputs64, 1)
    fb64 = min(forward_backward_seconds(model64, inputs64, repeats))
    del model64, inputs64
    step("audit")
    audit_times = []
    for _ in range(max(audits, 1)):  # interleaved with the timings it is compared with
        t0 = time.perf_counter()
        report = equivalence.audit(model, inputs, loss_fn=own_loss)
        audit_times.append(time.perf_counter() - t0)
        fb_times.append(forward_backward_seconds(model, inputs, repeats))
    audit_s = min(audit_times)
    fb = min(min(ts) for ts in fb_times)
    result: dict[str, Any] = {
        "key": spec.key,
        "title": spec.title,
        "model_class": spec.model_class,
        "config": "reduced: " + json.dumps(spec.reduced) if reduced else f"{spec.config_class}()",
        "input": _input_text(spec, reduced),
        "note": "" if reduced else spec.note,
        "forward_backward_s": fb,
        "forward_backward_s_all": fb_times,
        "forward_backward_float64_s": fb64,
        "audit_s": audit_s,
        "audit_s_all": audit_times,
        "ratio": audit_s / fb,
        "ratio_float64": audit_s / fb64,
        "audit": summarise(model, report),
    }
    step("make_scale_invariant, audit")
    frozen_model = copy.deepcopy(model)
    frozen = equivalence.make_scale_invariant(frozen_model)
    named = dict(frozen_model.named_parameters())
    tied = equivalence.invariance.reasons.tied_names(frozen_model)
    t0 = time.perf_counter()
    after_report = equivalence.audit(frozen_model, inputs, loss_fn=own_loss)
    after_s = time.perf_counter() - t0
    frozen_unique = [n for n in named if not named[n].requires_grad]
    heads = sorted({n.rsplit(".", 1)[0] for n in frozen if not _is_norm_param(frozen_model, n)})
    result["make_scale_invariant"] = {
        "frozen_names": frozen,
        "frozen_tensors": len(frozen_unique),
        "frozen_params": _numel(named, frozen_unique),
        "frozen_norm_tensors": sum(_is_norm_param(frozen_model, n) for n in frozen),
        "last_layer": heads,
        "tied_frozen": sorted(
            n for n, others in tied.items() if any(o in frozen for o in others) and n in named
        ),
        "audit_s": after_s,
        "audit": summarise(frozen_model, after_report),
        "invariant_share_of_all": _numel(named, after_report.invariant_names)
        / _numel(named, list(named)),
    }
    return result


def _is_norm_param(model: nn.Module, name: str) -> bool:
    mod = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    return isinstance(mod, equivalence.invariance.layer_kinds.NORM_CLASSES)


def _input_text(spec: Spec, reduced: bool) -> str:
    size = spec.reduced_size if reduced else spec.size
    if spec.kind == "image":
        return f"{BATCH}×3×{size}×{size}"
    return f"{BATCH}×{size} tokens"


def _m(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if x >= 0.001 or x == 0 else f"{100 * x:.2g} %"


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The table and the per-model details, as Markdown."""
    lines = [
        "# How much of a standard architecture the theorem covers",
        "",
        "<!-- --8<-- [start:table] -->",  # the docs page includes from here (docs/coverage.md)
        "",
        f"Generated by `{meta['command']}` ({meta['date']}; do not edit by hand). Models from "
        f"`transformers` {meta['transformers']} with their default configurations"
        + (" (reduced, as in the test)" if meta["reduced"] else "")
        + ", random initialisation (seed 0, no download), float32, training mode, batch "
        f"{BATCH}, the model's own loss (labels given); torch {meta['torch']}, "
        f"{meta['threads']} thread{'s' if meta['threads'] != 1 else ''} on {meta['machine']}.",
        "",
        "**Invariant**: in the set S the audit (`equivalence.audit`) found and confirmed, "
        "L(c·θ_S) = L(θ_S) for c across 10^±3 (on its own or jointly). **Weight-decayed**: "
        "the Hugging Face `Trainer` default, its own `get_decay_parameter_names` called on the "
        "model (in this version: every parameter except those inside an `nn.LayerNorm` and those whose lower-cased name matches "
        "`bias`, `layernorm`, `rmsnorm`, `(^|.)norm($|.)` or `_norm($|.)`). **After "
        "`make_scale_invariant`**: every normaliser's affine parameters and the last "
        "`nn.Linear` frozen, audited again; the share is of the parameters still trained. "
        f"**Audit time**: one audit, as a multiple of one forward + backward pass of the same "
        f"float32 model on the same input (target ≤ {BUDGET:g}).",
        "",
        "| model | input | parameters | invariant | invariant share of the weight-decayed "
        "| joint sets | after make_scale_invariant | audit | forward + backward | ratio "
        "| ratio to float64 |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        a, msi = r["audit"], r["make_scale_invariant"]
        js = a["joint_sets"]
        joint = (
            f"{len(js)} ({', '.join(str(j['tensors']) for j in js[:4])}"
            + (", ..." if len(js) > 4 else "")
            + " tensors)"
            if js
            else "none"
        )
        lines.append(
            f"| {r['title']} | {r['input']} | {_m(a['params'])} "
            f"| {_pct(a['invariant_share'])} ({a['invariant_tensors']}/{a['tensors']} tensors) "
            f"| {_pct(a['invariant_share_of_decayed'])} of {_m(a['decayed_params'])} "
            f"| {joint} "
            f"| {_pct(msi['audit']['invariant_share'])} of {_m(msi['audit']['params'])} trained "
            f"({msi['frozen_tensors']} tensors frozen) "
            f"| {r['audit_s']:.1f} s | {r['forward_backward_s'] * 1e3:.0f} ms "
            f"| {r['ratio']:.1f}× | {r['ratio_float64']:.1f}× |"
        )
    lines.append("")
    fb64 = ", ".join(
        f"{r['title']} {r['forward_backward_float64_s'] * 1e3:.0f} ms" for r in results
    )
    lines += [
        "The audit works on a float64 copy (its tolerance, 1e-8 relative, is below float32's "
        "rounding): the last column divides by one forward + backward of that float64 copy "
        f"({fb64}). Times are the fastest of several runs (every one is in the JSON): "
        "two audits, interleaved with warm forward + backward passes of the same model; on a "
        "shared machine the fastest run is the least disturbed by other load.",
        "",
    ]
    for r in results:
        if r["ratio"] <= BUDGET:
            continue
        slower = r["forward_backward_float64_s"] / r["forward_backward_s"]
        lines += [
            f"**{r['title']} is over the {BUDGET:g}× budget** ({r['ratio']:.1f}×): the audit "
            "computes in float64, and for this model on this CPU a float64 forward + backward "
            f"takes {slower:.1f}× as long as a float32 one; against the float64 pass the audit costs {r['ratio_float64']:.1f}×. At these "
            "small inputs the work that grows with the parameter count (the float64 copy, the "
            "perturbed test point, the gradients kept) is also a larger share than it would "
            "be at full resolution.",
            "",
        ]
    for r in results:
        extra = r["audit"]["decayed_norm_tensors"]
        if extra:
            lines += [
                f"**{r['title']}, weight decay**: the `Trainer`'s rule also decays "
                f"{len(extra)} normaliser scales (e.g. `{extra[0]}`: its name patterns miss "
                "this model's normaliser names); without every normaliser parameter and bias "
                f"the invariant share of the decayed parameters is "
                f"{_pct(r['audit']['invariant_share_of_strict_decayed'])}.",
                "",
            ]
    notes = [f"{r['title']}: {r['note']}." for r in results if r["note"]]
    if notes:
        lines += ["Inputs: " + " ".join(notes), ""]
    lines += ["## Why the rest is not invariant", ""]
    lines += [
        "The audit's reasons, counted by kind (tensors, parameters), with one of them in its "
        "own words.",
        "",
    ]
    for r in results:
        lines += [f"### {r['title']}", "", "| kind | tensors | parameters | for example |"]
        lines += ["| --- | ---: | ---: | --- |"]
        for kind, k in r["audit"]["reasons"].items():
            example = k["example"].replace("|", "\\|")
            lines.append(
                f"| {KINDS.get(kind, kind)} | {k['tensors']} | {_m(k['params'])} "
                f"| `{k['names'][0]}`: {example} |"
            )
        lines.append("")
    lines += ["## Joint sets", ""]
    lines += [
        "Tensors invariant only together, in the parts the audit confirmed each on its own "
        "(largest first).",
        "",
    ]
    for r in results:
        js = r["audit"]["joint_sets"]
        if not js:
            lines += [f"- **{r['title']}**: none.", ""]
            continue
        lines.append(f"- **{r['title']}**: {len(js)} part(s).")
        for j in js[:6]:
            shown = ", ".join(f"`{n}`" for n in j["names"][:4])
            more = f", ... ({j['tensors'] - 4} more)" if j["tensors"] > 4 else ""
            lines.append(f"    - {j['tensors']} tensors, {_m(j['params'])}: {shown}{more}")
        if len(js) > 6:
            lines.append(f"    - ... {len(js) - 6} more parts")
        lines.append("")
    lines += ["## What make_scale_invariant changes", ""]
    for r in results:
        msi = r["make_scale_invariant"]
        a = msi["audit"]
        tied = (
            f" Tied to the frozen head, {', '.join(f'`{n}`' for n in msi['tied_frozen'])} is "
            "frozen with it."
            if msi["tied_frozen"]
            else ""
        )
        left = ", ".join(f"{KINDS.get(k, k)} ({v['tensors']})" for k, v in a["reasons"].items())
        lines.append(
            f"- **{r['title']}**: freezes {msi['frozen_tensors']} tensors "
            f"({_m(msi['frozen_params'])}): {msi['frozen_norm_tensors']} normaliser affine "
            f"tensors and the last linear layer {', '.join(f'`{h}`' for h in msi['last_layer'])}."
            f"{tied} Then {_pct(a['invariant_share'])} of the {_m(a['params'])} trained "
            f"parameters are invariant ({_pct(msi['invariant_share_of_all'])} of all)"
            + (f"; still not invariant: {left}." if left else ".")
            + f" Audit {msi['audit_s']:.1f} s."
        )
    lines.append("")
    notes = [(r["title"], n) for r in results for n in r["audit"]["notes"]]
    if notes:
        lines += ["## The audit's notes", ""]
        lines += [f"- {t}: {n}" for t, n in notes]
        lines.append("")
    lines += ["<!-- --8<-- [end:table] -->", ""]
    return "\n".join(lines)


def _at_least_one(text: str) -> int:
    """argparse type: an integer >= 1, with a message naming the value and the range."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (valid: >= 1)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is outside the valid range [1, inf)")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--models",
        default=",".join(BY_KEY),
        help=f"comma-separated, from: {', '.join(BY_KEY)} (default: all)",
    )
    ap.add_argument(
        "--reduced", action="store_true", help="the small configurations of the test (seconds)"
    )
    ap.add_argument(
        "--repeats",
        type=_at_least_one,
        default=5,
        help="forward+backward passes timed per round (the fastest counts)",
    )
    ap.add_argument(
        "--threads",
        type=_at_least_one,
        default=1,
        help="torch threads for the model and the audit alike (default: %(default)s, as the "
        "audit benchmark: on a shared machine more threads make timings erratic)",
    )
    ap.add_argument(
        "--out",
        default=None,
        help="output path without extension: writes .md and .json (default: "
        "scripts/results/architecture_coverage in this repository)",
    )
    ap.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="MODEL=N",
        help="input size for a model of the full configuration: image side or tokens "
        "(e.g. vit_b16=224 bert_base=128); repeatable",
    )
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(BY_KEY)}")
    specs = dict(BY_KEY)
    for item in args.size:
        key, _, value = item.partition("=")
        if key not in specs or not value.isdigit() or int(value) < 1 or args.reduced:
            ap.error(
                f"--size {item!r}: want MODEL=N with MODEL in {list(BY_KEY)} and N >= 1 (an "
                "image side or a token count), and no --reduced"
            )
        specs[key] = replace(
            specs[key],
            size=int(value),
            note=f"{value} (--size)",
            call={k: v for k, v in specs[key].call.items() if k != "interpolate_pos_encoding"}
            | (
                {"interpolate_pos_encoding": True} if key == "vit_b16" and int(value) != 224 else {}
            ),
        )
    try:
        import transformers
    except ImportError:
        print("this script needs transformers (pip install transformers)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from tqdm import tqdm

    stages = 4
    bar = tqdm(total=stages * len(keys), disable=args.no_progress, unit="step", file=sys.stderr)
    results = []
    start = time.perf_counter()
    for key in keys:
        done = [0]

        def step(what: str, key: str = key, done: list[int] = done) -> None:
            if done[0]:
                bar.update(1)  # the stage before this one is over
            done[0] += 1
            bar.set_description(f"{key}: {what}")

        result = run_model(specs[key], args.reduced, args.repeats, step)
        bar.update(stages - done[0] + 1)
        results.append(result)
        tqdm.write(
            f"{result['title']}: invariant {_pct(result['audit']['invariant_share'])}, audit "
            f"{result['audit_s']:.1f} s = {result['ratio']:.1f}× forward+backward",
            file=sys.stderr,
        )
    bar.close()
    command = "python scripts/architecture_coverage.py" + (" --reduced" if args.reduced else "")
    if args.models != ",".join(BY_KEY):
        command += f" --models {args.models}"
    command += "".join(f" --size {item}" for item in args.size)
    meta = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "reduced": args.reduced,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} CPU ({os.cpu_count()} cores)",
        "batch": BATCH,
        "budget": BUDGET,
        "decay_rule": "transformers.Trainer.get_decay_parameter_names",
        "total_s": time.perf_counter() - start,
    }
    out = Path(args.out) if args.out else ROOT / "scripts" / "results" / "architecture_coverage"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "models": results}, indent=1, allow_nan=False)
    )
    out.with_suffix(".md").write_text(markdown(results, meta))
    print(f"wrote {out.with_suffix('.md')} and .json ({meta['total_s']:.0f} s)")
    over = [r["title"] for r in results if r["ratio"] > BUDGET]
    if over:
        print(f"over the {BUDGET:g}x budget: {', '.join(over)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
