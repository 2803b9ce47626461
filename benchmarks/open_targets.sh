#!/usr/bin/env bash
# The numbers the open GPU issues still lack (docs/speed.md, docs/benchmarks.md), in one device call under 10 minutes:
#   bash benchmarks/open_targets.sh OFFICIAL_DIR
# OFFICIAL_DIR holds facebookresearch/mega as mega (as for versus_official.py). In order: the cuda tests (on
# 2026-12-05 an H100 ran only the first 8 in 60 s; not yet run: the micro-batch accumulation through graphs, the step
# sums, the block step); the experiments with like layers forming their matrices together and apart, alternated
# (layers/stack_parts.py: SaShiMi 185 against 207 ms, ListOps within that host's noise); the fused stack step at
# batches 2-4, wide against one program per row (sets WIDE_ROWS in ops/triton_block_step.py; batch 1 is measured)
# and SaShiMi's generation at its steady rate; Mega's layer beside the official one with the kernels of each at 1k
# and 8k (at L < 4k ours is still 0.7-0.8x); the trainer's step as shipped (on that H100 one checkout read 29 and 40
# ms in two runs: compare within a call only). Each step has its own time limit, so one slow step cannot take the
# others' time.
set -uo pipefail
official=${1:?usage: bash benchmarks/open_targets.sh OFFICIAL_DIR}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
step() {  # step SECONDS COMMAND...: run it, keep its last 80 lines, say if it ran out of time
    local limit=$1; shift
    echo "=== $* (limit ${limit} s)"
    timeout "$limit" "$@" 2>&1 | grep -v "Warning\|warn\|return Variable" | tail -n 80
    [ "${PIPESTATUS[0]}" = 124 ] && echo "=== timed out after ${limit} s"
    return 0
}
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
step 180 python3 -m pytest -q -m cuda -p no:cacheprovider
step 100 python3 benchmarks/experiment_throughput.py --apart --steps 8 lra-listops lra-text sashimi-sc09
step 35 python3 benchmarks/experiment_throughput.py --apart --steps 8 --precision bf16 lra-listops
step 50 python3 benchmarks/block_step.py --batches 2,4 --configs 16:64:8
step 80 python3 benchmarks/sashimi_generation.py --batches 1,4,16
step 70 python3 benchmarks/mega_speed.py --official "$official" --bf16 --profile --lengths 1024,8192
step 50 python3 benchmarks/trainer_step.py --precision fp32 bf16 --steps 40
