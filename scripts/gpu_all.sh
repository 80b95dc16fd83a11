#!/usr/bin/env bash
# Every GPU check in one call, for one device-tool run (under 8 minutes on an H100-class GPU:
# each part's time limit is cut to what is left of 8 minutes, BUDGET_S=480):
#   1. installs the wheels scripts/gpu_wheels.sh built (.whl/; WHEELS=DIR for another),
#   2. scripts/gpu_check.sh --part eager       (throughput, eager)
#   3. scripts/gpu_check.sh --part train       (resnet50 inference and training, batch searched)
#   4. scripts/gpu_finetune_check.sh           (fine-tuning, scratch and pretrained)
#   5. scripts/gpu_check.sh --part compiled    (throughput, torch.compile; the longest, last)
#   6. prints a summary table of every record and the GPU's clocks over the run (sampled once
#      a second into OUTDIR/gpu_clocks.csv), last, and saves both as OUTDIR/summary.md.
# Everything goes under one folder, OUTDIR (--out DIR; default $OUT, else gpu_out/): the logs,
# the summary and the results store OUTDIR/results, ready to be brought back and committed.
#
#   scripts/gpu_all.sh [--out DIR] [--rehearse]
#
# --rehearse runs the same plumbing on the CPU with tiny models in seconds (CI does this).
# Exits 2 with one line where there is no CUDA (without --rehearse); otherwise 0 when every
# record is ok, 1 when any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/_gpu_common.sh
install_carried_wheels
require_cuda

flags=(--out "$OUTDIR")
[ "$REHEARSE" = 1 ] && flags+=(--rehearse)
start=$SECONDS
# on the GPU, the whole script (the install above too) ends within BUDGET_S seconds: the
# parts share what is left, less the summary's few (no deadline when rehearsing)
[ "$REHEARSE" = 0 ] && export CNN_BENCH_DEADLINE=$(( $(date +%s) + ${BUDGET_S:-480} - SECONDS - 10 ))
start_clock_log
trap stop_clock_log EXIT
bash scripts/gpu_check.sh --part eager "${flags[@]}"
bash scripts/gpu_check.sh --part train "${flags[@]}"
bash scripts/gpu_finetune_check.sh "${flags[@]}"
bash scripts/gpu_check.sh --part compiled "${flags[@]}"
stop_clock_log
echo
echo "## summary ($(( SECONDS - start )) s in all)"
{
    "$PY" scripts/gpu_summary.py "$RESULTS"
    rc=$?
    echo
    print_clocks
    exit $rc
} | tee "$OUTDIR/summary.md"
