#!/usr/bin/env bash
# The full CIFAR-10 check on one GPU, as one command for a ~10-minute job:
#
#   bash gpu_validation/run_gpu_check.sh            # results in gpu_validation/results/ (or $OUT)
#
# 1. recipes a (step decay + WD) and b (exact no-WD equivalent) in lockstep,
#    PreResNet32, 160 epochs, seed 0 (the paper's setting; target: within 8 minutes);
# 2. recipe c (TEXP) alone, seed 0 (same θ_0, batches and augmentation as step 1);
# 3. recipes a+b for more seeds;
# then an overlay of the test-accuracy curves. Step 1 runs with the effective-LR monitor
# (--monitor: per-step weight norms, effective LR, angular updates and their predicted
# equilibria in $OUT/ab_seed0/monitor_seed0/). Each step runs under `timeout`
# within the total budget; a step cut short keeps its per-epoch JSON record
# (results.json is rewritten after every epoch) and exits with status 3.
#
# Environment: OUT (output dir), DATA (cifar10_jpeg.npz or a torchvision root;
# default: found automatically), BUDGET_S (total seconds, default 570),
# AB_LIMIT_S (step 1's limit, default 540), EXTRA (extra arguments for every
# step, e.g. "--compile" or "--amp"), PYTHON (default python).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_validation/results}"
BUDGET_S="${BUDGET_S:-570}"
AB_LIMIT_S="${AB_LIMIT_S:-540}"
PYTHON="${PYTHON:-python}"
EXTRA="${EXTRA:-}"
DATA_ARG=()
if [ -n "${DATA:-}" ]; then DATA_ARG=(--data "$DATA"); fi
mkdir -p "$OUT"
START=$SECONDS
left() { echo $(( BUDGET_S - (SECONDS - START) )); }

"$PYTHON" - <<'EOF' 2>&1 | tee "$OUT/env.txt"
import torch, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
EOF

step() {  # step NAME LIMIT_S ARGS...
  local name=$1 limit=$2; shift 2
  if [ "$limit" -lt 30 ]; then echo "== $name: skipped (${limit}s left)"; return; fi
  echo "== $name (limit ${limit}s)"
  # shellcheck disable=SC2086
  timeout --signal=TERM --kill-after=20 "$limit" "$PYTHON" -m gpu_validation --device cuda \
    "${DATA_ARG[@]}" --out "$OUT/$name" --no-progress $EXTRA "$@"
  echo "== $name: exit $?"
}

L=$(left); [ "$L" -gt "$AB_LIMIT_S" ] && L=$AB_LIMIT_S
step ab_seed0 "$L" --recipes a,b --epochs 160 --seeds 0 --monitor
step c_seed0 "$(left)" --recipes c --epochs 160 --seeds 0
step ab_seeds "$(left)" --recipes a,b --epochs 160 --seeds 1 2
"$PYTHON" -m gpu_validation.report "$OUT"/ab_seed0 "$OUT"/c_seed0 "$OUT"/ab_seeds --out "$OUT/overlay.png" || true
"$PYTHON" - "$OUT" <<'EOF'
import json, sys, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).glob("*/results.json")):
    r = json.loads(p.read_text())
    for run in r.get("runs", []):
        s = run.get("summary", {})
        print(p.parent.name, "seed", run["seed"], "epochs", s.get("epochs_done"), "test acc", s.get("final_test_acc"),
              "median epoch s", round(s.get("epoch_train_s_median", float("nan")), 2),
              "final probe distance", s.get("final_probe_distance"))
EOF
