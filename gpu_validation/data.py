"""CIFAR-10 as uint8 arrays, from the project's JPEG archive or torchvision's layout.

Two sources give the same arrays (N, 32, 32, 3) uint8 and int64 labels:

- ``cifar10_jpeg.npz`` (shared/data/README.md): every image's JPEG bytes,
  decoded once with Pillow; the decoded full set is cached as ``.npy`` files
  in a cache directory (default ``<repo>/data/cache``, git-ignored) so later
  runs skip the decoding. A subset (the smoke mode) decodes only its images.
- torchvision's ``cifar-10-batches-py`` directory (pickled dicts with
  ``b'data'`` uint8 (N, 3072), channel-major, and ``b'labels'``), read
  directly; torchvision itself is only needed for ``download``.

Subsets are drawn with a seeded ``numpy.random.Generator`` (the archive is
sorted by class, so a prefix would not do).
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Cifar10",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "REPO_ROOT",
    "default_data_path",
    "download_cifar10",
    "load_cifar10",
    "read_npz",
    "read_torchvision_dir",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
_BATCHES = "cifar-10-batches-py"
_NPZ_NAME = "cifar10_jpeg.npz"


@dataclass(frozen=True, eq=False)
class Cifar10:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of a train and a test split."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            x, y = getattr(self, f"{name}_x"), getattr(self, f"{name}_y")
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
                raise ValueError(f"{name}_x must be uint8 (N, 32, 32, 3), got {x.dtype} {x.shape}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"{name}_y has shape {y.shape}, expected ({x.shape[0]},)")


def default_data_path(cwd: Path | None = None) -> Path | None:
    """The first of ``<repo>/../shared/data/cifar10_jpeg.npz`` (or ``<repo>/shared/...``), ``./data``, ``<repo>/data`` holding CIFAR-10."""
    here = Path.cwd() if cwd is None else Path(cwd)
    candidates = [
        REPO_ROOT.parent / "shared" / "data" / _NPZ_NAME,
        REPO_ROOT / "shared" / "data" / _NPZ_NAME,
    ]
    for base in (here / "data", REPO_ROOT / "data"):
        candidates += [base / _NPZ_NAME, base]
    for c in candidates:
        if c.is_file() and c.suffix == ".npz":
            return c
        if c.is_dir() and ((c / _BATCHES).is_dir() or c.name == _BATCHES):
            return c
    return None


def _subset(n_total: int, n: int | None, rng: np.random.Generator, what: str) -> np.ndarray | None:
    if n is None:
        return None
    if not 1 <= n <= n_total:
        raise ValueError(f"{what} = {n!r} is outside the valid range [1, {n_total}]")
    return np.sort(rng.permutation(n_total)[:n])


def _decode(blob: np.ndarray, offsets: np.ndarray, idx: np.ndarray, workers: int) -> np.ndarray:
    from PIL import Image

    def one(i: int) -> np.ndarray:
        data = blob[offsets[i] : offsets[i + 1]].tobytes()
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        if arr.shape != (32, 32, 3):
            raise ValueError(f"image {i} decodes to shape {arr.shape}, expected (32, 32, 3)")
        return arr

    out = np.empty((idx.size, 32, 32, 3), dtype=np.uint8)
    chunks = np.array_split(np.arange(idx.size), max(1, workers * 4))

    def fill(chunk: np.ndarray) -> None:
        for j in chunk:
            out[j] = one(int(idx[j]))

    if workers <= 1 or idx.size < 4096:
        fill(np.arange(idx.size))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fill, chunks))
    return out


def _cache_names(path: Path, cache_dir: Path) -> dict[str, Path]:
    st = path.stat()
    tag = f"{path.stem}-{st.st_size}-{int(st.st_mtime)}"
    return {k: cache_dir / f"{tag}-{k}.npy" for k in ("train_x", "train_y", "test_x", "test_y")}


def _save_atomic(target: Path, arr: np.ndarray) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_npz(
    path: Path,
    train_idx: np.ndarray | None = None,
    test_idx: np.ndarray | None = None,
    cache_dir: Path | None = None,
) -> Cifar10:
    """Decode the JPEG archive (all images, or only ``train_idx``/``test_idx``).

    With ``cache_dir`` the fully decoded arrays are read from (or written to)
    ``.npy`` files there; a subset is cut from the cache when it exists and is
    decoded on its own otherwise (no cache is written for a subset).
    """
    path = Path(path)
    names = _cache_names(path, Path(cache_dir)) if cache_dir is not None else None
    if names is not None and all(p.is_file() for p in names.values()):
        arrs = {k: np.load(p, allow_pickle=False) for k, p in names.items()}
        tr = slice(None) if train_idx is None else train_idx
        te = slice(None) if test_idx is None else test_idx
        return Cifar10(
            arrs["train_x"][tr],
            arrs["train_y"][tr],
            arrs["test_x"][te],
            arrs["test_y"][te],
            f"{path} (cache {names['train_x'].parent})",
        )
    workers = min(16, os.cpu_count() or 1)
    with np.load(path, allow_pickle=False) as z:
        out = {}
        for split, idx in (("train", train_idx), ("test", test_idx)):
            offsets = z[f"{split}_offsets"]
            labels = z[f"{split}_labels"].astype(np.int64)
            sel = np.arange(labels.size) if idx is None else idx
            out[f"{split}_x"] = _decode(z[f"{split}_jpeg"], offsets, sel, workers)
            out[f"{split}_y"] = labels[sel]
    if names is not None and train_idx is None and test_idx is None:
        for k, p in names.items():
            _save_atomic(p, out[k])
    return Cifar10(out["train_x"], out["train_y"], out["test_x"], out["test_y"], str(path))


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def read_torchvision_dir(root: Path) -> Cifar10:
    """Read torchvision's ``cifar-10-batches-py`` (``root`` is it or its parent)."""
    root = Path(root)
    d = root if root.name == _BATCHES else root / _BATCHES
    if not d.is_dir():
        raise FileNotFoundError(
            f"{root} holds no {_BATCHES} directory (torchvision's CIFAR-10 layout)"
        )

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in files:
            p = d / name
            if not p.is_file():
                raise FileNotFoundError(f"{p} is missing from torchvision's CIFAR-10 layout")
            entry = _unpickle(p)
            data = np.asarray(entry[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072:
                raise ValueError(f"{p}: b'data' has shape {data.shape}, expected (N, 3072)")
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(entry[b"labels"], dtype=np.int64))
        return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)

    train_x, train_y = read([f"data_batch_{i}" for i in range(1, 6)])
    test_x, test_y = read(["test_batch"])
    return Cifar10(train_x, train_y, test_x, test_y, str(d))


