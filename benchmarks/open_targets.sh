#!/usr/bin/env bash
# The numbers the open GPU issues still lack (docs/speed.md, docs/benchmarks.md), in one device call under 10 minutes:
#   bash benchmarks/open_targets.sh OFFICIAL_DIR [OLD_CODE]
# OFFICIAL_DIR holds facebookresearch/mega as mega (as for versus_official.py); OLD_CODE, if given, a folder holding
# the ssmkit package of an older commit (git archive COMMIT ssmkit | tar -x -C OLD_CODE). In order: the cuda tests
# (among them a training step under torch.cuda.set_sync_debug_mode('error')); the trainer's own lra-listops step
# before (OLD_CODE) and after the host-device waits were removed, on the same settings; the fused stack step with four
# kernels per layer against one program per row (SaShiMi's widths, batches 1, 4, 16: sets WIDE_ROWS and WIDE_WIDTH
# in ops/triton_block_step.py) and SaShiMi's generation with it; Mega's layer beside the official one with the
# kernels of each at 1k and 8k (at L < 4k ours is still 0.7-0.8x); the trainer's step as shipped (trimmed batches,
# mask_padding 'layers'). Each step has its own time limit, so one slow step cannot take the others' time.
set -uo pipefail
official=${1:?usage: bash benchmarks/open_targets.sh OFFICIAL_DIR [OLD_CODE]}
old=${2:-}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
step() {  # step SECONDS COMMAND...: run it, keep its last 80 lines, say if it ran out of time
    local limit=$1; shift
    echo "=== $* (limit ${limit} s)"
    timeout "$limit" "$@" 2>&1 | grep -v "Warning\|warn\|return Variable" | tail -n 80
    [ "${PIPESTATUS[0]}" = 124 ] && echo "=== timed out after ${limit} s"
    return 0
}
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
step 100 python3 -m pytest -q -m cuda -p no:cacheprovider
step 130 python3 benchmarks/trainer_step.py --code $old $PWD --set mask_padding=true trim_padding=false \
    layer_options.cuda_graph=false
step 100 python3 benchmarks/block_step.py --batches 1,4,16 --configs 16:64:8,8:64:8,4:64:8,4:32:4
step 70 python3 benchmarks/sashimi_generation.py --batches 1,4,16 --samples 800
step 90 python3 benchmarks/mega_speed.py --official "$official" --bf16 --profile --lengths 1024,8192
step 60 python3 benchmarks/trainer_step.py
