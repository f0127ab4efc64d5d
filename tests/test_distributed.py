"""DDP and FSDP2 (gloo, 2 CPU processes): the converted run equals the stock run.

Each process holds its own shard of every batch; DDP averages the gradients, so every rank
sees the same gradient and each rank's converter computes the same c_t locally (no extra
communication). Reference: stock ``SGD(weight_decay=λ)`` + ``MultiStepLR`` under DDP. Verdict
as in ``test_training_loops``: within 3× the noise floor, the stock DDP run against itself
from weights nudged by one ulp (plus 64 ulps of float64 for the first steps); the
negative control (eps left alone) must fail it.
"""

from __future__ import annotations

import copy
import math
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.lr_scheduler import MultiStepLR

sys.path.insert(0, str(Path(__file__).resolve().parent))

U = float(np.finfo(np.float64).eps)
FLOOR_MIN = 64 * U
STEPS = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _full(p: torch.Tensor) -> torch.Tensor:
    return p.full_tensor() if hasattr(p, "full_tensor") else p


def _train(
    model: nn.Module,
    rank: int,
    convert: bool,
    adjust_eps: bool = True,
    fsdp: bool = False,
    clip: float | None = None,
) -> tuple[list, float]:
    import equivalence as eq

    if fsdp:
        from torch.distributed.fsdp import fully_shard

        ddp = fully_shard(model)
    else:
        ddp = DDP(model)
    params = [p for p in ddp.parameters() if p.requires_grad]
    inv = model.invariant()
    if convert:
        run = eq.convert(
            params,
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-3,
            invariant=inv,
            norm_layers=model.norm_layers(),
            adjust_eps=adjust_eps,
        )
        opt, scale, clip_fn = run.optimizer, run.current_scale, run.clip_grad_norm_
    else:
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-3)
        scale = lambda: 1.0  # noqa: E731
        clip_fn = lambda mx: torch.nn.utils.clip_grad_norm_(params, mx)  # noqa: E731
    sched = MultiStepLR(opt, [25], 0.1)
    g = torch.Generator().manual_seed(1)
    trace = []
    for _ in range(STEPS):
        x = torch.randn(2, 8, 6, generator=g, dtype=torch.float64)[rank]  # this rank's shard
        y = torch.randint(0, 3, (2, 8), generator=g)[rank]
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        if clip is not None:
            clip_fn(clip)
        opt.step()
        sched.step()
        with torch.no_grad():
            trace.append(torch.cat([_full(p).reshape(-1) for p in inv]) / scale())
    return trace, scale()


def _worker(rank: int, port: int, out: str, fsdp: bool = False) -> None:
    from test_training_loops import make_net, nudge

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        base = make_net(4)
        kw = {"fsdp": fsdp, "clip": 0.3 if fsdp else None}
        stock, _ = _train(copy.deepcopy(base), rank, convert=False, **kw)
        twin = copy.deepcopy(base)
        nudge(twin)
        floor, _ = _train(twin, rank, convert=False, **kw)
        conv, m = _train(copy.deepcopy(base), rank, convert=True, **kw)
        no_eps, _ = _train(copy.deepcopy(base), rank, convert=True, adjust_eps=False, **kw)

        def rel(a: list, b: list) -> np.ndarray:
            return np.array([float((x - y).norm() / y.norm()) for x, y in zip(a, b)])

        bound = 3 * np.maximum(FLOOR_MIN, np.maximum.accumulate(rel(floor, stock)))
        torch.save(
            {
                "ratio": float(np.max(rel(conv, stock) / bound)),
                "neg_ratio": float(np.max(rel(no_eps, stock) / bound)),
                "floor": float(rel(floor, stock).max()),
                "scale": m,
            },
            f"{out}.{rank}",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # about 30 s each on the shared 2-core CI machine, almost all of it process start-up
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp2_with_clipping"])
def test_two_processes_converted_equals_stock(tmp_path, fsdp):
    """DDP, and FSDP2 (``fully_shard``: DTensor parameters, sharded buffers) with run.clip_grad_norm_."""
    out = str(tmp_path / "res")
    mp.spawn(_worker, args=(_free_port(), out, fsdp), nprocs=2, join=True)
    res = [torch.load(f"{out}.{r}") for r in range(2)]
    for r in res:
        print(
            f"{'FSDP2' if fsdp else 'DDP'} rank: err/bound {r['ratio']:.3g}, floor {r['floor']:.3g}, no-eps control "
            f"{r['neg_ratio']:.3g}, scale {r['scale']:.6g}"
        )
        assert r["ratio"] <= 1.0
        assert r["neg_ratio"] > 100
        assert r["scale"] > 1.01 and not math.isclose(r["scale"], 1.0)
    assert res[0]["scale"] == res[1]["scale"]  # every rank computes the same c_t