def download_cifar10(root: Path) -> Path:
    """Download torchvision's CIFAR-10 into ``root`` (needs torchvision importable)."""
    try:
        import torchvision  # noqa: F401
        from torchvision.datasets import CIFAR10
    except Exception as e:  # ImportError, or a torchvision built for another torch
        raise RuntimeError(
            f"--download needs torchvision, which does not import here ({e!r}); pass --data with "
            "cifar10_jpeg.npz or a directory holding cifar-10-batches-py instead"
        ) from e
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    CIFAR10(str(root), train=True, download=True)
    CIFAR10(str(root), train=False, download=True)
    return root


def load_cifar10(
    path: Path | str,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    subset_seed: int = 0,
    cache_dir: Path | str | None = None,
) -> Cifar10:
    """Load CIFAR-10 from ``path`` (the JPEG ``.npz`` or a torchvision root), optionally a subset.

    ``n_train``/``n_test`` pick that many images at random (``subset_seed``);
    ``None`` keeps the whole split.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"CIFAR-10 not found at {p}")
    rng = np.random.default_rng(subset_seed)
    if p.is_file():
        if p.suffix != ".npz":
            raise ValueError(f"{p} is neither an .npz archive nor a directory holding {_BATCHES}")
        with np.load(p, allow_pickle=False) as z:
            n_tr, n_te = z["train_offsets"].size - 1, z["test_offsets"].size - 1
        tr = _subset(n_tr, n_train, rng, "n_train")
        te = _subset(n_te, n_test, rng, "n_test")
        return read_npz(p, tr, te, None if cache_dir is None else Path(cache_dir))
    full = read_torchvision_dir(p)
    tr = _subset(full.train_y.size, n_train, rng, "n_train")
    te = _subset(full.test_y.size, n_test, rng, "n_test")
    if tr is None and te is None:
        return full
    tr_s = slice(None) if tr is None else tr
    te_s = slice(None) if te is None else te
    return Cifar10(
        full.train_x[tr_s], full.train_y[tr_s], full.test_x[te_s], full.test_y[te_s], full.source
    )
