"""The Hugging Face Trainer, converted by one callback, equals the stock Trainer run.

A tiny ``transformers`` ResNet (BatchNorm, default eps) in float64, trained by the Trainer with
its defaults: its own AdamW with the no-decay groups (biases; the decayed ones get
weight_decay), the linear schedule with warm-up from lr = 0, and gradient clipping at
``max_grad_norm=1.0`` (``accelerator.clip_grad_norm_``, PyTorch's function). The converted
run adds ``ExpLRCallback(invariant=...)``; the audit names the invariant set (the eight
convolutions, each feeding a BatchNorm). Judged per step on the stock-unit parameters and
buffers and the eval-mode output on a probe batch, against the floor of
``tests/_integration.py`` (an ulp twin and two jitter twins of the stock Trainer run). The
Trainer's logged ``grad_norm`` (the norm it clips by) is the stock one, and after ``train()``
the model itself is the stock run's. Negative control: the same conversion without stock-unit
gradients (PyTorch's clipping then measures g/m).
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")

import equivalence as eq  # noqa: E402
from equivalence.integrations.huggingface import ExpLRCallback  # noqa: E402
from tests._integration import floor, jitter_hook, ratio, snapshot, ulp_up  # noqa: E402

STEPS = 30
torch.set_num_threads(1)
transformers.utils.logging.set_verbosity_error()

_g = torch.Generator().manual_seed(1)
X = torch.randn(64, 3, 32, 32, generator=_g, dtype=torch.float64)
Y = torch.randint(0, 10, (64,), generator=_g)
PROBE = torch.randn(8, 3, 32, 32, generator=_g, dtype=torch.float64)


class Images(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": X[i], "labels": Y[i]}


def resnet() -> Any:
    torch.manual_seed(0)
    cfg = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10
    )
    return transformers.ResNetForImageClassification(cfg).double()


def audited(model: Any) -> list[torch.Tensor]:
    """The user's call: the audit's invariant parameters."""
    batch = {"pixel_values": X[:8], "labels": Y[:8]}
    return eq.audit(model, batch, loss_fn=lambda out: out.loss).invariant_parameters()


class Recorder(transformers.TrainerCallback):  # type: ignore[misc]
    """Per step: stock-unit parameters and buffers, eval output on the probe batch; the logs."""

    def __init__(self, conversion: Any = None, jitter: int | None = None) -> None:
        self.conversion = conversion  # the callback whose .run converts, if any
        self.jitter = jitter
        self.rows: list[list[torch.Tensor]] = []
        self.grad_norms: list[float] = []
        self.scales: list[float] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.jitter is not None:
            kw["optimizer"].optimizer.register_step_post_hook(
                jitter_hook(kw["model"].parameters(), self.jitter)
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        model = kw["model"]
        run = getattr(self.conversion, "run", None)
        conv = run.converter if run is not None else None
        if run is not None:
            self.scales.append(run.current_scale())
        params = conv.stock_parameters(model) if conv else model.parameters()
        bufs = conv.stock_buffers(model) if conv else model.buffers()
        model.eval()
        with torch.no_grad():
            out = model(pixel_values=PROBE).logits
        model.train()
        self.rows.append(
            [*snapshot(params), *snapshot(b for b in bufs if b.is_floating_point()), out]
        )

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "grad_norm" in logs:
            self.grad_norms.append(float(logs["grad_norm"]))


class NoStockGrads(transformers.TrainerCallback):  # type: ignore[misc]
    """The negative control: the same conversion, gradients left in converted units."""

    run: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        model = kw["model"]
        self.run = eq.convert_optimizer(
            kw["optimizer"].optimizer, invariant=audited(model), model=model
        )


def train(callbacks: list[Any], model: Any = None) -> Any:
    model = resnet() if model is None else model
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out,
            use_cpu=True,
            report_to="none",
            max_steps=STEPS,
            per_device_train_batch_size=16,
            learning_rate=1e-2,
            weight_decay=0.1,
            warmup_steps=5,
            max_grad_norm=1.0,
            save_strategy="no",
            logging_strategy="steps",
            logging_steps=1,
            disable_tqdm=True,
            seed=42,
        )
        trainer = transformers.Trainer(
            model=model, args=args, train_dataset=Images(), callbacks=callbacks
        )
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        trainer.train()
    return trainer


def test_trainer_with_exp_lr_callback_equals_the_stock_trainer() -> None:
    ref = Recorder()
    stock = train([ref])
    assert sum(n > 1.0 for n in ref.grad_norms) > STEPS // 3, "max_grad_norm must actually clip"
    twins = []
    for j in range(3):
        model = resnet()
        if j == 0:
            ulp_up(model)
        rec = Recorder(jitter=None if j == 0 else 100 + j)
        train([rec], model)
        twins.append(rec.rows)
    fl = floor(twins, ref.rows)

    cb = ExpLRCallback(invariant=audited)
    rec = Recorder(cb)
    trainer = train([cb, rec])
    good = ratio(rec.rows, ref.rows, fl)
    norm_gap = max(abs(a - b) / b for a, b in zip(rec.grad_norms, ref.grad_norms, strict=True))
    # after train() the conversion is removed: the model itself is the stock run's
    final = [*trainer.model.state_dict().values()]
    final_ref = [*stock.model.state_dict().values()]
    final_gap = max(
        float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))
        for a, b in zip(final, final_ref, strict=True)
        if a.is_floating_point()
    )
    eps = {m.eps for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)}

    bad_cb = NoStockGrads()
    bad_rec = Recorder(bad_cb)
    train([bad_cb, bad_rec])
    bad = ratio(bad_rec.rows, ref.rows, fl)
    print(
        f"\nTrainer: {good:.3g} of 3x floor (scale {rec.scales[-1]:.5g}, floor at the end "
        f"{fl[-1]:.2g}), logged grad_norm {norm_gap:.2g} rel, final state_dict {final_gap:.2g} "
        f"rel; without stock-unit gradients {bad:.3g}"
    )
    assert good <= 1.0 and norm_gap <= 3 * fl[-1] and final_gap <= 3 * fl[-1]
    assert rec.scales[-1] > 1.01 and eps == {1e-5}
    found = cb.run.converter.sets[0]  # the probe ran at the first update, found the 8 BNs
    assert found.checked and len(found.norms) == 8
    assert bad > 100


def test_callback_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="invariant is required"):
        ExpLRCallback(invariant=None)
    with pytest.raises(TypeError, match="sets stock_grads itself"):
        ExpLRCallback(invariant=audited, stock_grads=False)
    cb = ExpLRCallback(invariant=audited)
    args = transformers.TrainingArguments(output_dir="unused", load_best_model_at_end=False)
    state = transformers.TrainerState(global_step=7)
    with pytest.raises(RuntimeError, match="cannot resume a Trainer checkpoint"):
        cb.on_train_begin(args, state, None, model=resnet(), optimizer=object())
    args.load_best_model_at_end = True
    with pytest.raises(RuntimeError, match="load_best_model_at_end"):
        cb.on_train_begin(
            args, transformers.TrainerState(), None, model=resnet(), optimizer=object()
        )
