#!/usr/bin/env bash
# GPU throughput check, in one device call (under 6 minutes on an H100):
#   1. installs what is missing from wheels carried in the tree (./wheels, no network needed),
#   2. measures resnet50, convnext_tiny, vit_base_patch16_224 and efficientnet_b0 at batch 256,
#      224x224, bf16 autocast, channels_last, eager and then torch.compile'd,
#   3. prints the table with the fraction of the GPU's bf16 matmul peak, and saves it to
#      reports/gpu_check.txt (results go to the results store, results/ by default).
# Exits 2 with a one-line message where there is no CUDA.
#
#   bash scripts/gpu_check.sh            # PYTHON=... RESULTS=... to override
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python}
RESULTS=${RESULTS:-results}
LOG=reports/gpu_check.txt
MODELS=resnet50,convnext_tiny,vit_base_patch16_224,efficientnet_b0

# 1. what is missing, from wheels in the tree
missing=$("$PY" - <<'EOF'
import importlib.util
need = {"torch": "torch", "torchvision": "torchvision", "timm": "timm", "fvcore": "fvcore",
        "pandas": "pandas", "matplotlib": "matplotlib", "tabulate": "tabulate", "tqdm": "tqdm"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
EOF
)
if [ -n "$missing" ]; then
    if [ ! -d wheels ]; then
        echo "gpu_check: missing $missing and no ./wheels folder to install them from." >&2
        exit 2
    fi
    "$PY" -m pip install --quiet --no-index --find-links wheels $missing
fi
if ! "$PY" -c "import importlib.metadata as m; m.version('cnn-bench')" 2>/dev/null; then
    "$PY" -m pip install --quiet --no-deps --no-build-isolation --no-index -e .
fi

# 2. CUDA or a clear exit 2
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 2)"; then
    echo "gpu_check: CUDA is not available on this machine (torch $("$PY" -c 'import torch; print(torch.__version__)')); run it on a GPU machine." >&2
    exit 2
fi

mkdir -p reports
COMMON=(--models "$MODELS" --harness throughput --device cuda --batch-size 256 --img-size 224
        --precision bf16 --channels-last --min-time 2 --out "$RESULTS")
{
    echo "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
    echo "## eager"
    # worst case 100 + 240 s: a model that overruns becomes an error row, the table still prints
    timeout 100 "$PY" -m bench run "${COMMON[@]}" --model-timeout 60 || echo "(eager run ended with status $?)"
    echo "## compiled (compile time reported on its own, outside the timed loop)"
    timeout 240 "$PY" -m bench run "${COMMON[@]}" --compile --model-timeout 90 || echo "(compiled run ended with status $?)"
    echo "## table"
    "$PY" - "$RESULTS" <<'EOF'
import sys
from bench.report import latest, load_records, tidy
from bench.report_throughput import throughput_markdown
frame = latest(load_records(sys.argv[1]))
frame = frame[frame["device"] == "cuda"]
print(throughput_markdown(frame, tidy(frame)))
EOF
} 2>&1 | tee "$LOG"
