#!/usr/bin/env bash
# GPU throughput check: resnet50, convnext_tiny, vit_base_patch16_224 and efficientnet_b0 at
# batch 256, 224x224, bf16 autocast, channels_last; eager (part 'eager'), then
# torch.compile'd (part 'compiled', compile time recorded on its own, never timed). Part
# 'train': resnet50 alone, inference and training (--mode infer,train), each at the batch
# --batch-search finds from 256 (its trail is in the records).
# Writes the log to OUTDIR/gpu_check_PART.txt and the records to the store OUTDIR/results.
# A run that overruns its time is stopped with SIGTERM, which keeps what it measured.
#
#   scripts/gpu_check.sh [--part eager|train|compiled|all] [--out DIR] [--rehearse]
#
# --rehearse runs the same steps on the CPU with lenet5 at batch 4, in seconds.
# Exits 2 with one line where there is no CUDA (without --rehearse).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/_gpu_common.sh
install_carried_wheels
require_cuda

if [ "$REHEARSE" = 1 ]; then
    # fp32: a CPU without native BF16 would spend its time in an emulated bf16 peak product
    MODELS=lenet5; TRAIN_MODEL=lenet5; DEVICE=cpu; BATCH=4; IMG=32; MIN_TIME=0.2; PRECISION=fp32
    T_EAGER=120; T_TRAIN=120; T_COMPILED=240; MT_EAGER=60; MT_TRAIN=100; MT_COMPILED=180
else
    MODELS=resnet50,convnext_tiny,vit_base_patch16_224,efficientnet_b0; TRAIN_MODEL=resnet50
    DEVICE=cuda; BATCH=256; IMG=224; MIN_TIME=1.5; PRECISION=bf16
    T_EAGER=${T_EAGER:-110}; T_TRAIN=${T_TRAIN:-75}; T_COMPILED=${T_COMPILED:-210}
    MT_EAGER=45; MT_TRAIN=70; MT_COMPILED=90
fi
COMMON=(--harness throughput --device "$DEVICE" --batch-size "$BATCH"
        --img-size "$IMG" --precision "$PRECISION" --channels-last --min-time "$MIN_TIME" --out "$RESULTS")

run_part() {  # name, time limit (s), extra options...
    local part=$1 limit; limit=$(part_limit "$2"); shift 2
    local log="$OUTDIR/gpu_check_$part.txt"
    {
        echo "# scripts/gpu_check.sh --part $part $([ "$REHEARSE" = 1 ] && echo --rehearse), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        describe_machine
        local start=$SECONDS
        timeout --signal=TERM --kill-after=20 "$limit" "$PY" -m bench run "${COMMON[@]}" "$@"
        local rc=$?
        echo "(bench run: exit status $rc after $(( SECONDS - start )) s, limit $limit s)"
    } 2>&1 | tee "$log"
}

if [ "$PART" = eager ] || [ "$PART" = all ]; then
    run_part eager "$T_EAGER" --models "$MODELS" --model-timeout "$MT_EAGER"
fi
if [ "$PART" = train ] || [ "$PART" = all ]; then
    run_part train "$T_TRAIN" --models "$TRAIN_MODEL" --mode infer,train --batch-search \
        --model-timeout "$MT_TRAIN"
fi
if [ "$PART" = compiled ] || [ "$PART" = all ]; then
    run_part compiled "$T_COMPILED" --models "$MODELS" --compile --model-timeout "$MT_COMPILED"
fi
