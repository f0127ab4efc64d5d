"""Lightning, converted by one callback, equals the stock Lightning run; the monitor logs.

A LightningModule with a float64 Conv-BatchNorm network (default eps) whose
``configure_optimizers`` returns SGD (momentum, weight decay, a no-decay group for the
BatchNorm affines) and a per-step MultiStepLR; ``Trainer(gradient_clip_val=...)`` clips
inside Lightning's closure with PyTorch's function (active at most steps). The converted run
adds ``ExpLRCallback(invariant=...)`` to the callbacks, nothing else. Judged per step on the
stock-unit parameters and buffers and the eval-mode output on a probe batch, against the floor
of ``tests/_integration.py``; after ``fit`` the module itself is the stock run's. The
callback's :class:`equivalence.Monitor` scalars reach the trainer's CSVLogger, and its
scale-invariant figures equal a monitor on the stock run. Negative control: the same conversion
without stock-unit gradients.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

pl = pytest.importorskip("pytorch_lightning")

import equivalence as eq  # noqa: E402
from equivalence.integrations.lightning import ExpLRCallback  # noqa: E402
from tests._integration import Net, batches, floor, jitter_hook, ratio, snapshot, ulp_up  # noqa: E402

STEPS = 30
CLIP = 0.3
EVERY = 5
torch.set_num_threads(1)
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning"
)

X, Y, PROBE = batches(STEPS * 8)


class Module(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, ulp: bool = False) -> None:
        super().__init__()
        self.net = Net()
        if ulp:
            ulp_up(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        n = self.net
        opt = torch.optim.SGD(
            [
                {"params": [n.c1.weight, n.c2.weight, *n.head.parameters()]},
                {"params": [*n.b1.parameters(), *n.b2.parameters()], "weight_decay": 0.0},
            ],
            lr=0.1,
            momentum=0.9,
            weight_decay=5e-3,
        )
        sched = MultiStepLR(opt, [20], 0.3)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def train_dataloader(self) -> Any:
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8)


def invariant(module: Module) -> list[torch.Tensor]:
    return [module.net.c1.weight, module.net.c2.weight]


class Recorder(pl.Callback):  # type: ignore[misc]
    """Per step: stock-unit parameters and buffers, eval output; optionally a jitter twin, a
    stock monitor, and the gradient norm Lightning clipped by."""

    def __init__(self, conversion: Any = None, jitter: int | None = None, monitor: bool = False):
        self.conversion, self.jitter, self.monitor = conversion, jitter, monitor
        self.rows: list[list[torch.Tensor]] = []
        self.norms: list[float] = []
        self.scales: list[float] = []
        self.mon: Any = None

    def on_fit_start(self, trainer: Any, pl_module: Module) -> None:
        opt = trainer.optimizers[0]
        if self.jitter is not None:
            opt.register_step_post_hook(jitter_hook(pl_module.parameters(), self.jitter))
        if self.monitor:
            self.mon = eq.Monitor(opt, {"set0": invariant(pl_module)})

    def on_before_optimizer_step(self, trainer: Any, pl_module: Module, optimizer: Any) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.nn.utils.get_total_norm(grads)))

    def on_train_batch_end(self, trainer: Any, pl_module: Module, *args: Any) -> None:
        runs = getattr(self.conversion, "runs", None)
        conv = runs[0].converter if runs else None
        if runs:
            self.scales.append(runs[0].current_scale())
        net = pl_module.net
        params = conv.stock_parameters(net) if conv else net.parameters()
        bufs = conv.stock_buffers(net) if conv else net.buffers()
        net.eval()
        with torch.no_grad():
            out = net(PROBE)
        net.train()
        self.rows.append(
            [*snapshot(params), *snapshot(b for b in bufs if b.is_floating_point()), out]
        )


class NoStockGrads(pl.Callback):  # type: ignore[misc]
    """The negative control: the same conversion, gradients left in converted units."""

    runs: list[Any] = []

    def on_fit_start(self, trainer: Any, pl_module: Module) -> None:
        opt = trainer.optimizers[0]
        self.runs = [eq.convert_optimizer(opt, invariant=invariant(pl_module), model=pl_module)]


def fit(callbacks: list[Any], ulp: bool = False, logdir: str | None = None) -> Module:
    module = Module(ulp)
    logger: Any = False
    if logdir is not None:
        logger = pl.loggers.CSVLogger(logdir, name="run", version=0)
    trainer = pl.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        devices=1,
        logger=logger,
        log_every_n_steps=EVERY,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=CLIP,
        callbacks=callbacks,
    )
    trainer.fit(module)
    return module


def test_lightning_with_exp_lr_callback_equals_the_stock_run_and_logs_the_monitor() -> None:
    ref = Recorder(monitor=True)
    stock = fit([ref])
    assert len(ref.rows) == STEPS
    assert sum(n > CLIP for n in ref.norms) > STEPS // 2, "gradient_clip_val must actually clip"
    twins = []
    for j, rec in enumerate((Recorder(), Recorder(jitter=101), Recorder(jitter=102))):
        fit([rec], ulp=j == 0)
        twins.append(rec.rows)
    fl = floor(twins, ref.rows)

    with tempfile.TemporaryDirectory() as logdir:
        cb = ExpLRCallback(invariant=invariant)
        rec = Recorder(cb)
        module = fit([cb, rec], logdir=logdir)
        with open(Path(logdir) / "run" / "version_0" / "metrics.csv", newline="") as f:
            logged = list(csv.DictReader(f))
    good = ratio(rec.rows, ref.rows, fl)
    norm_gap = max(abs(a - b) / b for a, b in zip(rec.norms, ref.norms, strict=True))
    final_gap = max(
        float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))
        for a, b in zip(module.state_dict().values(), stock.state_dict().values(), strict=True)
        if a.is_floating_point()
    )
    # the monitor's scalars reached the logger, one row per step, equal to its records
    mon = cb.monitors[0]
    key = "monitor/set0/effective_lr"
    steps = [int(r["step"]) for r in logged if r.get(key)]
    sent = {int(r["step"]): float(r[key]) for r in logged if r.get(key)}
    mine = {r["step"]: r["effective_lr"] for r in mon.records}
    fields = ("effective_lr", "angular_update", "weight_norm_stock")
    mon_gap = max(
        abs(a[f] - b[f]) / abs(b[f])
        for a, b in zip(mon.records, ref.mon.records, strict=True)
        for f in fields
    )

    bad_cb = NoStockGrads()
    bad_rec = Recorder(bad_cb)
    fit([bad_cb, bad_rec])
    bad = ratio(bad_rec.rows, ref.rows, fl)
    print(
        f"\nLightning: {good:.3g} of 3x floor (scale {rec.scales[-1]:.4g}), clip norms {norm_gap:.2g} rel, final state_dict "
        f"{final_gap:.2g} rel, monitor vs stock monitor {mon_gap:.2g} rel, {len(steps)} logged "
        f"steps; without stock-unit gradients {bad:.3g}"
    )
    assert good <= 1.0 and norm_gap <= 3 * fl[-1] and final_gap <= 3 * fl[-1]
    assert rec.scales[-1] > 1.05
    assert steps == list(range(STEPS)) and sent == pytest.approx(mine, rel=1e-15)
    assert {k for r in logged for k, v in r.items() if v and k.startswith("monitor/")} >= {
        f"monitor/set0/{f}" for f in (*fields, "grad_norm_unit", "predicted_weight_norm")
    }
    assert mon_gap < 1e-9
    found = cb.runs[0].converter.sets[0]  # the probe ran at the first update
    assert found.checked and len(found.norms) == 2
    assert bad > 100


def test_callback_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="invariant is required"):
        ExpLRCallback(invariant=None)
    with pytest.raises(TypeError, match="sets stock_grads itself"):
        ExpLRCallback(invariant=invariant, stock_grads=False)
    with pytest.raises(ValueError, match="log_every_n_steps"):
        ExpLRCallback(invariant=invariant, log_every_n_steps=-1)
    other = nn.Parameter(torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="none of the invariant parameters"):
        fit([ExpLRCallback(invariant=[other], norm_layers=[])])
