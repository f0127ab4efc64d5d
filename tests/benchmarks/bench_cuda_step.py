"""Benchmark of the converted step on CUDA: the converted optimizer step and training step against
the stock ones, measured as ratios in one run, with the launches the converter adds per step and
a check that its step hooks add no host–device synchronisation.

Networks: (i) PreResNet32 (``gpu_validation.model.PreResNet``, depth 32, width 16, BN affine
frozen, last layer frozen; batch 128 of 3×32×32; 31 BatchNorms; the conv weights are the
invariant set); (ii) a bottleneck ResNet-50 (the torchvision layout, written here: stages of
3, 4, 6, 3 blocks, BN affine on, 1000 classes; batch 256 of 3×224×224; 53 BatchNorms; the
conv weights are the invariant set, the BN affine parameters and the head are stock). Each
with stock ``torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=5e-4)`` in its ``foreach=True``
and its ``fused=True`` form and a stock ``MultiStepLR`` attached before conversion; the
converted twin is the same optimizer converted in place as on docs/converting.md,
``equivalence.convert_optimizer(opt, invariant=conv weights, model=model)``: the check at the
first update (untimed) finds the normalisers, so every converted step sets their eps to ε m²
and corrects their running statistics.

Measured per network × form, float32, after warm-up (the first update and its checks are not
timed), stock and converted blocks interleaved so that drifts of clock or load hit both alike,
the fastest block of each side kept:

1. ``step_us`` and ``step_ratio``: ``opt.step(); sched.step()`` per step (gradients fixed),
   converted / stock; target ≤ 1.02 (the figure is measured, not asserted).
2. ``train_ms`` and ``train_ratio``: a whole training step (``zero_grad``, forward,
   cross-entropy, backward, step, scheduler), converted / stock: what a user sees.
3. ``added_launches``: from ``torch.profiler``, the device kernels (CUDA: kernels, copies and
   fills) of a converted step minus those of a stock one, per step; on CPU the top-level aten
   ops instead (a CPU foreach op runs its per-tensor loop inside itself). It includes the
   foreach ops of the extra param group the step view splits off (ResNet-50: the stock
   affines and head; PreResNet32: only the frozen head, which has no gradient).
   ``norm_launches``: the same count for the normaliser corrections alone
   (``NormLayers.correct`` and ``set_scale``): it must not grow with the number of
   normalisers (31 vs 53 here; 2 foreach multiplications per (device, dtype) group).
   ``*_launch_calls``: on CUDA the same differences counted as the host's kernel-launch API
   calls (a cross-check that does not need CUPTI's device records).
4. ``--sync-check`` (CUDA only; on CPU reported as skipped): N converted training steps under
   ``torch.cuda.set_sync_debug_mode("error")``, after the first update (whose one-off check
   reads its figures on the host); pass, or the error and the innermost frame of the
   offending call. Controls: a deliberate ``.item()`` must raise under the mode (the check is
   live), and the stock steps are checked the same way (a failure there is not the
   converter's).

Run (CUDA, the real run; a few minutes on one H100)::

    python tests/benchmarks/bench_cuda_step.py --device cuda --sync-check --json OUT

CPU (small sizes; tests the script, the ratios are CPU figures)::

    python tests/benchmarks/bench_cuda_step.py --device cpu --preresnet-batch 8 \\
        --resnet50-batch 2 --size 64 --steps 20 --train-steps 3 --repeats 3

Not part of the default pytest run.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run by path from a checkout that is not installed
    sys.path.insert(0, str(_ROOT))

import equivalence as eq  # noqa: E402
from equivalence.optim.inplace import InvarianceCheckError  # noqa: E402

TARGET = 1.02
FORMS = ("foreach", "fused")
NETWORKS = ("preresnet32", "resnet50")


# -- the networks --------------------------------------------------------------------------------
class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 (×4 channels), each conv followed by BN; ReLU after the sum."""

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = 4 * width
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


class ResNet50(nn.Module):
    """The bottleneck ResNet-50 of the torchvision layout (25.6M parameters at 1000 classes):
    every conv feeds a BatchNorm, so the conv weights are scale invariant."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks: list[nn.Module] = []
        in_ch = 64
        for width, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(n):
                blocks.append(Bottleneck(in_ch, width, stride if i == 0 else 1))
                in_ch = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        out = F.adaptive_avg_pool2d(self.blocks(out), 1).flatten(1)
        return self.fc(out)


def build(name: str, batch: int, size: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The network ``name`` (seeded), an input batch and labels, on the CPU."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "preresnet32":
        from gpu_validation.model import PreResNet, init_weights

        model: nn.Module = PreResNet(32, 16)
        init_weights(model, torch.Generator().manual_seed(0))
        x = torch.randn(batch, 3, 32, 32, generator=g)
        return model, x, torch.randint(0, 10, (batch,), generator=g)
    if name == "resnet50":
        model = ResNet50()
        x = torch.randn(batch, 3, size, size, generator=g)
        return model, x, torch.randint(0, 1000, (batch,), generator=g)
    raise ValueError(f"network = {name!r} is not one of {NETWORKS}")


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    """The invariant set: every conv weight (each feeds a BatchNorm)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


