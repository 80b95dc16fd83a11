"""``run --repeats N``: one model's rounds (each a list of records, as the harness gave them)
merged into one record per configuration (``merge_rounds``), and the estimator it shares with
``--optimize``'s rounds (``median_of_rounds``). The reported samples per second is the median
over the rounds; ``rounds_samples_per_sec`` keeps every round's, in the order they ran, and
``step_times_ms`` every round's steps (capped); the other metrics are the median round's, with
the figures derived from samples/s scaled to the median."""

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
        base = dict(ok[median_index([r["metrics"] for r in ok], key)])
        base["metrics"] = median_of_rounds([r["metrics"] for r in ok], key)
        base["metrics"]["rounds_failed"] = len(records) - len(ok)
        base["duration_s"] = round(sum(r.get("duration_s") or 0 for r in records), 3)
        base["finished_utc"] = max(r.get("finished_utc") or "" for r in records) or None
    base["config"] = {**(base.get("config") or {}), "repeats": repeats}
    return base


def median_index(rounds: list[dict], key: str) -> int:
    """Which of the rounds' metrics is the median round: the middle one by ``key``, the
    slower of the middle two when the count is even (ties in the order they ran)."""
    order = sorted(range(len(rounds)), key=lambda i: rounds[i][key])
    return order[(len(rounds) - 1) // 2]


def median_of_rounds(rounds: list[dict], key: str) -> dict:
    """Several timings of one configuration (each round's metrics, in the order they ran,
    each with ``key``) as one: the median round's metrics with the median samples/s (the
    middle two averaged when the count is even), every round's samples/s
    (``rounds_samples_per_sec``) and step times, and the best peak sample of any round.
    The figures derived from the samples/s (``achieved_gmacs_per_sec``, ``frac_of_peak``)
    are scaled from the median round's samples/s to the median, so that they agree with it.
    The estimator of ``run --repeats`` and of ``--optimize``'s rounds."""
    median_round = rounds[median_index(rounds, key)]
    metrics = dict(median_round)
    speeds = [r[key] for r in rounds]
    median = statistics.median(speeds)
    metrics[key] = round(median, 3)
    metrics["rounds_samples_per_sec"] = speeds
    scale = median / median_round[key] if median_round[key] else None
    for derived, digits in (("achieved_gmacs_per_sec", 3), ("frac_of_peak", 4)):
        if metrics.get(derived) is not None and scale is not None:
            metrics[derived] = round(metrics[derived] * scale, digits)
    steps = [t for r in rounds for t in r.get("step_times_ms") or []]
    if steps:
        kept, capped = kept_step_times(steps)
        metrics["step_times_ms"] = kept
        metrics["step_times_capped"] = capped or any(r.get("step_times_capped") for r in rounds)
    samples = [r.get("peak_sample_gmacs_per_sec") for r in rounds]
    if any(s is not None for s in samples):
        metrics["peak_sample_gmacs_per_sec"] = max(s for s in samples if s is not None)
    return metrics
