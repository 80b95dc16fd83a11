"""Matching two sides' records and judging every shared metric: ``compare``."""

from __future__ import annotations

import difflib
import json
import logging
import math
from pathlib import Path

from bench.compare.metrics import (
    HEADLINE,
    NEITHER,
    Change,
    Threshold,
    change_of,
    change_text,
    direction,
    is_timed,
)
from bench.compare.sides import Entry, Side, combined_noise, load_side
from bench.compare.table import Comparison, Row
from bench.errors import ConfigError
from bench.registry.lookup import natural_key

logger = logging.getLogger(__name__)


def _varying_keys(entries: list[Entry]) -> dict[str, list[str]]:
    """Per harness, the config keys whose values differ between records: what tells them apart."""
    values: dict[tuple[str, str], set[str]] = {}
    for e in entries:
        for k, v in e.config.items():
            values.setdefault((e.harness, k), set()).add(json.dumps(v, sort_keys=True))
    out: dict[str, list[str]] = {}
    for (harness, k), seen in sorted(values.items()):
        if len(seen) > 1:
            out.setdefault(harness, []).append(k)
    return out


def _selected(b: Entry, n: Entry, metrics, thresholds: list[Threshold]) -> list[str]:
    common = b.metrics.keys() & n.metrics.keys()
    named = [t.metric for t in thresholds]
    if metrics == ["all"]:
        return sorted(common)
    wanted = list(metrics or HEADLINE)
    if metrics is None and "params" in common and "param_count" not in named:
        wanted.remove("param_count")  # the exact count says it already
    wanted += [m for m in named if m not in wanted]
    return [m for m in wanted if m in common]


def _timm_comparable(e: Entry) -> bool:
    """A fine-tuned top-1 is on its own data set: comparable with timm's only on ImageNet."""
    return e.harness != "finetune" or str(e.config.get("dataset", "")).startswith("imagenet")


def _value_cells(b: Entry, n: Entry, metric: str) -> tuple[Change, float | None, bool]:
    change = change_of(b.metrics[metric], n.metrics[metric])
    if not is_timed(metric):
        return change, None, False
    noise = combined_noise(b, n)
    rel = math.inf if change.pct is None else abs(change.pct) / 100
    return change, 100 * noise, change.abs != 0 and noise > 0 and rel <= noise


def _verdict(metric: str, change: Change, noise_pct, within: bool, crossed) -> str:
    if change.abs == 0:
        return "same"
    if within:
        return f"within noise (±{noise_pct:.1f}%)"
    way = direction(metric) * (1 if change.abs > 0 else -1)
    word = {1: "better", -1: "worse", 0: "changed"}[way]
    return f"{word}; FAIL {', '.join(map(str, crossed))}" if crossed else word


def _order(key: tuple) -> tuple:
    return (natural_key(key[0]), *key[1:])


