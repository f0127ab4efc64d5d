"""The training set kept on the device, augmented there one epoch at a time.

Each epoch draws, from a seeded CPU ``torch.Generator``, a permutation of the
training set, a crop offset (dy, dx) ∈ {0..8}² per image and a horizontal
flip bit per image; the draws go to the device in one copy and a single
gather makes the shuffled, randomly cropped (zero padding 4) and flipped
epoch; normalisation with the CIFAR-10 mean/std follows. The batches are
slices of that tensor, so the GPU never waits for a loader, and the draws
(hence the batches) are the same on every device for a given seed: every
recipe sees one batch order and one augmentation stream.

Images are kept channel-last (N, H, W, C); ``permute(0, 3, 1, 2)`` of that
is a channels-last (N, C, H, W) tensor without a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import CIFAR10_MEAN, CIFAR10_STD

__all__ = ["EpochDraw", "draw_epoch", "crop_flip", "normalize", "DeviceAugmenter", "PAD"]

PAD = 4


@dataclass(frozen=True)
class EpochDraw:
    """One epoch's random choices (CPU int64 tensors of length N)."""

    perm: torch.Tensor
    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor


def draw_epoch(n: int, generator: torch.Generator, pad: int = PAD) -> EpochDraw:
    """Permutation, crop offsets in [0, 2·pad] and flip bits, in this order, from ``generator``."""
    perm = torch.randperm(n, generator=generator)
    offs = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flip = torch.randint(0, 2, (n,), generator=generator)
    return EpochDraw(perm, offs[0], offs[1], flip)


def crop_flip(padded: torch.Tensor, draw: EpochDraw, size: int = 32) -> torch.Tensor:
    """out[i] = padded[perm[i], dy:dy+size, dx:dx+size], mirrored left-right where flip[i] = 1.

    ``padded`` is (N, size + 2·pad, size + 2·pad, C) on any device; one
    advanced-indexing gather returns (N, size, size, C) on that device.
    """
    dev = padded.device
    perm, dy, dx, flip = (
        t.to(dev, non_blocking=True) for t in (draw.perm, draw.dy, draw.dx, draw.flip)
    )
    ar = torch.arange(size, device=dev)
    rows = dy[:, None] + ar[None, :]
    cols_fwd = ar[None, :]
    cols = dx[:, None] + torch.where(flip[:, None].bool(), size - 1 - cols_fwd, cols_fwd)
    return padded[perm[:, None, None], rows[:, :, None], cols[:, None, :]]


def normalize(
    x: torch.Tensor,
    dtype: torch.dtype,
    channels_last: bool,
    mean: tuple[float, ...] = CIFAR10_MEAN,
    std: tuple[float, ...] = CIFAR10_STD,
) -> torch.Tensor:
    """uint8 (N, H, W, C) -> (x/255 − mean)/std as (N, C, H, W) of ``dtype``."""
    m = torch.tensor(mean, dtype=dtype, device=x.device)
    s = torch.tensor(std, dtype=dtype, device=x.device)
    out = ((x.to(dtype) / 255.0 - m) / s).permute(0, 3, 1, 2)
    return out if channels_last else out.contiguous()


class DeviceAugmenter:
    """The training set on ``device``, zero-padded once; :meth:`epoch` makes an augmented epoch."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        device: torch.device,
        dtype: torch.dtype,
        channels_last: bool,
        pad: int = PAD,
    ) -> None:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        self.padded = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
        self.n, self.size, self.pad = x.shape[0], x.shape[1], pad
        self.dtype, self.channels_last = dtype, channels_last

    def epoch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of one shuffled, cropped, flipped and normalised epoch."""
        draw = draw_epoch(self.n, generator, self.pad)
        x = crop_flip(self.padded, draw, self.size)
        y = self.labels[draw.perm.to(self.labels.device, non_blocking=True)]
        return normalize(x, self.dtype, self.channels_last), y
