# Shared by the GPU scripts (sourced, not run): options, the carried wheels, the CUDA check.
#
# Sets PY, REHEARSE (0/1), OUTDIR, RESULTS and PART from the command line:
#   --rehearse      run the same plumbing on the CPU with a tiny model, in seconds
#   --out DIR       where logs and the results store go (default: $OUT, else gpu_out/)
#   --part NAME     gpu_check.sh only: eager, compiled or all (default: all)
# and installs the wheels that scripts/gpu_wheels.sh built (WHEELS, default .whl/) into a
# folder of their own (--target), put first on PYTHONPATH; the machine's torch is never touched.
PY="${PYTHON:-python3}"
REHEARSE=0
OUTDIR="${OUT:-gpu_out}"
PART=all
while [ $# -gt 0 ]; do
    case "$1" in
        --rehearse) REHEARSE=1 ;;
        --out) OUTDIR="$2"; shift ;;
        --part) PART="$2"; shift ;;
        -h|--help) sed -n '2,/^set /p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set /d'; exit 0 ;;
        *) echo "$(basename "$0"): unknown option '$1'; see --help." >&2; exit 2 ;;
    esac
    shift
done
case "$PART" in eager|compiled|all) ;; *)
    echo "$(basename "$0"): --part $PART: expected eager, compiled or all." >&2; exit 2 ;;
esac
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
RESULTS="$OUTDIR/results"

install_carried_wheels() {
    local wheels="${WHEELS:-.whl}"
    [ -n "${CNN_BENCH_WHEELS_INSTALLED:-}" ] && return 0
    if ls "$wheels"/*.whl >/dev/null 2>&1; then
        local site="${CNN_BENCH_SITE:-/tmp/cnn-bench-site}"
        if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                --upgrade --target "$site" "$wheels"/*.whl >/tmp/cnn-bench-pip.log 2>&1; then
            echo "$(basename "$0"): installing the wheels of $wheels failed; see /tmp/cnn-bench-pip.log." >&2
            exit 2
        fi
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export CNN_BENCH_WHEELS_INSTALLED=1
    local missing
    missing=$("$PY" - <<'PYEOF'
import importlib.util
need = ["torch", "torchvision", "timm", "pandas", "tabulate", "fvcore", "mlxtend"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PYEOF
)
    if [ -n "$missing" ]; then
        echo "$(basename "$0"): missing Python packages: $missing. Build their wheels with" \
             "scripts/gpu_wheels.sh (into $wheels/) and bring that folder along." >&2
        exit 2
    fi
}

require_cuda() {
    [ "$REHEARSE" = 1 ] && return 0
    if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        echo "$(basename "$0"): CUDA is not available (or $PY cannot import torch); run it on a" \
             "GPU machine, or pass --rehearse to try the plumbing on the CPU." >&2
        exit 2
    fi
}

describe_machine() {
    "$PY" - <<'PYEOF'
import platform, torch
line = f"python {platform.python_version()} | torch {torch.__version__}"
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    line += f" | cuda {torch.version.cuda} | {p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"
else:
    line += " | no CUDA: CPU rehearsal"
print(line)
PYEOF
    if [ "$REHEARSE" = 0 ]; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || true
    fi
}