class _Builder:
    """Collects the rows of one comparison."""

    def __init__(self, base: Side, new: Side, thresholds: list[Threshold], metrics):
        self.base, self.new = base, new
        self.thresholds, self.metrics = thresholds, metrics
        self.by_name = base.by_name or new.by_name
        self.vary = _varying_keys(base.entries + new.entries)
        self.rows: list[Row] = []
        self.failures: list[str] = []

    def key(self, e: Entry) -> tuple:
        return (e.model,) if self.by_name else e.key

    def row(self, e: Entry, metric: str = "", **cells) -> Row:
        keys = self.vary.get(e.harness, [])
        config = " ".join(f"{k}={e.config[k]}" for k in keys if k in e.config)
        base = {"base": None, "new": None, "change": None, "noise_pct": None}
        return Row(e.model, e.harness, e.device, config, metric, **{**base, **cells})

    def pair(self, b: Entry, n: Entry) -> None:
        if b.status != "ok" or n.status != "ok":
            self.status_pair(b, n)
            return
        if self.by_name and not (_timm_comparable(b) and _timm_comparable(n)):
            return
        shown = b if self.new.by_name else n  # name the record, not the CSV row
        for metric in _selected(b, n, self.metrics, self.thresholds):
            self.metric_row(shown, b, n, metric)

    def metric_row(self, shown: Entry, b: Entry, n: Entry, metric: str) -> None:
        change, noise_pct, within = _value_cells(b, n, metric)
        crossed = [t for t in self.thresholds if t.metric == metric and t.crossed(change)]
        failed = bool(crossed) and not within
        row = self.row(
            shown,
            metric,
            base=b.metrics[metric],
            new=n.metrics[metric],
            change=change,
            noise_pct=noise_pct,
            failed=failed,
            verdict=_verdict(metric, change, noise_pct, within, crossed),
        )
        self.rows.append(row)
        if failed:
            self.failures.append(
                f"{row.model} {metric} {change_text(change)} crosses "
                f"{', '.join(map(str, crossed))} [{row.where()}]"
            )

    def status_pair(self, b: Entry, n: Entry) -> None:
        if n.status != "ok":
            verdict = f"failed in {'both' if b.status != 'ok' else 'new'}: {n.error}"
        else:
            verdict = f"failed in base: {b.error}; ok in new"
        failed = bool(self.thresholds) and b.status == "ok"
        row = self.row(b if b.status == "ok" else n, verdict=verdict, failed=failed)
        self.rows.append(row)
        if failed:
            self.failures.append(f"{row.model} {row.harness} failed in new: {n.error}")

    def pair_failed(self, only_base: list[Entry], only_new: list[Entry]) -> None:
        """A record that failed has no config: pair it with its harness's records on the
        other side before calling anything unmatched (both lists lose what is paired)."""
        for side, others in ((only_new, only_base), (only_base, only_new)):
            for e in [e for e in side if e.status != "ok"]:
                partners = [o for o in others if (o.model, o.harness) == (e.model, e.harness)]
                for o in partners:
                    self.pair(*((o, e) if side is only_new else (e, o)))
                    others.remove(o)
                if partners:
                    side.remove(e)

    def unmatched(self, only_base: list[Entry], only_new: list[Entry]) -> None:
        self.pair_failed(only_base, only_new)
        for side, entries in (("base", only_base), ("new", only_new)):
            seen = set()
            for e in entries:
                if self.by_name and e.model in seen:
                    continue  # a model without a match is listed once, not per record
                seen.add(e.model)
                if self.by_name:  # matched on the name alone: the name is what is missing
                    e = Entry(e.model)
                self.rows.append(self.row(e, verdict=f"only in {side}"))

    def build(self) -> Comparison:
        bidx: dict[tuple, list[Entry]] = {}
        nidx: dict[tuple, list[Entry]] = {}
        for idx, side in ((bidx, self.base), (nidx, self.new)):
            for e in side.entries:
                idx.setdefault(self.key(e), []).append(e)
        for k in sorted(bidx.keys() & nidx.keys(), key=_order):
            for b in bidx[k]:
                for n in nidx[k]:
                    self.pair(b, n)
        only_base = [e for k in sorted(bidx.keys() - nidx.keys(), key=_order) for e in bidx[k]]
        only_new = [e for k in sorted(nidx.keys() - bidx.keys(), key=_order) for e in nidx[k]]
        self.unmatched(only_base, only_new)
        return Comparison(self.base, self.new, self.rows, self.failures)


def _check_thresholds(thresholds: list[Threshold], sides: tuple[Side, Side]) -> None:
    """A metric neither side has is a typo (an error) unless cnn-bench knows the name: then
    these results lack it (a warning; the threshold checks nothing)."""
    present = {m for s in sides for e in s.entries for m in e.metrics}
    for t in thresholds:
        if t.metric in present:
            continue
        if t.metric in HEADLINE or direction(t.metric) != NEITHER:
            logger.warning("--fail %s: neither side has %s; nothing to check", t, t.metric)
        else:
            close = difflib.get_close_matches(t.metric, sorted(present | set(HEADLINE)), n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(
                f"--fail {t}: neither side has a metric '{t.metric}'.{hint} Metric names are "
                "the records' (infer_samples_per_sec, params, param_count, infer_gmacs, top1...)."
            )


def compare(
    base: str,
    new: str,
    thresholds: list[Threshold] | None = None,
    *,
    results: str | Path = "results",
    all_runs: bool = False,
    metrics: list[str] | None = None,
) -> Comparison:
    """Load both sides, match their records and judge every shared metric."""
    thresholds = thresholds or []
    sides = (load_side(base, results, all_runs), load_side(new, results, all_runs))
    _check_thresholds(thresholds, sides)
    return _Builder(*sides, thresholds, metrics).build()
