"""The normaliser corrections cost a constant number of tensor ops per step, whatever the layer count.

After every converted update :class:`equivalence.NormLayers` multiplies the running means by
c_t/c_{t+1} and the variances by its square, and sets every ε to ε_user m². Both are grouped:
one ``torch._foreach_mul_`` per (device, dtype) group of means and one of variances, and, for
traceable normalisers (``run.make_compilable()``), one division into the float64 vector whose
elements are their ``_eps_t`` tensors. On CUDA each foreach call is one kernel launch (per
chunk of the foreach kernels), so the launches per step do not grow with the layers either.

Counted here on CPU as dispatched aten ops (a ``TorchDispatchMode``, which sees each call the
Python side makes, not the per-tensor loop inside a CPU foreach kernel) and as top-level aten
events of ``torch.profiler``: the same count for 4 and for 16 BatchNorms. Negative control: the
per-layer loop (``mul_`` twice and ``fill_`` once per layer) grows linearly with the layers.
The grouped corrections give the running statistics and ε of that loop, to the rounding of one
multiplication (or division) per step (another code path: compared within that, not bitwise).
"""

from __future__ import annotations

import collections
import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

import equivalence as eq
from equivalence.optim.compile_norms import make_stock, make_traceable

RATIOS = (0.999 / 1.001, 1.5, 2.0**-16, 1.0 / 3.0, 1.0 + 2.0**-40)
SCALES = (1.0, 0.7, 3.0**-5, 2.0**12, 1.0 / 7.0)


class OpCount(TorchDispatchMode):
    """Counts the aten ops dispatched inside the ``with`` block, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def ops_of(fn: Callable[[], object]) -> collections.Counter[str]:
    with OpCount() as c:
        fn()
    return c.ops


def profiled_top_level_ops(fn: Callable[[], object]) -> int:
    """Top-level ``aten::`` events of ``torch.profiler`` (the ops a CPU foreach kernel runs per
    tensor inside itself are its children, not counted)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(
        1
        for e in prof.events()
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    )


def stat(m: nn.Module, name: str) -> torch.Tensor:
    """The running statistic ``name`` of BatchNorm ``m``."""
    t = m._buffers[name]
    assert t is not None
    return t


def bns(
    n: int, seed: int = 0, dtypes: tuple[torch.dtype, ...] = (torch.float32,)
) -> list[nn.Module]:
    """``n`` BatchNorms (eps varying per layer) with random positive running statistics."""
    g = torch.Generator().manual_seed(seed)
    out: list[nn.Module] = []
    for i in range(n):
        bn = nn.BatchNorm2d(3 + i % 5, eps=1e-5 * (1 + i % 3)).to(dtypes[i % len(dtypes)])
        with torch.no_grad():
            stat(bn, "running_mean").copy_(torch.randn(bn.num_features, generator=g))
            stat(bn, "running_var").copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        out.append(bn)
    return out


def per_layer(
    layers: list[nn.Module], user_eps: list[float], ratio: float, inv_scale: float
) -> None:
    """The per-layer corrections: two ``mul_`` per layer, and a ``fill_`` per traceable one."""
    for m, eps in zip(layers, user_eps):
        stat(m, "running_mean").mul_(ratio)
        stat(m, "running_var").mul_(ratio * ratio)
        sq = inv_scale * inv_scale
        object.__setattr__(m, "eps", eps / sq)
        t = m.__dict__.get("_eps_t")
        if t is not None:
            t.fill_(eps / sq)


def grouped_step(norms: eq.NormLayers) -> Callable[[], None]:
    """One step's corrections through :class:`NormLayers`."""

    def step() -> None:
        norms.correct(0.999)
        norms.set_scale(0.5)

    return step


def test_grouped_corrections_issue_the_same_ops_for_4_and_16_batchnorms() -> None:
    counts, profiled = {}, {}
    for n in (4, 16):
        layers = bns(n)
        make_traceable(layers)  # the compile path: _eps_t tensors to set too
        norms = eq.NormLayers(layers)
        grouped_step(norms)()  # the first call groups and binds
        counts[n] = ops_of(grouped_step(norms))
        profiled[n] = profiled_top_level_ops(grouped_step(norms))
    print(f"\ngrouped, per step: {dict(counts[4])} (4 BN), {dict(counts[16])} (16 BN)")
    print(f"profiler, top-level aten ops: {profiled[4]} (4 BN), {profiled[16]} (16 BN)")
    assert counts[4] == counts[16] == {"aten._foreach_mul_": 2, "aten.div": 1}
    assert profiled[4] == profiled[16] == 3


def test_negative_control_per_layer_loop_grows_with_the_layers() -> None:
    counts, profiled = {}, {}
    for n in (4, 16):
        layers = bns(n)
        make_traceable(layers)
        eps = [float(m.__dict__["eps"]) for m in layers]
        counts[n] = ops_of(lambda: per_layer(layers, eps, 0.999, 0.5))  # noqa: B023
        profiled[n] = profiled_top_level_ops(lambda: per_layer(layers, eps, 0.999, 0.5))  # noqa: B023
    print(f"\nper layer: {dict(counts[4])} (4 BN), {dict(counts[16])} (16 BN)")
    assert counts[4] == {"aten.mul_": 8, "aten.fill_": 4}
    assert counts[16] == {"aten.mul_": 32, "aten.fill_": 16}
    assert (profiled[4], profiled[16]) == (12, 48)


