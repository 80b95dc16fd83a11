# Shared by the GPU scripts (sourced, not run): options, the carried wheels, the CUDA check.
#
# Sets PY, REHEARSE (0/1), OUTDIR, RESULTS and PART from the command line:
#   --rehearse      run the same plumbing on the CPU with a tiny model, in seconds
#   --out DIR       where logs and the results store go (default: $OUT, else gpu_out/)
#   --part NAME     gpu_check.sh only: eager, train, compiled or all (default: all)
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
case "$PART" in eager|train|compiled|all) ;; *)
    echo "$(basename "$0"): --part $PART: expected eager, train, compiled or all." >&2; exit 2 ;;
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
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit \
            --format=csv 2>/dev/null || true
    fi
}

# A part's time limit, cut to what is left before CNN_BENCH_DEADLINE (epoch seconds, set by
# gpu_all.sh so that the whole run ends in time), less the 20 s a stopped run may take to end.
part_limit() {
    local want=$1
    if [ -n "${CNN_BENCH_DEADLINE:-}" ]; then
        local left=$(( CNN_BENCH_DEADLINE - $(date +%s) - 20 ))
        [ "$left" -lt "$want" ] && want=$left
        [ "$want" -lt 10 ] && want=10
    fi
    echo "$want"
}

# GPU clocks, power and temperature once a second into OUTDIR/gpu_clocks.csv, in the
# background (CLOCK_PID), while the parts run; nothing where there is no nvidia-smi.
CLOCK_FIELDS=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active
start_clock_log() {
    CLOCK_PID=
    [ "$REHEARSE" = 1 ] && return 0
    command -v nvidia-smi >/dev/null 2>&1 || return 0
    local fields=$CLOCK_FIELDS
    # an older driver knows the event reasons by their former name, "throttle"
    nvidia-smi --query-gpu="$fields" --format=csv >/dev/null 2>&1 || fields=${fields/clocks_event_reasons/clocks_throttle_reasons}
    nvidia-smi --query-gpu="$fields" --format=csv,nounits -l 1 -f "$OUTDIR/gpu_clocks.csv" \
        >/dev/null 2>&1 &
    CLOCK_PID=$!
}

stop_clock_log() {
    [ -n "${CLOCK_PID:-}" ] || return 0
    kill "$CLOCK_PID" 2>/dev/null
    wait "$CLOCK_PID" 2>/dev/null
    CLOCK_PID=
}

print_clocks() {  # what the sampler saw: min, median and max of each quantity
    [ -s "$OUTDIR/gpu_clocks.csv" ] || return 0
    "$PY" - "$OUTDIR/gpu_clocks.csv" <<'PYEOF'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
head, rows = [h.strip() for h in rows[0]], [r for r in rows[1:] if len(r) == len(rows[0])]
col = {h.split(" ")[0]: i for i, h in enumerate(head)}
def nums(*names):
    i = next((col[n] for n in names if n in col), None)
    out = []
    for r in rows if i is not None else []:
        try:
            out.append(float(r[i]))
        except ValueError:
            pass
    return out
def line(label, unit, *names):
    v = nums(*names)
    if v:
        print(f"- {label}: min {min(v):.0f}, median {statistics.median(v):.0f}, max {max(v):.0f} {unit}")
print(f"GPU clocks over the run ({len(rows)} samples, 1 s apart; gpu_clocks.csv):")
line("SM clock", "MHz", "clocks.current.sm", "clocks.sm")
line("memory clock", "MHz", "clocks.current.memory", "clocks.mem")
line("power", "W", "power.draw")
line("temperature", "C", "temperature.gpu")
reasons = sorted({r[i].strip() for r in rows for h, i in col.items() if "reasons" in h})
if reasons:
    print(f"- clock event reasons seen (bit masks): {', '.join(reasons)}")
PYEOF
}
