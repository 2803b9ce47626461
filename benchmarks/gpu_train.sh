#!/usr/bin/env bash
# The training path on a GPU: the default experiment in fp32 and bf16, permuted S4, a byte-level LM on Python's
# standard library sources, and recurrent generation throughput. Usage: bash benchmarks/gpu_train.sh OUT_DIR
set -euo pipefail
out=${1:-/tmp/ssmkit-gpu}
export PYTHONUNBUFFERED=1
python3 -c "import torch, tqdm, yaml, safetensors; print(torch.__version__, torch.cuda.get_device_name())"
python3 -m ssmkit train digits out_dir=$out run_name=digits-fp32 | tail -8
python3 -m ssmkit train digits precision=bf16 out_dir=$out run_name=digits-bf16 | tail -8
python3 -m ssmkit train digits-permuted-s4 out_dir=$out run_name=perm-s4 | tail -8
mkdir -p $out/corpus
python3 - "$out/corpus" <<'PY'
import pathlib, sys, sysconfig
src = sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
pathlib.Path(sys.argv[1], "stdlib.txt").write_text("".join(p.read_text(errors="ignore") for p in src))
PY
python3 -m ssmkit train dataset=text data_dir=$out/corpus dataset_options.seq_len=1024 d_model=256 n_layers=4 \
    epochs=3 batch_size=32 lr=0.004 precision=bf16 out_dir=$out run_name=lm | tail -8
for b in 1 64; do
    python3 -m ssmkit generate $out/lm --prompt "def " --length 1000 --batch $b --temperature 0.8 | tail -1
done
python3 -m ssmkit generate $out/lm --prompt "def " --length 300 --temperature 0.8 | head -12
