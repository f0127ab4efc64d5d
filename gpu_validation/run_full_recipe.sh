#!/usr/bin/env bash
# The paper's CIFAR-10 recipe at full scale on one GPU: a (stock SGD + WD + MultiStepLR),
# b (converted), c (TEXP) and the float32 floor twin of a in lockstep, 160 epochs,
# PreResNet32, batch 128, all 50,000/10,000 images (python -m gpu_validation.full_data --paper).
#
#   OUT=DIR DATA=cifar10_jpeg.npz bash gpu_validation/run_full_recipe.sh           # all 160 epochs
#   OUT=DIR DATA=... PART=1 bash gpu_validation/run_full_recipe.sh                 # epochs 1-80
#   OUT=DIR DATA=... PART=2 bash gpu_validation/run_full_recipe.sh                 # resume: 81-160
#   OUT=DIR DATA=... PART=smoke bash gpu_validation/run_full_recipe.sh             # 8 steps, seconds
#
# Each command runs under `timeout` (LIMIT_S, default 540 s). On the timeout's SIGTERM the
# run finishes its epoch, writes $OUT/checkpoint.pt and its results so far, and stops; a
# checkpoint is also written every CKPT_EVERY epochs (default 10). PART=2 resumes from the
# checkpoint: bit for bit the uninterrupted run on a CPU (tested); on CUDA that needs
# DETERMINISTIC=1 (not run on a GPU yet). Run PART=2 again until it exits 0 or 1. UNTIL=N stops a part after epoch N (PART=1 default: SPLIT=80).
#
# Environment: OUT (required), DATA (cifar10_jpeg.npz or a torchvision root; default: found
# automatically), PART (all | 1 | 2 | smoke; default all), SPLIT (default 80), UNTIL,
# LIMIT_S (default 540), COMPILE (none | default | reduce-overhead; default none),
# DETERMINISTIC (1: deterministic kernels), CKPT_EVERY (default 10), PYTHON (default python),
# EXTRA (more arguments, e.g. "--check-every 20").
# Everything lands in $OUT: full_data.json (verdicts on b and c, test accuracies of all four
# runs, per-step timing next to the bare forward+backward), divergence.png, the monitor's
# plots and monitor_a.csv / monitor_b.csv, checkpoint.pt, env.txt, log_<part>.txt.
# Exit status: 0 b and c within 3x the floor, 1 not, 2 bad input, 3 stopped by UNTIL/SPLIT,
# 124 stopped by the time limit (timeout's status; the checkpoint of the last whole epoch is
# written): resume with PART=2.
set -u
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output directory}"
PART="${PART:-all}"
SPLIT="${SPLIT:-80}"
LIMIT_S="${LIMIT_S:-540}"
COMPILE="${COMPILE:-none}"
CKPT_EVERY="${CKPT_EVERY:-10}"
PYTHON="${PYTHON:-python}"
EXTRA="${EXTRA:-}"
ARGS=(--device cuda --compile "$COMPILE" --out "$OUT" --no-progress)
if [ -n "${DATA:-}" ]; then ARGS+=(--data "$DATA"); fi
if [ "${DETERMINISTIC:-0}" = 1 ]; then ARGS+=(--deterministic); fi
# logging: divergences every 10 steps, probe every 50, the monitor every 25 (16 groups:
# 2,500 rows per group and run over the 62,560 steps)
RECIPE=(--paper --check-every 10 --probe-every 50 --monitor-every 25 --checkpoint-every "$CKPT_EVERY")
case "$PART" in
  all) RUN=("${RECIPE[@]}" ${UNTIL:+--stop-after-epochs "$UNTIL"}) ;;
  1) RUN=("${RECIPE[@]}" --stop-after-epochs "${UNTIL:-$SPLIT}") ;;
  2) RUN=("${RECIPE[@]}" --resume ${UNTIL:+--stop-after-epochs "$UNTIL"}) ;;
  smoke) RUN=(--smoke) ;;
  *) echo "PART=$PART is not one of all, 1, 2, smoke" >&2; exit 2 ;;
esac

mkdir -p "$OUT"

"$PYTHON" - <<'EOF' 2>&1 | tee "$OUT/env.txt"
import platform, subprocess, sys
import numpy, torch
print("date", subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip())
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "numpy", numpy.__version__)
print("platform", platform.platform())
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.1f} GiB", f"capability {p.major}.{p.minor}")
try:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout
    print("commit", rev.strip() or "unknown", "(uncommitted changes)" if dirty.strip() else "")
except OSError:
    print("commit unknown")
EOF
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >>"$OUT/env.txt" 2>&1 || true

echo "== part $PART (limit ${LIMIT_S}s): $PYTHON -m gpu_validation --full-data ${ARGS[*]} ${RUN[*]} $EXTRA"
# shellcheck disable=SC2086
timeout --signal=TERM --kill-after=60 "$LIMIT_S" "$PYTHON" -m gpu_validation --full-data \
  "${ARGS[@]}" "${RUN[@]}" $EXTRA 2>&1 | tee "$OUT/log_$PART.txt"
rc=${PIPESTATUS[0]}
echo "== part $PART: exit $rc"
exit "$rc"
