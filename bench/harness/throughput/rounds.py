"""``run --repeats N``: one model's rounds (each a list of records, as the harness gave them)
merged into one record per configuration. The reported samples per second is the median over
the rounds; ``rounds_samples_per_sec`` keeps every round's, in the order they ran, and
``step_times_ms`` every round's steps (capped); the other metrics are the median round's."""

from __future__ import annotations

import json
import statistics

from bench.harness.samples import kept_step_times


def _key(record: dict) -> str:
    return json.dumps([record.get("harness"), record.get("config") or {}], sort_keys=True)


def _speed_key(record: dict) -> str | None:
    mode = (record.get("config") or {}).get("mode")
    key = f"{mode}_samples_per_sec"
    return key if record.get("status") == "ok" and key in (record.get("metrics") or {}) else None


def merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """The first round's records, each merged with the same configuration's records of the
    other rounds (``config["repeats"]``: how many rounds were asked for)."""
    same: dict[str, list[dict]] = {}
    for records in rounds:
        for r in records:
            same.setdefault(_key(r), []).append(r)
    return [_merge(same[_key(r)], len(rounds)) for r in rounds[0]]


def _merge(records: list[dict], repeats: int) -> dict:
    """One configuration's rounds as one record."""
    ok = [r for r in records if _speed_key(r)]
    base = dict(records[0])
    if ok:
        key = _speed_key(ok[0])
        speeds = [r["metrics"][key] for r in ok]
        base = dict(sorted(ok, key=lambda r: r["metrics"][key])[(len(ok) - 1) // 2])
        base["metrics"] = _merged_metrics(ok, base["metrics"], key, speeds)
        base["metrics"]["rounds_failed"] = len(records) - len(ok)
        base["duration_s"] = round(sum(r.get("duration_s") or 0 for r in records), 3)
        base["finished_utc"] = max(r.get("finished_utc") or "" for r in records) or None
    base["config"] = {**(base.get("config") or {}), "repeats": repeats}
    return base


def _merged_metrics(ok: list[dict], median_round: dict, key: str, speeds: list) -> dict:
    """The median round's metrics with the median samples/s, every round's samples/s and
    step times, and the best peak sample of any round."""
    metrics = dict(median_round)
    median = statistics.median(speeds)
    metrics[key] = round(median, 3)
    metrics["rounds_samples_per_sec"] = speeds
    achieved = metrics.get("achieved_gmacs_per_sec")
    if achieved is not None and median_round[key]:
        metrics["achieved_gmacs_per_sec"] = round(achieved * median / median_round[key], 3)
    steps = [t for r in ok for t in r["metrics"].get("step_times_ms") or []]
    if steps:
        kept, capped = kept_step_times(steps)
        metrics["step_times_ms"] = kept
        metrics["step_times_capped"] = capped or any(
            r["metrics"].get("step_times_capped") for r in ok
        )
    samples = [r["metrics"].get("peak_sample_gmacs_per_sec") for r in ok]
    if any(s is not None for s in samples):
        metrics["peak_sample_gmacs_per_sec"] = max(s for s in samples if s is not None)
    return metrics
