#!/usr/bin/env bash
# Device check: PreResNet32 on all of CIFAR-10, 30 epochs (LR drops at 15 and 22), recipes a+b in
# lockstep for seeds 0, 1, 2 and TEXP (c) for seed 0, four processes sharing the GPU.
set -u
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
E=${E:-30}; LIM=${LIM:-430}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch,sys,numpy;print('python',sys.version.split()[0],'torch',torch.__version__,'cuda',torch.version.cuda,'numpy',numpy.__version__)"
  nproc; git log -1 --format='commit %h %s' 2>/dev/null; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
run() { local name=$1; shift
  timeout --signal=TERM --kill-after=15 $LIM python3 -m gpu_validation --device cuda \
    --data data/cifar10_jpeg.npz --cache-dir /tmp/cache_$name --out $OUT/$name --no-progress \
    --epochs $E "$@" > $OUT/$name.log 2>&1
  echo "== $name exit $?" >> $OUT/$name.log; }
run ab0 --recipes a,b --seeds 0 &
run ab1 --recipes a,b --seeds 1 &
run ab2 --recipes a,b --seeds 2 &
run c0 --recipes c --seeds 0 &
wait
python3 -m gpu_validation.report $OUT/ab0 $OUT/ab1 $OUT/ab2 $OUT/c0 --out $OUT/overlay.png > $OUT/report.log 2>&1
tail -n 4 $OUT/*.log
cd $OUT && tar czf results.tgz ab0 ab1 ab2 c0 *.log env.txt overlay.png 2>/dev/null; rm -rf ab0 ab1 ab2 c0; ls -la