# -- timing and counting -------------------------------------------------------------------------
def seconds_per_call(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Mean seconds of ``fn()`` over ``n`` calls: CUDA events around the block on CUDA (the
    device queue drained first), ``time.perf_counter`` on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / n
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def launches_per_call(
    fn: Callable[[], object], n: int, device: torch.device
) -> tuple[float, float]:
    """Per call of ``fn``, from ``torch.profiler`` over ``n`` calls: (device events: kernels,
    copies, fills; kernel-launch API calls on the host) on CUDA, (top-level aten ops, 0) on the
    CPU. Both CUDA counts are kept: without CUPTI the first is 0 while the second still counts."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    if cuda:
        torch.cuda.synchronize(device)
    with profile(activities=activities) as prof:
        for _ in range(n):
            fn()
        if cuda:
            torch.cuda.synchronize(device)
    events = prof.events()
    if cuda:
        kernels = sum(1 for e in events if e.device_type == DeviceType.CUDA)
        calls = sum(1 for e in events if "LaunchKernel" in e.name)
        return kernels / n, calls / n
    top = sum(
        1
        for e in events
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    )
    return top / n, 0.0


def _offending_frame(exc: BaseException) -> str:
    """The innermost frame of the traceback in this project (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "equivalence" in f.filename or "gpu_validation" in f.filename]
    f = (ours or frames)[-1]
    return f"{f.filename}:{f.lineno} in {f.name}: {f.line}"


def sync_check(
    steps: dict[str, Callable[[], object]], n: int, device: torch.device
) -> dict[str, Any]:
    """Each of ``steps`` run ``n`` times under ``torch.cuda.set_sync_debug_mode("error")``."""
    if device.type != "cuda":
        return {"skipped": "torch.cuda.set_sync_debug_mode exists only on CUDA"}
    out: dict[str, Any] = {}
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        try:  # control: the mode must catch a deliberate synchronisation
            torch.zeros((), device=device).item()
            out["control_item_raises"] = False
        except RuntimeError:
            out["control_item_raises"] = True
        for name, fn in steps.items():
            try:
                for _ in range(n):
                    fn()
                out[name] = {"passed": True, "steps": n}
            except RuntimeError as exc:
                out[name] = {
                    "passed": False,
                    "error": str(exc).splitlines()[0],
                    "at": _offending_frame(exc),
                }
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize(device)
    return out


# -- one network × form --------------------------------------------------------------------------
class Side:
    """A model, its stock SGD and MultiStepLR, converted or not, with fixed gradients."""

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        form: str,
        convert: bool,
        check: bool,
    ) -> None:
        self.model, self.x, self.y = model, x, y
        self.opt = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, **{form: True}
        )
        self.sched = MultiStepLR(self.opt, [10**9], 0.1)  # built before conversion
        self.run: Any = None
        if convert and check:  # as on docs/converting.md: the probe finds the normalisers
            self.run = eq.convert_optimizer(self.opt, invariant=conv_weights(model), model=model)
        elif convert:
            self.run = eq.convert_optimizer(
                self.opt,
                invariant=conv_weights(model),
                norm_layers=batchnorms(model),
                check=False,
            )
        self.backward()
        self.step()  # the first update: the checks (one synchronisation), untimed

    def backward(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(self.x), self.y).backward()

    def step(self) -> None:
        self.opt.step()
        self.sched.step()

    def train_step(self) -> None:
        self.backward()
        self.step()

    def norm_correction(self) -> None:
        """The normaliser corrections of one converted step, alone."""
        norms = self.run.converter.norms
        norms.correct(0.999)
        norms.set_scale(self.run.converter.set_scale(self.run.converter.sets[0]))


