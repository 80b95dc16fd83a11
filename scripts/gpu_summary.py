"""One table of every record in a results store: what the GPU scripts print last.

    python scripts/gpu_summary.py RESULTS_DIR

Exit status 0 when every record is ok, 1 when any failed, 2 when there is nothing to show.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = {
    "model": "model",
    "harness": "harness",
    "status": "status",
    "device_name": "device",
    "mode": "mode",
    "batch": "batch",
    "precision": "precision",
    "layout": "layout",
    "compiled": "compiled",
    "samples_per_sec": "img/s",
    "median_ms": "median ms",
    "cv_pct": "CV %",
    "compile_time_s": "compile s",
    "frac_of_peak": "% of peak",
    "peak": "peak GMAC/s",
    "top1": "top-1 %",
    "train_samples_per_sec": "train img/s",
    "speed_epochs": "steady epochs",
    "error": "error",
}


def rows(frame) -> list[dict]:
    out = []
    for rec in frame.itertuples():
        m, c = rec.metrics, rec.config
        mode = c.get("mode") or ("train" if rec.harness == "finetune" else "")
        frac = m.get("frac_of_peak")
        out.append(
            {
                "model": rec.model,
                "harness": rec.harness,
                "status": rec.status,
                "device_name": rec.device_name or rec.device,
                "mode": mode,
                "batch": m.get(f"{mode}_batch_size") or c.get("batch_size"),
                "precision": c.get("precision"),
                "layout": c.get("layout"),
                "compiled": c.get("compiled"),
                "samples_per_sec": m.get(f"{mode}_samples_per_sec"),
                "median_ms": m.get("median"),
                "cv_pct": m.get("cv_pct"),
                "compile_time_s": m.get("compile_time_s"),
                "frac_of_peak": round(100 * frac, 1) if frac is not None else None,
                "peak": m.get("peak_gmacs_per_sec"),
                "top1": m.get("top1"),
                "train_samples_per_sec": m.get("train_samples_per_sec"),
                "speed_epochs": m.get("speed_epochs"),
                "error": (rec.error or "")[:160],
            }
        )
    return out


def main(argv: list[str]) -> int:
    from tabulate import tabulate

    from bench.report.records import read_records

    if len(argv) != 1:
        print("usage: python scripts/gpu_summary.py RESULTS_DIR", file=sys.stderr)
        return 2
    frame = read_records(argv[0]).history
    if frame.empty:
        print(f"gpu_summary: no records under {argv[0]}", file=sys.stderr)
        return 2
    frame = frame.sort_values(["finished_utc"], kind="stable")
    table = rows(frame)
    used = [k for k in COLUMNS if any(r[k] not in (None, "") for r in table)]
    print(
        tabulate(
            [[r[k] for k in used] for r in table],
            headers=[COLUMNS[k] for k in used],
            tablefmt="github",
            missingval="",
        )
    )
    failed = [r for r in table if r["status"] != "ok"]
    print(f"\n{len(table)} records, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
