"""The equivalence confirmed at CIFAR-10 scale: PreResNet32, step decay vs its exponential-LR twins.

Li & Arora, "An Exponential Learning Rate Schedule for Deep Learning" (ICLR
2020) train a scale-invariant PreResNet32 on CIFAR-10 (η = 0.1, γ = 0.9,
λ = 5e-4, batch 128, BN scale/bias and the last layer frozen) and report that
step decay and its tapered-exponential equivalent (TEXP) give the same
curves, ending near 95% test accuracy. This package trains three recipes from
one initialisation on one batch and augmentation stream:

- ``a``: step decay with weight decay (stock SGD + MultiStepLR),
- ``b``: the exactly equivalent no-WD schedule (general theorem, ``proofs.general_schedule``),
- ``c``: TEXP (the paper's tapered exponential, exact with buffer corrections),

recording per-epoch curves, the learning rate, weight norms, the effective
learning rate, and the distance between the recipes' weights and outputs.

Entry points: ``python -m gpu_validation`` (:func:`main`), the CPU smoke
check :func:`smoke` (float64, b and c equal θ_a / c_t within K·u·(t+1) at every step), and
``gpu_validation/run_gpu_check.sh`` (the full run on one GPU).
"""

from __future__ import annotations

from .cli import main, smoke
from .config import SMOKE, Config

__all__ = ["Config", "SMOKE", "main", "smoke"]
