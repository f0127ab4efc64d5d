"""CIFAR-10 as uint8 arrays, from the project's JPEG archive or torchvision's layout.

Two sources give the same arrays (N, 32, 32, 3) uint8 and int64 labels:

- ``cifar10_jpeg.npz`` (shared/data/README.md): every image's JPEG bytes,
  decoded once with Pillow; the decoded full set is cached as ``.npy`` files
  in a cache directory (default ``<repo>/data/cache``, git-ignored) so later
  runs skip the decoding. A subset (the smoke mode) decodes only its images.
- torchvision's ``cifar-10-batches-py`` directory (pickled dicts with
  ``b'data'`` uint8 (N, 3072), channel-major, and ``b'labels'``), read
  directly with an unpickler that admits numpy arrays only.

:func:`download_cifar10` fetches that layout into a cache folder: through torchvision
where it imports, otherwise from the standard archive checked against its published MD5.

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
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "REPO_ROOT",
    "default_cache_dir",
    "default_data_path",
    "default_decode_cache",
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
    """The first of ``<repo>/../shared/data/cifar10_jpeg.npz`` (or ``<repo>/shared/...``),
    ``./data``, ``<repo>/data`` and :func:`default_cache_dir` holding CIFAR-10."""
    here = Path.cwd() if cwd is None else Path(cwd)
    candidates = [
        REPO_ROOT.parent / "shared" / "data" / _NPZ_NAME,
        REPO_ROOT / "shared" / "data" / _NPZ_NAME,
    ]
    for base in (here / "data", REPO_ROOT / "data", default_cache_dir()):
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


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batch files only: builtins plus the numpy array reconstructors
    (a pickle naming any other callable is refused, so a tampered file cannot run code)."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch file")


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return _ArrayUnpickler(f, encoding="bytes").load()


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


#: The standard CIFAR-10 archive (python version) and its published MD5 checksum.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


def default_cache_dir() -> Path:
    """Where ``--download`` puts CIFAR-10: ``$XDG_CACHE_HOME/exp-lr-equivalence/cifar10``
    (``~/.cache/...`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "exp-lr-equivalence" / "cifar10"


def default_decode_cache() -> Path:
    """Where decoded images are cached: ``<repo>/data/cache`` in a source checkout (it is
    git-ignored), else beside the download cache (an installed package writes nothing into
    site-packages)."""
    if (REPO_ROOT / ".git").exists() or (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "data" / "cache"
    return default_cache_dir().parent / "decoded"


def _md5(path: Path) -> str:
    import hashlib

    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, target: Path, progress: bool) -> None:
    """Download ``url`` to ``target`` (atomically, with a progress bar when asked)."""
    import urllib.request

    from tqdm import tqdm

    tmp = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url) as r, open(tmp, "wb") as f:  # noqa: S310 (fixed https URL)
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total, unit="B", unit_scale=True, desc="CIFAR-10", disable=not progress
        ) as bar:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
                bar.update(len(chunk))
    tmp.replace(target)


def download_cifar10(
    root: Path | str | None = None,
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    progress: bool = True,
    use_torchvision: bool = True,
) -> Path:
    """Fetch CIFAR-10 into ``root`` (default :func:`default_cache_dir`) and return the
    directory holding ``cifar-10-batches-py``; nothing is fetched when it is already there.

    torchvision's ``CIFAR10(download=True)`` is used where torchvision imports; otherwise
    the project's own path: the standard archive (``url``) is downloaded, its MD5 checked
    against the published ``md5`` (a mismatch raises and the archive is deleted), and it is
    unpacked with tarfile's ``data`` filter (no absolute paths, links or devices).  The
    batch files are read by :func:`read_torchvision_dir`, whose unpickler admits only numpy
    arrays and builtins.
    """
    root = default_cache_dir() if root is None else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (root / _BATCHES).is_dir():
        read_torchvision_dir(root)  # complete and readable, or it raises
        return root
    if use_torchvision:
        try:
            from torchvision.datasets import CIFAR10
        except Exception:  # ImportError, or a torchvision built for another torch
            pass
        else:
            CIFAR10(str(root), train=True, download=True)
            CIFAR10(str(root), train=False, download=True)
            return root
    import tarfile

    archive = root / url.rsplit("/", 1)[-1]
    if not archive.is_file():
        _fetch(url, archive, progress)
    got = _md5(archive)
    if got != md5:
        archive.unlink()
        raise RuntimeError(
            f"CIFAR-10 archive from {url} has MD5 {got}, expected {md5}: deleted, not used"
        )
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # Python < 3.10.12 / 3.11.4: the same rules, checked by hand
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
                    raise RuntimeError(f"{archive}: refusing the member {m.name!r}")
            tar.extractall(root)  # noqa: S202 (members checked above)
    if not (root / _BATCHES).is_dir():
        raise RuntimeError(f"{archive} holds no {_BATCHES} directory")
    read_torchvision_dir(root)
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
