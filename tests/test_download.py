"""``--download``: CIFAR-10 fetched through the standard archive and its checksum, offline.

The archive is a small one in CIFAR-10's python format (``cifar-10-batches-py/`` with five
``data_batch_i`` and a ``test_batch``: pickled dicts of ``b'data'`` uint8 (N, 3072) and
``b'labels'``), served from a ``file://`` URL, so the project's own path (no torchvision)
runs end to end here.  Negative controls: a wrong checksum, a pickle that names a callable,
and an archive member outside the target folder are each refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from gpu_validation import data

N = 3  # images per batch file


def _batch(rng: np.random.Generator) -> dict:
    return {
        b"batch_label": b"tiny",
        b"labels": [int(v) for v in rng.integers(0, 10, N)],
        b"data": rng.integers(0, 256, (N, 3072), dtype=np.uint8),
        b"filenames": [b"x.png"] * N,
    }


def _archive(tmp: Path, *, extra: tuple[str, bytes] | None = None, evil: bool = False) -> Path:
    rng = np.random.default_rng(0)
    path = tmp / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for name in names:
            blob = pickle.dumps(_batch(rng), protocol=2)
            if extra is not None and name == extra[0]:
                blob = extra[1]
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        if evil:
            info = tarfile.TarInfo("../outside.txt")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_download_reads_the_standard_format_and_checks_the_checksum(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    root = tmp_path / "cache"
    got = data.download_cifar10(
        root, url=archive.as_uri(), md5=_md5(archive), progress=False, use_torchvision=False
    )
    cifar = data.load_cifar10(got)
    assert cifar.train_x.shape == (5 * N, 32, 32, 3) and cifar.train_x.dtype == np.uint8
    assert cifar.test_x.shape == (N, 32, 32, 3)
    # channel-major rows become HWC images: pixel (0, 0) of image 0 is bytes 0, 1024, 2048
    first = pickle.loads(
        tarfile.open(archive).extractfile("cifar-10-batches-py/data_batch_1").read()
    )
    assert list(cifar.train_x[0, 0, 0]) == [first[b"data"][0, k] for k in (0, 1024, 2048)]
    # a second call finds it and fetches nothing (the URL is gone)
    archive.unlink()
    assert data.download_cifar10(root, url=archive.as_uri(), md5="0", use_torchvision=False) == got


def test_a_wrong_checksum_is_refused_and_the_archive_deleted(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    root = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="MD5"):
        data.download_cifar10(
            root, url=archive.as_uri(), md5="0" * 32, progress=False, use_torchvision=False
        )
    assert not (root / archive.name).exists() and not (root / "cifar-10-batches-py").exists()


def test_a_pickle_naming_a_callable_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # would run os.getcwd on unpickling
            return (os.getcwd, ())

    archive = _archive(tmp_path, extra=("test_batch", pickle.dumps({b"data": Evil()})))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        data.download_cifar10(
            tmp_path / "cache",
            url=archive.as_uri(),
            md5=_md5(archive),
            progress=False,
            use_torchvision=False,
        )


def test_a_member_outside_the_folder_is_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path, evil=True)
    with pytest.raises((RuntimeError, tarfile.TarError)):
        data.download_cifar10(
            tmp_path / "cache",
            url=archive.as_uri(),
            md5=_md5(archive),
            progress=False,
            use_torchvision=False,
        )
    assert not (tmp_path / "outside.txt").exists()