def bench_one(
    name: str,
    form: str,
    batch: int,
    size: int,
    device: torch.device,
    steps: int,
    train_steps: int,
    repeats: int,
    check: bool,
    sync_steps: int,
) -> dict[str, Any]:
    model, x, y = build(name, batch, size)
    model, x, y = model.to(device), x.to(device), y.to(device)
    twins = [copy.deepcopy(model), copy.deepcopy(model)]
    stock = Side(model, x, y, form, convert=False, check=check)
    check_error = None
    try:
        conv = Side(twins[0], x, y, form, convert=True, check=check)
    except InvarianceCheckError as exc:  # recorded; timed with norm_layers= and check=False
        check_error = str(exc)
        conv = Side(twins[1], x, y, form, convert=True, check=False)
    del twins
    n_norms = len(conv.run.converter.norms)
    for side in (stock, conv):  # warm-up: buffers, allocator, kernels chosen
        for _ in range(3):
            side.train_step()
        for _ in range(10):
            side.step()
    s_step, c_step, s_train, c_train = [], [], [], []
    for _ in range(repeats):
        s_step.append(seconds_per_call(stock.step, steps, device))
        c_step.append(seconds_per_call(conv.step, steps, device))
    for _ in range(repeats):
        s_train.append(seconds_per_call(stock.train_step, train_steps, device))
        c_train.append(seconds_per_call(conv.train_step, train_steps, device))
    prof_n = 10
    stock_launches, stock_calls = launches_per_call(stock.step, prof_n, device)
    conv_launches, conv_calls = launches_per_call(conv.step, prof_n, device)
    norm_launches, norm_calls = launches_per_call(conv.norm_correction, prof_n, device)
    out: dict[str, Any] = {
        "stock_step_us": 1e6 * min(s_step),
        "converted_step_us": 1e6 * min(c_step),
        "step_ratio": min(c_step) / min(s_step),
        "stock_train_ms": 1e3 * min(s_train),
        "converted_train_ms": 1e3 * min(c_train),
        "train_ratio": min(c_train) / min(s_train),
        "stock_launches_per_step": stock_launches,
        "converted_launches_per_step": conv_launches,
        "added_launches": conv_launches - stock_launches,
        "norm_launches": norm_launches,
        "added_launch_calls": conv_calls - stock_calls,  # CUDA: host launch API calls
        "norm_launch_calls": norm_calls,
        "normalisers": n_norms,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
    }
    if check_error is not None:
        out["check_error"] = check_error
    if sync_steps > 0 and device.type == "cuda":
        out["sync_check"] = sync_check(
            {"stock": stock.train_step, "converted": conv.train_step}, sync_steps, device
        )
    return out


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1, with a message naming the value and the range."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer (valid: >= 1)") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is out of range (valid: >= 1)")
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--networks", default=",".join(NETWORKS), help=f"comma-separated, from {NETWORKS}"
    )
    parser.add_argument("--forms", default=",".join(FORMS), help=f"comma-separated, from {FORMS}")
    parser.add_argument("--preresnet-batch", type=positive_int, default=128)
    parser.add_argument("--resnet50-batch", type=positive_int, default=256)
    parser.add_argument(
        "--size", type=positive_int, default=224, help="ResNet-50 input size (>= 32)"
    )
    parser.add_argument(
        "--steps", type=positive_int, default=200, help="optimizer steps per timed block"
    )
    parser.add_argument(
        "--train-steps", type=positive_int, default=10, help="training steps per timed block"
    )
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed blocks per side")
    parser.add_argument("--sync-check", action="store_true", help="run the synchronisation check")
    parser.add_argument(
        "--sync-steps", type=positive_int, default=20, help="training steps under the check"
    )
    parser.add_argument(
        "--no-check", action="store_true", help="convert with check=False (no first-update probe)"
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="CPU threads")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    networks = [s for s in args.networks.split(",") if s]
    forms = [s for s in args.forms.split(",") if s]
    for given, valid, flag in ((networks, NETWORKS, "--networks"), (forms, FORMS, "--forms")):
        bad = [s for s in given if s not in valid]
        if bad or not given:
            parser.error(f"{flag} = {','.join(given)!r}: each must be one of {valid}")
    if args.size < 32:
        parser.error(f"--size = {args.size} is out of range (valid: >= 32)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (use --device cpu)")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    res: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "target_ratio": TARGET,
        "threads": args.threads,
    }
    for name in networks:
        batch = args.preresnet_batch if name == "preresnet32" else args.resnet50_batch
        for form in forms:
            r = bench_one(
                name,
                form,
                batch,
                args.size,
                device,
                args.steps,
                args.train_steps,
                args.repeats,
                check=not args.no_check,
                sync_steps=args.sync_steps if args.sync_check else 0,
            )
            res[f"{name}_{form}"] = r
            print(
                f"{name:12s} {form:8s} step {r['stock_step_us']:9.1f} → "
                f"{r['converted_step_us']:9.1f} µs  ratio {r['step_ratio']:.3f}"
                f"  |  train {r['stock_train_ms']:8.2f} → {r['converted_train_ms']:8.2f} ms"
                f"  ratio {r['train_ratio']:.3f}  (target ≤ {TARGET})"
            )
            unit = "kernels" if device.type == "cuda" else "aten ops"
            print(
                f"{'':21s} {unit} per step {r['stock_launches_per_step']:.1f} → "
                f"{r['converted_launches_per_step']:.1f} (added {r['added_launches']:+.1f}); "
                f"normaliser corrections {r['norm_launches']:.1f} for {r['normalisers']} "
                "normalisers"
            )
            if "check_error" in r:
                print(
                    f"{'':21s} first-update check raised (timed with check=False): "
                    f"{r['check_error'].splitlines()[0]}"
                )
            if "sync_check" in r:
                print(f"{'':21s} sync check: {json.dumps(r['sync_check'])}")
    if not args.sync_check:
        res["sync_check"] = "not run (--sync-check)"
    elif device.type != "cuda":
        res["sync_check"] = "skipped: torch.cuda.set_sync_debug_mode exists only on CUDA"
        print(res["sync_check"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
