"""gpu_validation: the CIFAR-10 smoke check, the data loaders, on-device augmentation and the CLI.

The smoke run trains recipes a (step decay + WD), b (exact no-WD, general
theorem) and c (TEXP) on 2048 real CIFAR-10 images in float64 and must keep
b and c equal to θ_a / c_t to 1e-10 relative (the general theorem,
proofs/general_schedule.py); measured: about 1e-13 after 256 steps.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from equivalence.verify.noise_floor import trajectory_tol
from gpu_validation import SMOKE, Config, main, smoke
from gpu_validation.augment import DeviceAugmenter, EpochDraw, crop_flip, draw_epoch, normalize
from gpu_validation.config import parse_config
from gpu_validation.data import Cifar10, load_cifar10, read_torchvision_dir
from gpu_validation.measure import invariance_check
from gpu_validation.model import PreResNet, conv_weights, init_weights
from gpu_validation.runner import exact_check

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "cifar10_jpeg.npz"
if (
    os.environ.get("EXP_LR_REQUIRE_DATA") and not DATA.is_file()
):  # CI: a skip would hide the smoke run
    raise RuntimeError(f"EXP_LR_REQUIRE_DATA is set but the CIFAR-10 archive is not at {DATA}")
needs_data = pytest.mark.skipif(not DATA.is_file(), reason=f"CIFAR-10 archive not at {DATA}")
TINY = dict(epochs=2, n_train=64, n_test=32, probe_size=16, batch_size=32, progress=False)


# -- the smoke run on real CIFAR-10 -------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    if not DATA.is_file():
        pytest.skip(f"CIFAR-10 archive not at {DATA}")
    out = tmp_path_factory.mktemp("smoke")
    code = main(
        ["--smoke", "--device", "cpu", "--data", str(DATA), "--out", str(out), "--no-progress"]
    )
    return code, json.loads((out / "results.json").read_text()), out


@needs_data
def test_smoke_passes_and_records(smoke_run: tuple[int, dict, Path]) -> None:
    code, res, out = smoke_run
    assert code == 0
    chk = res["check"]
    assert chk["passed"], chk["failures"]
    assert chk["tolerance"] == 1e-10
    assert 0 <= chk["max_relative_parameter_error"] <= 1e-10
    assert chk["max_probe_distance"] <= 1e-10
    cfg = res["config"]
    assert cfg["smoke"] and cfg["dtype"] == "float64" and cfg["recipes"] == ["a", "b", "c"]
    assert (cfg["lr"], cfg["momentum"], cfg["weight_decay"]) == (0.1, 0.9, 5e-4)
    assert res["versions"]["torch"] == torch.__version__ and "git_commit" in res
    (run,) = res["runs"]
    assert run["completed"] and run["n_train"] == 2048 and run["n_test"] == 1024
    assert (
        run["total_steps"] == 256
        and 0 < min(run["milestone_steps"]) < max(run["milestone_steps"]) < 256
    )
    assert len(run["epochs"]) == cfg["epochs"]
    # the LR drops inside the run, for every recipe
    lrs = [e["recipes"]["a"]["lr_first_step"] for e in run["epochs"]]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001)
    # every recipe: the same final test accuracy (same network function), above chance
    accs = run["summary"]["final_test_acc"]
    assert set(accs) == {"a", "b", "c"}
    assert accs["a"] > 0.1
    assert accs["b"] == accs["a"] and accs["c"] == accs["a"]
    for k in ("b", "c"):
        assert run["summary"]["max_relative_parameter_error"][k] <= 1e-10
    # the invariance checks: joint scaling exact, the stem alone not (negative control)
    assert run["invariance"]["all_convs"] < 1e-12
    assert run["invariance"]["stem_only_negative_control"] > 1e-3
    if run["audit"].get("used") == "equivalence.audit":
        assert run["audit"]["invariant_agrees"] and run["audit"]["norm_layers_agree"]
    # ‖w‖²/η̃ and the effective LR agree between a and b (same function, same dynamics)
    last = run["epochs"][-1]["recipes"]
    assert last["b"]["log10_effective_lr"] == pytest.approx(
        last["a"]["log10_effective_lr"], abs=1e-3
    )
    assert (out / "seed0.png").is_file()


@needs_data
def test_report_overlay(smoke_run: tuple[int, dict, Path], tmp_path: Path) -> None:
    from gpu_validation.report import main as report_main

    _, _, out = smoke_run
    target = tmp_path / "overlay.png"
    assert report_main([str(out), "--out", str(target)]) == 0
    assert target.stat().st_size > 0


@needs_data
def test_smoke_api_tiny(tmp_path: Path) -> None:
    res = smoke(DATA, tmp_path, **TINY)
    assert res["check"]["passed"], res["check"]["failures"]
    assert res["runs"][0]["total_steps"] == 4 and res["runs"][0]["milestone_steps"] == [2]
    assert json.loads((tmp_path / "results.json").read_text())["check"]["passed"]


@needs_data
def test_exact_check_can_fail(tmp_path: Path) -> None:
    """Negative control: an impossible tolerance fails the check and the CLI exits 1."""
    argv = [
        "--smoke",
        "--data",
        str(DATA),
        "--out",
        str(tmp_path),
        "--epochs",
        "2",
        "--n-train",
        "64",
        "--n-test",
        "32",
        "--batch-size",
        "32",
        "--tolerance",
        "1e-300",
        "--no-progress",
        "--recipes",
        "a,b",
    ]
    assert main(argv) == 1
    res = json.loads((tmp_path / "results.json").read_text())
    assert not res["check"]["passed"] and res["check"]["failures"]


def test_smoke_api_rejects_unknown_setting(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown settings"):
        smoke(DATA, tmp_path, epoch=3)


# -- data loaders -----------------------------------------------------------------------------------


@needs_data
def test_npz_subset_decodes_like_pillow() -> None:
    from PIL import Image

    d = load_cifar10(DATA, n_train=40, n_test=20, subset_seed=3)
    assert d.train_x.shape == (40, 32, 32, 3) and d.train_x.dtype == np.uint8
    assert d.test_x.shape == (20, 32, 32, 3) and d.train_y.dtype == np.int64
    assert set(np.unique(d.train_y)) <= set(range(10))
    rng = np.random.default_rng(3)
    idx = np.sort(rng.permutation(50_000)[:40])
    with np.load(DATA) as z:
        off, blob = z["train_offsets"], z["train_jpeg"]
        i = int(idx[7])
        ref = np.asarray(Image.open(io.BytesIO(blob[off[i] : off[i + 1]].tobytes())).convert("RGB"))
        assert np.array_equal(d.train_x[7], ref)
        assert d.train_y[7] == z["train_labels"][i]


def _jpeg_npz(path: Path, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {"classes": np.array([f"c{i}" for i in range(10)])}
    for split, n in (("train", n_train), ("test", n_test)):
        blobs, offs = [], [0]
        for _ in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                buf, format="JPEG"
            )
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
            offs.append(offs[-1] + blobs[-1].size)
        out[f"{split}_jpeg"] = np.concatenate(blobs)
        out[f"{split}_offsets"] = np.array(offs, dtype=np.int64)
        out[f"{split}_labels"] = rng.integers(0, 10, n).astype(np.uint8)
    np.savez(path, **out)
    return out


def test_npz_full_decode_writes_and_reads_cache(tmp_path: Path) -> None:
    src = tmp_path / "tiny.npz"
    raw = _jpeg_npz(src, 12, 5)
    cache = tmp_path / "cache"
    first = load_cifar10(src, cache_dir=cache)
    assert first.train_x.shape == (12, 32, 32, 3) and first.test_x.shape == (5, 32, 32, 3)
    assert np.array_equal(first.train_y, raw["train_labels"].astype(np.int64))
    assert len(list(cache.glob("*.npy"))) == 4
    second = load_cifar10(src, cache_dir=cache)
    assert "cache" in second.source
    assert np.array_equal(first.train_x, second.train_x) and np.array_equal(
        first.test_y, second.test_y
    )
    sub = load_cifar10(src, n_train=4, n_test=2, cache_dir=cache, subset_seed=1)
    assert sub.train_x.shape == (4, 32, 32, 3)
    with pytest.raises(ValueError, match="n_train"):
        load_cifar10(src, n_train=13)


def _torchvision_dir(root: Path, per_batch: int = 3) -> tuple[np.ndarray, np.ndarray]:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        with open(d / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        xs.append(data)
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def test_torchvision_layout(tmp_path: Path) -> None:
    flat, labels = _torchvision_dir(tmp_path)
    d = read_torchvision_dir(tmp_path)
    assert d.train_x.shape == (15, 32, 32, 3) and d.test_x.shape == (3, 32, 32, 3)
    # channel-major rows: pixel (h, w) of channel c is data[c*1024 + h*32 + w]
    assert d.train_x[4, 5, 6, 2] == flat[4, 2 * 1024 + 5 * 32 + 6]
    assert d.test_x[1, 31, 0, 1] == flat[16, 1 * 1024 + 31 * 32 + 0]
    assert np.array_equal(d.train_y, labels[:15]) and np.array_equal(d.test_y, labels[15:])
    same = load_cifar10(tmp_path / "cifar-10-batches-py")
    assert np.array_equal(same.train_x, d.train_x)
    sub = load_cifar10(tmp_path, n_train=5, n_test=2)
    assert sub.train_x.shape == (5, 32, 32, 3) and sub.test_y.shape == (2,)


def test_missing_data_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_cifar10(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        read_torchvision_dir(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        Cifar10(
            np.zeros((2, 32, 32, 3)),
            np.zeros(2),
            np.zeros((1, 32, 32, 3), np.uint8),
            np.zeros(1),
            "x",
        )


# -- on-device augmentation ---------------------------------------------------------------------


def _images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_crop_flip_matches_numpy_reference() -> None:
    imgs = _images()
    padded = np.pad(imgs, ((0, 0), (4, 4), (4, 4), (0, 0)))
    draw = EpochDraw(
        perm=torch.tensor([3, 0, 5, 1, 2, 4]),
        dy=torch.tensor([0, 8, 4, 2, 7, 0]),
        dx=torch.tensor([8, 0, 4, 5, 1, 0]),
        flip=torch.tensor([0, 1, 1, 0, 1, 0]),
    )
    out = crop_flip(torch.from_numpy(padded), draw).numpy()
    assert out.shape == (6, 32, 32, 3) and out.dtype == np.uint8
    for i in range(6):
        p, dy, dx, fl = (int(t[i]) for t in (draw.perm, draw.dy, draw.dx, draw.flip))
        ref = padded[p, dy : dy + 32, dx : dx + 32]
        if fl:
            ref = ref[:, ::-1]
        assert np.array_equal(out[i], ref), i
    # offset (4, 4) is the original image (here mirrored); dx = 8 or dy = 8 puts 4 columns/rows of padding at the end
    assert np.array_equal(out[2][:, ::-1], imgs[5])
    assert not out[0][:, 28:].any() and not out[1][28:].any() and out[1][:28].any()


def test_epoch_is_deterministic_and_shaped() -> None:
    imgs, labels = _images(10), np.arange(10)
    for channels_last in (False, True):
        aug = DeviceAugmenter(imgs, labels, torch.device("cpu"), torch.float64, channels_last)
        x1, y1 = aug.epoch(torch.Generator().manual_seed(7))
        x2, y2 = aug.epoch(torch.Generator().manual_seed(7))
        x3, _ = aug.epoch(torch.Generator().manual_seed(8))
        assert x1.shape == (10, 3, 32, 32) and x1.dtype == torch.float64 and y1.dtype == torch.int64
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
        assert sorted(y1.tolist()) == list(range(10))  # a permutation, labels follow images
        assert x1.is_contiguous(memory_format=torch.channels_last) == channels_last
    draw = draw_epoch(1000, torch.Generator().manual_seed(0))
    assert (
        int(draw.dy.min()) == 0
        and int(draw.dy.max()) == 8
        and 0 < float(draw.flip.double().mean()) < 1
    )


def test_normalize_uses_cifar_statistics() -> None:
    x = torch.full((1, 2, 2, 3), 255, dtype=torch.uint8)
    out = normalize(x, torch.float64, channels_last=False)
    expected = (1.0 - torch.tensor([0.4914, 0.4822, 0.4465], dtype=torch.float64)) / torch.tensor(
        [0.2470, 0.2435, 0.2616], dtype=torch.float64
    )
    assert out.shape == (1, 3, 2, 2)
    # (255/255 − m)/s against (1 − m)/s: the same operations up to the exact 255/255 = 1, so at
    # most a few roundings apart; rtol 1e-15 is ~4.5 ulps (u = 2^-53 ≈ 1.1e-16)
    assert torch.allclose(out[0, :, 0, 0], expected, rtol=1e-15, atol=0)


# -- the model ----------------------------------------------------------------------------------------


def test_model_is_jointly_scale_invariant() -> None:
    model = PreResNet(depth=8, width=4, bn_eps=1e-30).double()
    init_weights(model, torch.Generator().manual_seed(0))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(w) for w in conv_weights(model)}
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    inv = invariance_check(model, x)
    assert inv["all_convs"] < 1e-13
    assert inv["stem_only_negative_control"] > 1e-3
    assert PreResNet(depth=32).depth == 32 and len(conv_weights(PreResNet(depth=32))) == 33


# -- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--recipes", "a,x"], "--recipes"),
        (["--recipes", "a,a"], "--recipes"),
        (["--epochs", "0"], "--epochs"),
        (["--dtype", "float16"], "--dtype"),
        (["--device", "tpu"], "--device"),
        (["--seeds", "-1"], "--seeds"),
        (["--dtype", "float64", "--amp"], "amp"),
        (["--depth", "9"], "depth"),
        (["--weight-decay", "0"], "weight_decay"),
        (["--momentum", "1.0"], "momentum"),
        (["--seeds", "1", "1"], "duplicate"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_defaults_are_the_papers() -> None:
    c = parse_config([])
    assert (c.lr, c.momentum, c.weight_decay, c.batch_size, c.epochs) == (0.1, 0.9, 5e-4, 128, 160)
    assert (c.depth, c.width, c.milestones, c.recipes, c.dtype) == (
        32,
        16,
        (80, 120),
        ("a", "b", "c"),
        "float32",
    )
    s = parse_config(["--smoke", "--epochs", "8", "--recipes", "a,b"])
    assert s.device == "cpu" and s.dtype == "float64" and s.epochs == 8 and s.milestones == (4, 6)
    assert s.recipes == ("a", "b") and s.exact_check
    assert parse_config(["--epochs", "16"]).milestones == (8, 12)
    with pytest.raises(ValueError, match="exact_check"):
        Config(exact_check=True, recipes=("b", "c"))


def test_missing_data_path_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--smoke",
            "--data",
            str(tmp_path / "absent.npz"),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    assert code == 2 and "absent.npz" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@needs_data
def test_cuda_tiny_run(tmp_path: Path) -> None:
    """The full code path on CUDA (float32, channels-last, lockstep a+b+c), two tiny epochs."""
    code = main(
        [
            "--device",
            "cuda",
            "--data",
            str(DATA),
            "--out",
            str(tmp_path),
            "--epochs",
            "2",
            "--n-train",
            "512",
            "--n-test",
            "256",
            "--no-progress",
        ]
    )
    assert code == 0
    res = json.loads((tmp_path / "results.json").read_text())
    run = res["runs"][0]
    assert (
        run["completed"] and run["channels_last"] and res["versions"]["device"].startswith("cuda")
    )
    # float32 with BN eps 1e-5: close, not exact, after 8 steps
    assert max(run["summary"]["max_probe_distance"].values()) < 1e-2


def _run_record(per_step: list[float]) -> dict:
    """A minimal run record as ``train_seed`` writes it (one epoch, recipe b)."""
    steps = len(per_step)
    return {
        "seed": 0,
        "completed": True,
        "summary": {"max_relative_parameter_error": {"b": max(per_step)}, "final_test_acc": {}},
        "param_rel_err_per_check": {"check_every": 1, "b": per_step},
        "epochs": [{"step": steps, "vs_a": {"b": {"probe_train_rel": 0.0, "probe_eval_rel": 0.0}}}],
        "milestone_steps": [steps // 2],
        "total_steps": steps,
        "invariance": {"all_convs": 0.0, "stem_only_negative_control": 1.0},
        "audit": {"skipped": "not run"},
    }


def test_exact_check_judges_every_step_by_the_error_model() -> None:
    """Errors within K·u·(t+1) at every step pass; one step above it fails, naming the step."""
    cfg = Config(**{**SMOKE, "data": "unused"})
    ok = [0.5 * trajectory_tol(t) for t in range(8)]
    assert exact_check(cfg, [_run_record(ok)])["passed"]
    bad = list(ok)
    bad[3] = 1.01 * trajectory_tol(3)  # still far below the 1e-10 tolerance
    res = exact_check(cfg, [_run_record(bad)])
    assert not res["passed"]
    assert any("step 3" in f for f in res["failures"]), res["failures"]


@needs_data
def test_reported_lr_of_b_is_the_equivalent_lr(smoke_run: tuple[int, dict, Path]) -> None:
    """Recipe b's reported log10 LR is log η̃_t = log η_t − log c_t − log c_{t+1} (general theorem).

    Reference: the stock MultiStepLR's per-step η_t (read from a stock SGD) through
    ``equivalence.log_equivalent_lrs``. Error model: the online converter carries log c_t as
    a product of float64 ratios, |Δ log c_t| ≤ 4u(t+1) + 512u|log c_t| (u = 2^-53); log η̃
    adds two such errors and one rounding of log η (u|log η̃|), and the division by ln 10
    one more ulp. Negative control: the param groups' lr (the stock η between updates
    under the online converter, what was reported before) is off by |log c_t + log c_{t+1}|.
    """
    from torch.optim.lr_scheduler import MultiStepLR

    from equivalence import log_equivalent_lrs
    from equivalence.verify.lockstep import SGDRecipe

    _, res, _ = smoke_run
    cfg = res["config"]
    (run,) = res["runs"]
    spe, total = run["steps_per_epoch"], run["total_steps"]
    stock = SGDRecipe(
        cfg["lr"],
        cfg["momentum"],
        cfg["weight_decay"],
        lr_scheduler=lambda o: MultiStepLR(o, run["milestone_steps"], cfg["lr_gamma"]),
    )
    lrs, wds = stock.per_step(total)
    log_eq = log_equivalent_lrs(lrs, wds, cfg["momentum"])
    u = 2.0**-53
    ln10 = np.log(10.0)
    worst_ratio = 0.0
    for e, ep in enumerate(run["epochs"]):
        t = (e + 1) * spe - 1  # the epoch's last update
        # |log c_t| + |log c_{t+1}| = |log η_t − log η̃_t| (both have the same sign)
        abs_log_c = abs(np.log(lrs[t]) - log_eq[t])
        tol_ln = 2 * 4 * u * (t + 2) + 512 * u * abs_log_c + u * abs(log_eq[t])
        tol = tol_ln / ln10 + u * abs(log_eq[t] / ln10)
        got = ep["recipes"]["b"]["log10_lr"]
        assert abs(got - log_eq[t] / ln10) <= tol, (e, got, log_eq[t] / ln10, tol)
        worst_ratio = max(worst_ratio, abs(got - log_eq[t] / ln10) / tol)
        first = e * spe  # exp turns the log's absolute error into a relative one (+ 2 ulps)
        tol_first = 2 * 4 * u * (first + 2) + 512 * u * abs(np.log(lrs[first]) - log_eq[first])
        assert ep["recipes"]["b"]["lr_first_step"] == pytest.approx(
            np.exp(log_eq[first]), rel=tol_first + abs(log_eq[first]) * u + 4 * u
        )
        # negative control: the stock η the groups hold is not η̃
        assert abs(np.log10(lrs[t]) - log_eq[t] / ln10) > 1e6 * tol
    print(f"reported log10 η̃ of b: worst |error| / tolerance {worst_ratio:.3f}")
