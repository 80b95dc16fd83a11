"""Every throughput record that names a fine-tune checkpoint (--weights) and does not trace to a
fine-tune record with its sha256 and the same top-1 (within 0.1 points).

    python scripts/trace_checkpoints.py [RESULTS_DIR]

One line per record that does not trace (run, model, checkpoint, why). Exit status 0 when every
such record traces, 1 when any does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str]) -> int:
    from bench.report.checkpoints import untraced
    from bench.report.records import read_records

    results = argv[0] if argv else "results"
    frame = read_records(results).history
    bad = untraced(frame)
    for rec, t in bad:
        print(f"{rec['run_id']}  {rec['model']:<22} {t.short}  {t.file}: {t.note}")
    named = frame[(frame["harness"] == "throughput") & (frame["status"] == "ok")]
    total = sum(1 for m in named["metrics"] if (m or {}).get("init_source") == "file")
    print(f"{total - len(bad)} of {total} throughput record(s) naming a checkpoint trace.")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
