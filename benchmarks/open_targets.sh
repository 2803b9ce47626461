#!/usr/bin/env bash
# The numbers the open GPU issues still lack (docs/speed.md, docs/benchmarks.md), in one device call under 10 minutes:
#   bash benchmarks/open_targets.sh OFFICIAL_DIR
# OFFICIAL_DIR holds facebookresearch/mega as mega (as for versus_official.py). In order: the cuda tests (among them
# Mega's fused attention on the memory-efficient kernel, never run on a GPU yet), Mega's layer beside the official one
# (forward + backward, float32 and bf16), and the training throughput of the DSS, S5 and Mega LRA experiments that the
# last call did not reach, and lra-listops as it now trains (trimmed batches, no cuda_graph) at the full 2,000
# positions and at 1,868 (the mean longest of 32 generated expressions). Each step has its own time limit, so one
# slow step cannot take the others' time.
set -uo pipefail
official=${1:?usage: bash benchmarks/open_targets.sh OFFICIAL_DIR}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
step() {  # step SECONDS COMMAND...: run it, keep its last 60 lines, say if it ran out of time
    local limit=$1; shift
    echo "=== $* (limit ${limit} s)"
    timeout "$limit" "$@" 2>&1 | tail -n 60
    [ "${PIPESTATUS[0]}" = 124 ] && echo "=== timed out after ${limit} s"
    return 0
}
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())"
step 110 python3 -m pytest -q -m cuda -p no:cacheprovider
step 100 python3 benchmarks/mega_speed.py --official "$official" --bf16
step 270 python3 benchmarks/experiment_throughput.py dss-lra-listops dss-lra-text dss-lra-retrieval dss-lra-image \
    s5-lra-listops s5-lra-text s5-lra-retrieval s5-lra-image dss-lra-pathfinder s5-lra-pathfinder s5-speech-commands \
    mega-lra-pathx dss-lra-pathx s5-lra-pathx
for precision in fp32 bf16; do
    step 30 python3 benchmarks/experiment_throughput.py --precision $precision lra-listops
    step 30 python3 benchmarks/experiment_throughput.py --precision $precision --set dataset_options.max_length=1868 \
        lra-listops
done