def test_mixed_dtypes_cost_one_call_per_group() -> None:
    layers = bns(9, dtypes=(torch.float32, torch.float64, torch.float16))
    norms = eq.NormLayers(layers)
    norms.correct(0.5)
    assert ops_of(lambda: norms.correct(0.999)) == {"aten._foreach_mul_": 6}


def close(x: torch.Tensor, y: torch.Tensor, ops: int = 1) -> None:
    """x and y agree to ``ops`` correctly rounded operations of their dtype (relative)."""
    torch.testing.assert_close(x, y, rtol=ops * torch.finfo(x.dtype).eps, atol=0.0)


def near(x: float, y: float) -> bool:
    """Two float64 results of one correctly rounded division each, from different code."""
    return math.isclose(x, y, rel_tol=2 * torch.finfo(torch.float64).eps, abs_tol=0.0)


def test_grouped_corrections_equal_the_per_layer_arithmetic() -> None:
    for traceable in (False, True):
        layers = bns(11, seed=1, dtypes=(torch.float32, torch.float64, torch.float16))
        if traceable:
            make_traceable(layers)
        ref = copy.deepcopy(layers)
        user_eps = [float(m.__dict__["eps"]) for m in layers]
        norms = eq.NormLayers(layers)
        for ratio, inv_scale in zip(RATIOS, SCALES):
            norms.correct(ratio)
            norms.set_scale(inv_scale)
            per_layer(ref, user_eps, ratio, inv_scale)
            for a, b in zip(layers, ref):
                close(stat(a, "running_mean"), stat(b, "running_mean"), len(RATIOS))
                close(stat(a, "running_var"), stat(b, "running_var"), 2 * len(RATIOS))
                assert a.eps == b.eps  # the same Python expression, eps / inv_scale²
                if traceable:
                    ta, tb = a.__dict__["_eps_t"], b.__dict__["_eps_t"]
                    assert ta.dtype == tb.dtype == torch.float64 and ta.dim() == 0
                    assert near(ta.item(), tb.item()) and near(ta.item(), a.eps)
        norms.restore_eps()
        for m, eps in zip(layers, user_eps):
            assert m.eps == eps
            if traceable:
                assert near(m.__dict__["_eps_t"].item(), eps)


def test_replaced_buffers_and_stock_modules_are_followed() -> None:
    layers = bns(4)
    make_traceable(layers)
    norms = eq.NormLayers(layers)
    norms.correct(0.5)
    norms.set_scale(2.0)
    layers[1].double()  # new buffer tensors: the cached groups must follow
    before = stat(layers[1], "running_mean").clone()
    norms.correct(0.25)
    close(stat(layers[1], "running_mean"), before * 0.25)
    make_stock(layers[2])  # its _eps_t is gone: the others are rebound and still set
    norms.set_scale(4.0)
    assert "_eps_t" not in layers[2].__dict__ and layers[2].eps == 1e-5 * 3 / 16
    for i in (0, 1, 3):
        assert near(layers[i].__dict__["_eps_t"].item(), layers[i].eps)


def test_converted_step_adds_the_same_ops_for_4_and_16_layers() -> None:
    """The whole converted ``opt.step(); sched.step()`` minus the stock one, on MLPs with 4 and
    16 Linear+BatchNorm layers (foreach SGD with momentum and weight decay)."""
    added = {}
    for n in (4, 16):
        torch.manual_seed(0)
        body: list[nn.Module] = []
        for _ in range(n):
            body += [nn.Linear(8, 8, bias=False), nn.BatchNorm1d(8, affine=False), nn.ReLU()]
        net = nn.Sequential(*body, nn.Linear(8, 3))
        x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
        counts = []
        for convert in (False, True):
            model = copy.deepcopy(net)
            opt = torch.optim.SGD(
                model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, foreach=True
            )
            sched = MultiStepLR(opt, [1000], 0.1)
            if convert:
                inv = [m.weight for m in model if isinstance(m, nn.Linear) and m.out_features == 8]
                norms = [m for m in model if isinstance(m, nn.BatchNorm1d)]
                eq.convert_optimizer(opt, invariant=inv, norm_layers=norms, check=False)
            nn.functional.cross_entropy(model(x), y).backward()
            for _ in range(2):
                opt.step()
                sched.step()

            def step() -> None:
                opt.step()  # noqa: B023
                sched.step()  # noqa: B023

            c = ops_of(step)
            counts.append(sum(v for k, v in c.items() if k.startswith("aten.")))
        added[n] = counts[1] - counts[0]
    print(f"\nconverted − stock aten ops per step: {added[4]} (4 BN), {added[16]} (16 BN)")
    assert added[4] == added[16]


def test_cuda_step_benchmark_runs_on_cpu(tmp_path: Any) -> None:
    """``tests/benchmarks/bench_cuda_step.py --device cpu`` at the smallest sizes: the script the
    GPU run uses works, counts 2 ops for the corrections and reports the sync check skipped."""
    import json

    from benchmarks.bench_cuda_step import main

    out = tmp_path / "bench.json"
    args = "--device cpu --networks preresnet32 --forms fused --preresnet-batch 2"
    args += " --steps 2 --train-steps 1 --repeats 1 --sync-check --json"
    threads = torch.get_num_threads()
    try:
        assert main([*args.split(), str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # main() sets its own
    res = json.loads(out.read_text())
    r = res["preresnet32_fused"]
    assert r["normalisers"] == 31 and r["norm_launches"] == 2.0
    assert r["step_ratio"] > 0 and r["train_ratio"] > 0
    assert res["sync_check"].startswith("skipped")
