#!/usr/bin/env bash
# Fine-tune resnet50 and convnext_tiny on mnist5k at 224x224 with bf16 for 2 epochs on one
# CUDA GPU, in one call (target: under 5 minutes), and keep the output under reports/.
#
#   scripts/gpu_finetune_check.sh [RESULTS_DIR]    (default: results/)
#
# From scratch (no download needed: nothing is fetched at run time); with --pretrained
# the timm weights must already be in the Hugging Face cache. Exits 2 without CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
OUT="${1:-results}"
LOG="reports/gpu_finetune_check.txt"

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "error: scripts/gpu_finetune_check.sh needs a CUDA GPU, and torch sees none" \
         "(or cannot import torch with $PY; set PYTHON=...). Run it on a GPU machine." >&2
    exit 2
fi

mkdir -p reports
{
    echo "# scripts/gpu_finetune_check.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "$PY" -c 'import torch; print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    start=$(date +%s)
    "$PY" -m bench run --models resnet50,convnext_tiny --harness finetune \
        --dataset mnist5k --img-size 224 --precision bf16 --device cuda --epochs 2 \
        --batch-size 128 --no-progress --out "$OUT" --checkpoint-dir checkpoints/gpu_check
    echo "wall time: $(( $(date +%s) - start )) s"
    "$PY" - "$OUT" <<'PYEOF'
import json, sys, pathlib
docs = sorted(pathlib.Path(sys.argv[1]).glob("*/*.json"), key=lambda p: p.stat().st_mtime)
for rec in json.loads(docs[-1].read_text())["records"]:
    m = rec["metrics"]
    print(rec["model"], rec["status"], rec["error"] or "",
          {k: m.get(k) for k in ("top1", "top5", "train_time_s", "train_samples_per_sec")},
          rec["config"].get("precision"), rec.get("device_name"))
PYEOF
} 2>&1 | tee "$LOG"
