#!/usr/bin/env bash
# Re-measures, in one device call under 10 minutes, what the open GPU issues are judged by (docs/speed.md,
# docs/benchmarks.md):
#   bash benchmarks/open_targets.sh OFFICIAL_DIR
# OFFICIAL_DIR holds facebookresearch/mega as mega (as for versus_official.py; kept for the Mega line below). In
# order: the GPU tests and the Triton kernels' tests against their references on the GPU (-m "cuda or triton"); the
# experiments with like layers forming their matrices together and apart, alternated (layers/stack_parts.py: SaShiMi
# 185 against 208 ms); SaShiMi's generation at its steady rate (batch 1 16.9-17.3k samples/s on an H100,
# 2026-12-06); the trainer's own lra-listops step over three epochs as shipped, the whole model replayed from CUDA
# graphs (bf16 13.7 ms, float32 20.1 on an H100, 2026-12-06; op by op with trimmed batches 21.2 ms under bf16 on the
# same host, 16.6-40 ms on others), then lra-text's the same way (bf16 13.2 ms, 2026-12-06); Mega's layer beside the
# official one at 1k. Each step has its own time limit, so one slow step cannot take the others' time.
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
step 200 python3 -m pytest -q -m "cuda or triton" -p no:cacheprovider
step 90 python3 benchmarks/experiment_throughput.py --apart --steps 8 lra-listops lra-text sashimi-sc09
step 35 python3 benchmarks/experiment_throughput.py --apart --steps 8 --precision bf16 lra-listops
step 60 python3 benchmarks/sashimi_generation.py --fused-only --batches 1,4,16 --samples 8000
step 100 python3 benchmarks/trainer_step.py --precision fp32 bf16 --steps 150 --epochs 3
step 60 python3 benchmarks/trainer_step.py --experiment lra-text --precision bf16 --steps 150 --epochs 3
step 40 python3 benchmarks/mega_speed.py --official "$official" --bf16 --lengths 1024
