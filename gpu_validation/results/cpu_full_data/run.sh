#!/usr/bin/env bash
# The CPU full-data run whose results are in this folder (from the repository root).
python -m gpu_validation --full-data --data ../shared/data/cifar10_jpeg.npz \
    --out gpu_validation/results/cpu_full_data --threads 1 --no-progress --no-texp
