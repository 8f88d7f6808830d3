#!/usr/bin/env bash
# Usage: bash tools/dist_compute_r0.sh CONFIG GPUS [compute_r0.py options]
CONFIG=$1
GPUS=$2
PORT=${PORT:-29500}
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
python -m torch.distributed.run --nproc_per_node="$GPUS" \
    --master_port="$PORT" "$(dirname "$0")/compute_r0.py" "$CONFIG" \
    --launcher pytorch "${@:3}"
