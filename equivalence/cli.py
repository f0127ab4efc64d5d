"""``python -m equivalence``: the equivalent exponential-LR schedule of an SGD recipe.

Subcommands:

- ``schedule``: print η̃ for a recipe given with PyTorch's names (``--lr``,
  ``--weight-decay``, ``--momentum``, ``--milestones``, ``--gamma``, warm-up
  and cosine options), per step or per epoch, as CSV or JSON, optionally
  plotted (:func:`plot_schedule`; missing output folders are created).

Negative numbers are accepted as option values in every spelling
(``--weight-decay -1e-4`` as well as ``--weight-decay=-1e-4``) and refused with
the valid range.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import __version__
from .schedule import schedules
from .schedule.closed_form import per_epoch_growth
from .schedule.recipe import FORMS, ExpLRSchedule

_LN10 = math.log(10.0)


@dataclass(frozen=True)
class ScheduleConfig:
    """A step-decay / cosine / warm-up SGD recipe; defaults are the paper's CIFAR-10 recipe."""

    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    epochs: int = 160
    steps_per_epoch: int = 391
    milestones: tuple[int, ...] = (80, 120)
    gamma: float = 0.1
    cosine: bool = False
    eta_min: float = 0.0
    warmup_epochs: int = 0
    warmup_start_factor: float = 0.1
    form: str = "general"
    per: str = "epoch"
    format: str = "csv"
    wd_milestones: tuple[int, ...] = field(default_factory=tuple)
    wd_gamma: float = 1.0

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def recipe_lrs(cfg: ScheduleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-step (lrs, weight_decay) of a :class:`ScheduleConfig` (pure schedule functions)."""
    spe, n = cfg.steps_per_epoch, cfg.steps
    warm = cfg.warmup_epochs * spe
    if cfg.cosine:
        main = schedules.cosine(cfg.lr, n - warm + 1, cfg.eta_min)  # + 1 keeps the last LR > 0
    else:
        main = schedules.multistep(
            cfg.lr, [max(m * spe - warm, 0) for m in cfg.milestones], cfg.gamma
        )
    if warm:
        sched = schedules.join(
            [schedules.linear_warmup(cfg.lr, warm, cfg.warmup_start_factor), main], [warm]
        )
    else:
        sched = main
    lrs = schedules.materialize(sched, n)
    wd = cfg.weight_decay * cfg.wd_gamma ** np.searchsorted(
        [m * spe for m in cfg.wd_milestones], np.arange(n), side="right"
    ).astype(np.float64)
    return lrs, wd


def _fmt(log_value: float) -> str:
    """Decimal text of exp(log_value), also past float64's range."""
    if log_value < 700.0:
        return repr(float(math.exp(log_value)))
    l10 = log_value / _LN10
    e = math.floor(l10)
    return f"{10.0 ** (l10 - e):.15f}e+{e}"


def schedule_table(cfg: ScheduleConfig) -> tuple[dict[str, np.ndarray], ExpLRSchedule]:
    lrs, wd = recipe_lrs(cfg)
    sched = ExpLRSchedule.build(cfg.form, lrs, wd, cfg.momentum)
    steps = (
        np.arange(cfg.steps) if cfg.per == "step" else np.arange(cfg.epochs) * cfg.steps_per_epoch
    )
    return {
        "step": steps,
        "epoch": steps / cfg.steps_per_epoch,
        "lr": lrs[steps],
        "weight_decay": wd[steps],
        "log_equivalent_lr": sched.log_lrs[steps],
        "log_scale": sched.log_scales[steps],
    }, sched


def _write_csv(cols: dict[str, np.ndarray], out: TextIO) -> None:
    out.write("step,epoch,lr,weight_decay,equivalent_lr,log10_equivalent_lr,scale\n")
    step = cols["step"].tolist()
    epoch = cols["epoch"].tolist()
    lr = cols["lr"].tolist()
    wd = cols["weight_decay"].tolist()
    le = cols["log_equivalent_lr"].tolist()
    lc = cols["log_scale"].tolist()
    big = max(le) >= 700.0 if le else False
    if not big:
        eq = np.exp(cols["log_equivalent_lr"]).tolist()
        sc = np.exp(cols["log_scale"]).tolist()
        lines = [
            f"{s},{e:.6g},{a!r},{w!r},{q!r},{l / _LN10:.12f},{c!r}"
            for s, e, a, w, q, l, c in zip(step, epoch, lr, wd, eq, le, sc)
        ]
    else:
        lines = [
            f"{s},{e:.6g},{a!r},{w!r},{_fmt(l)},{l / _LN10:.12f},{_fmt(c)}"
            for s, e, a, w, l, c in zip(step, epoch, lr, wd, le, lc)
        ]
    out.write("\n".join(lines))
    out.write("\n")


def _summary(cfg: ScheduleConfig, sched: ExpLRSchedule) -> dict[str, Any]:
    spe = cfg.steps_per_epoch
    summary: dict[str, Any] = {
        "steps": cfg.steps,
        "form": cfg.form,
        "final_log10_equivalent_lr": float(sched.log_lrs[-1] / _LN10),
        "max_log10_equivalent_lr": float(sched.log_lrs.max() / _LN10),
        "final_log10_scale": float(sched.log_scales[-1] / _LN10),
    }
    try:
        summary["closed_form_growth_per_epoch"] = per_epoch_growth(
            cfg.lr, cfg.weight_decay, cfg.momentum, spe
        )
        summary["closed_form_growth_per_step"] = per_epoch_growth(
            cfg.lr, cfg.weight_decay, cfg.momentum, 1
        )
    except ValueError as exc:
        summary["closed_form_growth_per_epoch"] = None
        summary["closed_form_note"] = str(exc)
    if cfg.steps >= 2 * spe:
        # growth over the last whole epoch before the first milestone (at least epoch 1 → 2)
        first = cfg.milestones[0] if cfg.milestones else cfg.epochs
        e = max(2, min(cfg.epochs - 1, first - 1))
        summary["measured_growth_per_epoch"] = math.exp(
            float(sched.log_lrs[e * spe - 1] - sched.log_lrs[(e - 1) * spe - 1])
        )
    return summary


def plot_schedule(cfg: ScheduleConfig, sched: ExpLRSchedule, path: str) -> None:
    """Plot log10 η_t and log10 η̃_t per epoch, and log10 c_t (θ̃_t = θ_t / c_t), to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(cfg.steps) / cfg.steps_per_epoch
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    ax[0].plot(epochs, np.log10(sched.lrs), label="η_t (SGD + weight decay)")
    ax[0].plot(epochs, sched.log_lrs / _LN10, label=f"η̃_t (no weight decay, {cfg.form})")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("log10 learning rate")
    ax[0].legend()
    ax[0].set_title("Equivalent learning-rate schedules")
    ax[1].plot(np.arange(cfg.steps + 1) / cfg.steps_per_epoch, sched.log_scales / _LN10)
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("log10 c_t   (θ̃_t = θ_t / c_t)")
    ax[1].set_title("Scale of the weight-decay run")
    for a in ax:
        a.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _float_arg(name: str, *, allow_zero: bool):
    """argparse type: a finite float > 0 (or >= 0 with ``allow_zero``), errors naming the range."""
    low = "0 <=" if allow_zero else "0 <"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"{name} = {text} is outside the valid range {low} {name} < inf"
            )
        return v

    return parse


def _positive_float(name: str):
    return _float_arg(name, allow_zero=False)


def _nonneg_float(name: str):
    return _float_arg(name, allow_zero=True)


def _momentum(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"momentum must be a number, got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(
            f"momentum = {text} is outside the valid range 0 <= momentum < 1"
        )
    return v


def _pos_int(name: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(
                f"{name} = {v} is outside the valid range {name} >= {minimum}"
            )
        return v

    return parse


def add_schedule_parser(sub: argparse._SubParsersAction) -> None:
    d = ScheduleConfig()
    p = sub.add_parser(
        "schedule",
        help="print the equivalent exponential-LR schedule of an SGD recipe",
        description=(
            "Print the no-weight-decay learning-rate schedule that makes SGD follow exactly the same "
            "network functions as SGD with weight decay (general theorem; or the paper's closed form / "
            "TEXP). Defaults are the paper's CIFAR-10 recipe: lr 0.1, momentum 0.9, weight decay 5e-4, "
            "batch 128 (391 steps/epoch), lr x0.1 at epochs 80 and 120 of 160."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--lr", type=_positive_float("lr"), default=d.lr, help="initial learning rate η")
    p.add_argument(
        "--weight-decay",
        type=_nonneg_float("weight_decay"),
        default=d.weight_decay,
        help="coupled weight decay λ (torch.optim.SGD's weight_decay)",
    )
    p.add_argument("--momentum", type=_momentum, default=d.momentum, help="momentum γ in [0, 1)")
    p.add_argument("--epochs", type=_pos_int("epochs"), default=d.epochs)
    p.add_argument(
        "--steps-per-epoch",
        type=_pos_int("steps_per_epoch"),
        default=d.steps_per_epoch,
        help="optimizer steps per epoch (391 = 50,000 images at batch 128)",
    )
    p.add_argument(
        "--milestones",
        type=_pos_int("milestones", 0),
        nargs="*",
        default=list(d.milestones),
        help="epochs at which the LR is multiplied by --gamma (MultiStepLR)",
    )
    p.add_argument(
        "--gamma", type=_positive_float("gamma"), default=d.gamma, help="MultiStepLR factor"
    )
    p.add_argument("--cosine", action="store_true", help="cosine annealing instead of step decay")
    p.add_argument(
        "--eta-min",
        type=_nonneg_float("eta_min"),
        default=d.eta_min,
        help="final LR of the cosine schedule",
    )
    p.add_argument(
        "--warmup-epochs",
        type=_pos_int("warmup_epochs", 0),
        default=d.warmup_epochs,
        help="linear warm-up epochs (LinearLR) before the main schedule",
    )
    p.add_argument(
        "--warmup-start-factor",
        type=_positive_float("warmup_start_factor"),
        default=d.warmup_start_factor,
    )
    p.add_argument(
        "--wd-milestones",
        type=_pos_int("wd_milestones", 0),
        nargs="*",
        default=[],
        help="epochs at which the weight decay is multiplied by --wd-gamma",
    )
    p.add_argument("--wd-gamma", type=_nonneg_float("wd_gamma"), default=d.wd_gamma)
    p.add_argument(
        "--form",
        choices=FORMS,
        default=d.form,
        help="general: exact for any schedule; closed_form: the paper's η α^(-2t-1) (constant "
        "recipes); texp: the paper's tapered exponential",
    )
    p.add_argument(
        "--per", choices=("epoch", "step"), default=d.per, help="one row per epoch or per step"
    )
    p.add_argument("--format", choices=("csv", "json"), default=d.format)
    p.add_argument("--output", "-o", default="-", help="output file ('-' for stdout)")
    p.add_argument(
        "--plot", metavar="PNG", default=None, help="also draw the schedules to this PNG file"
    )
    p.set_defaults(func=_run_schedule)


def _run_schedule(args: argparse.Namespace) -> int:
    cfg = ScheduleConfig(
        lr=args.lr,
        weight_decay=args.weight_decay,
        momentum=args.momentum,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        milestones=tuple(args.milestones),
        gamma=args.gamma,
        cosine=args.cosine,
        eta_min=args.eta_min,
        warmup_epochs=args.warmup_epochs,
        warmup_start_factor=args.warmup_start_factor,
        form=args.form,
        per=args.per,
        format=args.format,
        wd_milestones=tuple(args.wd_milestones),
        wd_gamma=args.wd_gamma,
    )
    if cfg.warmup_epochs >= cfg.epochs:
        raise ValueError(f"warmup_epochs = {cfg.warmup_epochs} must be below epochs = {cfg.epochs}")
    cols, sched = schedule_table(cfg)
    summary = _summary(cfg, sched)
    for path in (args.output, args.plot):
        if path and path != "-":
            _make_parent(path)
    out: TextIO = sys.stdout if args.output == "-" else open(args.output, "w")  # noqa: SIM115
    try:
        if cfg.format == "csv":
            _write_csv(cols, out)
        else:
            rows = [
                {
                    "step": int(s),
                    "epoch": float(e),
                    "lr": float(a),
                    "weight_decay": float(w),
                    "log10_equivalent_lr": float(le / _LN10),
                    "equivalent_lr": _fmt(float(le)),
                    "log10_scale": float(lc / _LN10),
                }
                for s, e, a, w, le, lc in zip(
                    *(
                        cols[k]
                        for k in (
                            "step",
                            "epoch",
                            "lr",
                            "weight_decay",
                            "log_equivalent_lr",
                            "log_scale",
                        )
                    )
                )
            ]
            json.dump(
                {"config": asdict(cfg), "summary": summary, "rows": rows, "version": __version__},
                out,
                indent=1,
            )
            out.write("\n")
    finally:
        if out is not sys.stdout:
            out.close()
    growth = summary.get("closed_form_growth_per_epoch")
    if growth is not None:
        print(
            f"# growth of the equivalent LR in the first phase: x{growth:.6g} per epoch "
            f"({cfg.steps_per_epoch} steps); final log10 LR {summary['final_log10_equivalent_lr']:.4f}",
            file=sys.stderr,
        )
    if args.plot:
        plot_schedule(cfg, sched, args.plot)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m equivalence",
        description="Exact equivalence of SGD + weight decay and SGD with an exponential learning rate "
        "on scale-invariant networks (Li & Arora, ICLR 2020).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_schedule_parser(sub)
    return parser


_NUMBER = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^-(?:inf|nan)$", re.IGNORECASE)


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--opt -1e-4`` → ``--opt=-1e-4``: argparse takes ``-1e-4`` for an option otherwise."""
    out: list[str] = []
    for tok in argv:
        if out and _NUMBER.match(tok) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def _make_parent(path: str) -> None:
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot create the output folder {str(parent)!r}: {exc.strerror}"
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except (ValueError, OverflowError, OSError) as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    return 0  # pragma: no cover
