#!/usr/bin/env bash
# The GPU measurements of issues 3, 4 and 6 in one time-boxed run:
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR]      # default work_dirs/gpu_checks
#
# Made for a one-GPU machine with torch but no OpenMMLab packages and no
# network: wheels found in .whl/ (mmcv with CUDA ops, mmengine, mmdet, ...)
# are installed into /tmp/site first. Every section has a time limit and
# the log (OUT_DIR/gpu_checks.log) is written as it goes, so a section that
# overruns costs only itself. Sections:
#   check   versions, the GPU, mmcv's CUDA deformable attention against its
#           PyTorch fallback on a JoinDet-sized input
#   priors  benchmarks/bench_priors.py part (a) with our solver on the GPU
#   ssl     the proxy set (6000 unlabeled images; the default val split)
#           and configs/ssl/dense-swav_r18_1xgpu_proxy-unlabeled.py; its
#           backbone.pth is copied to OUT_DIR in <16 MiB parts
#   r0      bench_prior_quality.py on that backbone and random weights (CPU,
#           in the background while the next sections run on the GPU)
#   loader  bench_ssl_loader.py: the SSL data loader, pseudo_collate against
#           default_collate, with WORKERS workers (default 16)
#   step    bench_joindet_step.py r50-800, float32 crop targets
#   step-bf16  the same with bfloat16 crop targets
#   update  bench_update_pass.py r50
# They run in this order; SECTIONS names those to run (default: all). The
# first run took 7 minutes on an H200 (its ssl section, time-boxed, 4 of
# them), before the loader section and the steps' per-model memory
# subprocesses were added: name fewer sections for a short lease.
# Environment: DEVICE (default cuda), SSL_SECONDS (time limit of the
# training, default 270), DATA (where the proxy set is written, default
# data/proxy), WORK (the training's work dir), WHEELS (the folder of wheels
# to install first, default .whl; empty: the packages already installed),
# QUICK=1 (tiny settings: a dry run of this script on a CPU, not a
# measurement).
set -u
OUT=${1:-work_dirs/gpu_checks}
DEVICE=${DEVICE:-cuda}
SSL_SECONDS=${SSL_SECONDS:-270}
QUICK=${QUICK:-0}
DATA=${DATA:-data/proxy}
WORK=${WORK:-work_dirs/dense_swav_r18_1xgpu}
WHEELS=${WHEELS-.whl}
SECTIONS=${SECTIONS:-check priors ssl r0 loader step step-bf16 update}
WORKERS=${WORKERS:-16}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_checks.log") 2>&1
export PYTHONUNBUFFERED=1

want() { [[ " $SECTIONS " == *" $1 "* ]]; }

section() {  # section NAME SECONDS COMMAND...
    local name=$1 secs=$2 start=$SECONDS rc
    shift 2
    want "$name" || return 0
    echo "=== $name (limit ${secs} s) $(date -u +%T)"
    timeout --kill-after=5 "$secs" "$@"
    rc=$?
    echo "=== $name: rc $rc after $((SECONDS - start)) s"
}

if [ -n "$WHEELS" ] && compgen -G "$WHEELS/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
PY=python3

if [ "$QUICK" = 1 ]; then
    UNLABELED=64; SSL_OPTS=(train_cfg.max_iters=4 train_dataloader.batch_size=4
        train_dataloader.num_workers=1 default_hooks.checkpoint.interval=2
        param_scheduler.0.end=1 param_scheduler.1.begin=1
        param_scheduler.1.end=4)
    STEP=tiny; UPDATE=tiny; VAL_ARGS=(--num-val 20); WORKERS=1
    LOADER_OPTS=(--batch-size 8 --batches 2 --rounds 1)
else
    UNLABELED=6000; SSL_OPTS=(); STEP=r50-800; UPDATE=r50; VAL_ARGS=()
    LOADER_OPTS=()
fi

section check 60 $PY - "$DEVICE" <<'EOF'
import subprocess
import sys

import mmcv
import mmdet
import mmengine
import torch
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)

dev = sys.argv[1]
print(f'torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine '
      f'{mmengine.__version__}, mmdet {mmdet.__version__}')
