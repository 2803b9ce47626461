#!/usr/bin/env bash
# SaShiMi against an isotropic S4 model of the same size, on one-second spoken digits, for the same training time.
#   bash benchmarks/sashimi_gpu.sh sashimi|isotropic|unet|isotropic-unet DATA MINUTES [key=value ...]
#   bash benchmarks/sashimi_gpu.sh samples        (16 one-second samples of the trained SaShiMi, as WAVs, into $OUT)
#   bash benchmarks/sashimi_gpu.sh resume sashimi|isotropic|pair
#                                                 (a run stopped by a time limit, continued exactly to its MINUTES: on a
#                                                 warm device machine, where runs/ stays between calls, a budget past one
#                                                 call's 10 minutes is two calls, the first under `timeout`)
#   bash benchmarks/sashimi_gpu.sh pair DATA MINUTES [key=value ...]
#                                                 (both at once on a 2-GPU machine, one card each: the same time on the
#                                                 same kind of card, in one call's time; logs in runs/sashimi-gpu/*.log)
# DATA: an SC09-layout folder, or a .tar.gz of one (data/spoken-digits.tar.gz, written here by
# `python3 -m ssmkit data spoken-digits data/spoken-digits --speakers 150 && tar czf ...`), or its codes packed by
# benchmarks/pack_clips.py (NAME.clips.xz: ~10 KB a clip, so 5,000 fit a device call), unpacked next to it.
# sashimi: the sashimi-sc09 experiment (4.75 M parameters), then recurrent generation speed at batch 1 and 128.
# isotropic: SequenceModel, 8 residual S4 + FF blocks of width 304 at full length (4.78 M parameters), the batch of 32
# taken in 2 micro-batches (memory).
# unet: the sashimi-sc09-unet experiment (the official U-Net variant and its recipe: 6,820,512 parameters, batch 16,
# weight decay 0.1, cosine_warmup), then generation as sashimi; isotropic-unet: SequenceModel of width 350 under the
# same recipe (8 S4 + FF blocks, one SSM per channel: 6,807,756 parameters).
# Both train in bf16 autocast (the SSM math stays float32) and stop after the first epoch past MINUTES; the test NLL
# (bits per sample) is of the best validation checkpoint. Extra key=value overrides go to both (e.g. accumulate=2).
# SSMKIT_CODE=DIR trains with the ssmkit package in DIR (another version, e.g. `git archive REV ssmkit | tar x -C DIR`)
# instead of this checkout's; the data tools and this script stay this checkout's. PYTHONSAFEPATH keeps `python3 -m`
# from putting the current folder (this checkout, with its own ssmkit) before PYTHONPATH; the first line printed
# names the package that runs.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1 PYTHONPATH=${SSMKIT_CODE:-$PWD}:$PWD${PYTHONPATH:+:$PYTHONPATH}
out=runs/sashimi-gpu
if [[ $1 == samples ]]; then
    python3 -m ssmkit generate $out/sashimi --length 16000 --batch 16 --out $out/samples | tail -4
    if [[ -n ${OUT:-} ]]; then cp -r $out/samples "$OUT/"; fi  # the device machine's result folder
    exit
fi
both() {  # $1 on GPU 0 and $2 on GPU 1 at once, each a command line of this script; then both logs' ends
    mkdir -p $out
    CUDA_VISIBLE_DEVICES=0 bash "$0" $1 > $out/sashimi.log 2>&1 &
    CUDA_VISIBLE_DEVICES=1 bash "$0" $2 > $out/isotropic.log 2>&1 &
    wait
    tail -n 14 $out/sashimi.log $out/isotropic.log
}
if [[ $1 == resume ]]; then
    if [[ $2 == pair ]]; then
        both "resume sashimi" "resume isotropic"
    else
        python3 -m ssmkit train --resume $out/$2 | tail -12
    fi
    exit
fi
which=$1 data=$2 minutes=$3
shift 3
python3 -c "import ssmkit, torch; print(ssmkit.__file__, torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
if [[ $data == *.tar.gz ]]; then
    folder=${data%.tar.gz}
    [[ -d $folder ]] || tar xzf "$data" -C "$(dirname "$data")"
    data=$folder
elif [[ $data == *.clips.xz ]]; then
    folder=${data%.clips.xz}
    [[ -d $folder ]] || python3 benchmarks/pack_clips.py unpack "$data" "$folder"
    data=$folder
fi
if [[ $which == pair ]]; then  # the data unpacked once above, then the two runs
    both "sashimi $data $minutes $*" "isotropic $data $minutes $*"
    exit
fi
common=(data_dir=$data max_minutes=$minutes precision=bf16 out_dir=$out run_name=$which "$@")
if [[ $which == sashimi || $which == unet ]]; then
    experiment=sashimi-sc09
    [[ $which == unet ]] && experiment=sashimi-sc09-unet
    python3 -m ssmkit train $experiment "${common[@]}" | tail -12
    for b in 1 128; do
        python3 -m ssmkit generate $out/$which --length 1600 --batch $b --out $out/samples-b$b | tail -1
    done
elif [[ $which == isotropic ]]; then
    python3 -m ssmkit train sashimi-sc09 model=sequence model_options={} d_model=304 accumulate=2 \
        "${common[@]}" | tail -12
elif [[ $which == isotropic-unet ]]; then  # the U-Net experiment's recipe, at its size
    python3 -m ssmkit train sashimi-sc09-unet model=sequence model_options={} d_model=350 "${common[@]}" | tail -12
else
    echo "first argument: sashimi, isotropic, unet, isotropic-unet or pair, got $which" >&2
    exit 2
fi