if dev == 'cuda':
    print(subprocess.run(['nvidia-smi', '-L'], capture_output=True,
                         text=True).stdout.strip())
    # JoinDet R-50 at 800x1066: 4 levels, 8 heads, 32 dims, 4 points
    shapes = torch.tensor([[100, 134], [50, 67], [25, 34], [13, 17]],
                          device=dev)
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    g = torch.Generator(device='cpu').manual_seed(0)
    n = int(shapes.prod(1).sum())
    value = torch.randn(2, n, 8, 32, generator=g, dtype=torch.float64)
    loc = torch.rand(2, 300, 8, 4, 4, 2, generator=g, dtype=torch.float64)
    attn = torch.rand(2, 300, 8, 4, 4, generator=g, dtype=torch.float64)
    attn = attn / attn.sum((-1, -2), keepdim=True)
    ref = multi_scale_deformable_attn_pytorch(value, shapes.cpu(), loc, attn)
    out = MultiScaleDeformableAttnFunction.apply(
        value.float().to(dev), shapes, starts, loc.float().to(dev),
        attn.float().to(dev), 64)
    err = ((out.double().cpu() - ref).norm() / ref.norm()).item()
    print(f'mmcv CUDA ms-deform-attn vs PyTorch fallback (float64): '
          f'relative error {err:.2e}')
    assert err < 1e-5, err
EOF

if want ssl || want loader; then
    $PY tools/misc/make_proxy_data.py --out "$DATA" --num-unlabeled \
        "$UNLABELED" "${VAL_ARGS[@]}" >"$OUT/make_proxy.txt" 2>&1 &
    MAKE=$!
fi

if [ "$QUICK" = 1 ]; then
    section priors 120 $PY benchmarks/bench_priors.py --parts a --repeat 1 \
        --skip-dense --device "$DEVICE"
else
    section priors 240 $PY benchmarks/bench_priors.py --parts a --repeat 3 \
        --device "$DEVICE"
fi

if [ -n "${MAKE:-}" ]; then
    wait $MAKE
    cat "$OUT/make_proxy.txt"
    sha256sum "$DATA/val/val.json"
fi

section ssl "$SSL_SECONDS" $PY tools/train_ssl_backbone.py \
    configs/ssl/dense-swav_r18_1xgpu_proxy-unlabeled.py --work-dir "$WORK" \
    --cfg-options "train_dataloader.dataset.data_root=$DATA/unlabeled/" \
    "${SSL_OPTS[@]}"
LAST=$(ls "$WORK"/iter_*.pth 2>/dev/null | sort -V | tail -n 1)
if want ssl && [ ! -f "$WORK/backbone.pth" ] && [ -n "$LAST" ]; then
    # stopped by its limit: export the weights of its last checkpoint
    $PY tools/model_converters/ssl_to_backbone.py "$LAST" "$WORK/backbone.pth"
fi
if want r0 && [ -f "$WORK/backbone.pth" ]; then
    sha256sum "$WORK/backbone.pth"
    split -b 15M -d "$WORK/backbone.pth" "$OUT/backbone.pth.part"
    cp "$WORK"/*/vis_data/scalars.json "$OUT/ssl_scalars.json" 2>/dev/null
    OMP_NUM_THREADS=8 nice -n 10 timeout 240 \
        $PY benchmarks/bench_prior_quality.py \
        --data "$DATA/val" --backbone "gpu=$WORK/backbone.pth" \
        --no-selective-search --setting 2,8,raw,0.7 --setting 2,8,raw,0.85 \
        --setting 2,8,raw,0.9 --setting 2,8,centred,0.3 \
        --setting 2,16,raw,0.85 >"$OUT/r0.txt" 2>&1 &
    R0=$!
fi

section loader 90 $PY research/bench_ssl_loader.py \
    --data-root "$DATA/unlabeled/" --workers "$WORKERS" "${LOADER_OPTS[@]}"
section step 120 $PY benchmarks/bench_joindet_step.py --setting $STEP \
    --device "$DEVICE" --iters 10
section step-bf16 110 $PY benchmarks/bench_joindet_step.py --setting $STEP \
    --device "$DEVICE" --iters 10 --crop-autocast bfloat16
section update 50 $PY benchmarks/bench_update_pass.py --setting $UPDATE \
    --device "$DEVICE" --repeat 3

if [ -n "${R0:-}" ]; then
    echo "=== r0 (started in the background)"
    wait $R0
    echo "=== r0: rc $?"
    cat "$OUT/r0.txt"
fi
echo "=== done $(date -u +%T)"
