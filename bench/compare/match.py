"""Matching the sides' records and judging every shared metric: ``compare`` (two sides) and
``compare_runs`` (one column per run, the first the base).

Records match on (model, harness, device, device name, configuration); what is left is then
matched without the device name, and such a pair is cross-machine: comparing its speeds is
refused (``ConfigError``, exit 2) unless ``cross_machine``, and then its rows say so."""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from bench.compare.judge import Judgement, judge, sample_test
from bench.compare.machines import cross_machine, machine_pair
from bench.compare.metrics import HEADLINE, NEITHER, Threshold, change_text, direction, is_timed
from bench.compare.sides import Entry, Side, load_side, store_run_sides
from bench.compare.table import Comparison, MultiComparison, Row, correction_line, notes_of
from bench.errors import ConfigError
from bench.registry.lookup import natural_key
from bench.stats import ALPHA, CONFIDENCE, holm

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


ILSVRC_VAL_IMAGES = 50_000  # what timm's results-imagenet.csv scores every model on


def _timm_comparable(e: Entry) -> bool:
    """A top-1 is comparable with timm's only on ImageNet's validation set: a fine-tuned one
    only on ImageNet, a validate one only over all 50,000 ILSVRC2012 validation images (not on
    the photos, nor on a part of the set)."""
    if e.harness == "finetune":
        return str(e.config.get("dataset", "")).startswith("imagenet")
    if e.harness == "validate":
        return e.metrics.get("val_images") == ILSVRC_VAL_IMAGES
    return True


def _as_timm(e: Entry) -> Entry:
    """A validate record's top-1 and top-5 under the names timm's CSV gives them."""
    if e.harness != "validate":
        return e
    named = {timm: e.metrics[ours] for ours, timm in (("val_top1", "top1"), ("val_top5", "top5"))
             if ours in e.metrics}  # fmt: skip
    return replace(e, metrics={**e.metrics, **named})


def _decimals(value: float) -> int:
    """How many decimals a CSV's number was written with (its shortest repr)."""
    text = repr(float(value))
    return 0 if "e" in text or text.endswith(".0") else len(text.split(".")[1])


def _is_csv(spec: str) -> bool:
    return Path(spec).suffix.lower() == ".csv" and Path(spec).is_file()


def _order(key: tuple) -> tuple:
    return (natural_key(key[0]), *key[1:])


@dataclass(frozen=True)
class Options:
    """How changes are judged: ``alpha`` for the test, ``confidence`` for the interval."""

    alpha: float = ALPHA
    confidence: float = CONFIDENCE
    cross_machine: bool = False  # compare speeds measured on different machines

    def __post_init__(self):
        for name in ("alpha", "confidence"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name} {getattr(self, name):g}: expected a number between 0 and 1 "
                    f"(such as --alpha {ALPHA:g} --confidence {CONFIDENCE:g})."
                )


def _refuse_cross_machine(b: Entry, base_machine: str, new_machine: str) -> None:
    raise ConfigError(
        f"{b.model} was measured on {base_machine} in base and on {new_machine} in new: "
        "speeds from different machines are not comparable. Measure both on one machine, or "
        "pass --cross-machine to compare them anyway (every row then says so)."
    )


class _Builder:
    """Collects the rows of one comparison."""

    def __init__(self, base: Side, new: Side, thresholds: list[Threshold], metrics, options):
        self.base, self.new = base, new
        self.thresholds, self.metrics, self.options = thresholds, metrics, options
        self.by_name = base.by_name or new.by_name
        self.vary = _varying_keys(base.entries + new.entries)
        self.rows: list[Row] = []
        self.failures: list[tuple[Row, str]] = []  # by the row that fails
        self.judged: list[tuple[Row, Judgement]] = []  # metric rows, their verdicts to come

    def key(self, e: Entry, machine: bool = True) -> tuple:
        if self.by_name:
            return (e.model,)
        return (*e.key, e.device_name) if machine else e.key

    def row(self, e: Entry, metric: str = "", **cells) -> Row:
        keys = self.vary.get(e.harness, [])
        config = " ".join(f"{k}={e.config[k]}" for k in keys if k in e.config)
        base = {"base": None, "new": None, "change": None, "noise_pct": None, "verdict": ""}
        return Row(e.model, e.harness, e.device, config, metric, **{**base, **cells})

    def pair(self, b: Entry, n: Entry) -> None:
        if b.status != "ok" or n.status != "ok":
            self.status_pair(b, n)
            return
        if self.by_name and not (_timm_comparable(b) and _timm_comparable(n)):
            return
        if self.by_name:
            b, n = _as_timm(b), _as_timm(n)
        shown = b if self.new.by_name else n  # name the record, not the CSV row
        selected = _selected(b, n, self.metrics, self.thresholds)
        machines = "" if self.by_name else cross_machine(b, n)
        if machines and not self.options.cross_machine and any(map(is_timed, selected)):
            _refuse_cross_machine(b, *machine_pair(b, n))
        tests: dict = {}
        for metric in selected:
            test = sample_test(b, n, metric, self.options.confidence, tests)
            j = judge(b, n, metric, test, self.options.alpha)
            cells = {"base": b.metrics[metric], "new": n.metrics[metric], "change": j.change}
            row = self.row(shown, metric, **cells, noise_pct=j.noise_pct, machines=machines)
            self.rows.append(row)
            self.judged.append((row, j))

    def correct(self) -> int:
        """Holm's correction over the table's tests (one per test, however many rows share
        it), then every metric row's verdict on the corrected p-values; the number of tests."""
        family = list({id(j.test): j.test for _, j in self.judged if j.tested}.values())
        adjusted = dict(zip(map(id, family), holm([t.p for t in family]), strict=True))
        for row, j in self.judged:
            if j.tested:
                j = j.adjusted(adjusted[id(j.test)], self.options.alpha)
            self.verdict(row, j)
        return len(family)

    def verdict(self, row: Row, j: Judgement) -> None:
        crossed = j.crossed(self.thresholds, row.metric)
        verdict = j.verdict(row.metric, crossed)
        if self.by_name:  # a timm CSV states its figures rounded: a change within that is none
            digits = _decimals(row.new if self.new.by_name else row.base)
            if abs(j.change.abs) <= 0.5 * 10**-digits + 1e-12:
                crossed, verdict = [], f"same to the CSV's {digits} decimal(s)"
        machines = row.machines
        row.verdict = f"{verdict} [cross-machine: {machines}]" if machines else verdict
        row.failed = bool(crossed)
        row.test = j.evidence()
        row.p_value = j.test.p if j.test else None
        row.p_adjusted = j.p_adjusted
        row.interval = (j.low.pct, j.high.pct) if j.low and j.high else None
        row.untrusted = j.untrusted
        if crossed:
            text = (
                f"{row.model} {row.metric} {change_text(j.change)} crosses "
                f"{', '.join(map(str, crossed))} [{row.where()}]"
            )
            self.failures.append((row, text + (f" ({row.test})" if j.test else "")))

    def status_pair(self, b: Entry, n: Entry) -> None:
        if n.status != "ok":
            verdict = f"failed in {'both' if b.status != 'ok' else 'new'}: {n.error}"
        else:
            verdict = f"failed in base: {b.error}; ok in new"
        failed = bool(self.thresholds) and b.status == "ok"
        row = self.row(b if b.status == "ok" else n, verdict=verdict, failed=failed)
        self.rows.append(row)
        if failed:
            self.failures.append((row, f"{row.model} {row.harness} failed in new: {n.error}"))

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
        only_base, only_new = self.match(bidx, nidx)
        if not self.by_name:  # what is left, matched across machines
            only_base, only_new = self.match(
                _index(only_base, self.key), _index(only_new, self.key)
            )
        self.unmatched(only_base, only_new)
        tests = self.correct()
        order = {id(r): i for i, r in enumerate(self.rows)}
        failures = [text for row, text in sorted(self.failures, key=lambda f: order[id(f[0])])]
        gated = {t.metric for t in self.thresholds}
        return Comparison(
            self.base, self.new, self.rows, failures,
            note=notes_of(self.rows, self.options.alpha, self.options.confidence),
            correction=correction_line(tests),
            unjudged=[_unjudged(r) for r in self.rows if r.untrusted and r.metric in gated],
        )  # fmt: skip

    def match(self, bidx: dict, nidx: dict) -> tuple[list[Entry], list[Entry]]:
        """Pair the entries of equal keys; return what is left on either side."""
        for k in sorted(bidx.keys() & nidx.keys(), key=_order):
            for b in bidx[k]:
                for n in nidx[k]:
                    self.pair(b, n)
        only_base = [e for k in sorted(bidx.keys() - nidx.keys(), key=_order) for e in bidx[k]]
        only_new = [e for k in sorted(nidx.keys() - bidx.keys(), key=_order) for e in nidx[k]]
        return only_base, only_new


def _unjudged(row: Row) -> str:
    return f"{row.model} {row.metric} [{row.where()}]: {row.untrusted}"


def _index(entries: list[Entry], key) -> dict[tuple, list[Entry]]:
    """Entries by their key without the device name."""
    out: dict[tuple, list[Entry]] = {}
    for e in entries:
        out.setdefault(key(e, machine=False), []).append(e)
    return out


def _check_thresholds(thresholds: list[Threshold], sides) -> None:
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


def _load_sides(specs: list[str], results: str | Path, all_runs: bool) -> list[Side]:
    """Each argument as a Side. A timm CSV is a catalogue, not a run: a store beside one is
    read whole (the latest record of each configuration over all its runs), not only its
    latest run."""
    all_runs = all_runs or any(_is_csv(s) for s in specs)
    return [load_side(s, results, all_runs) for s in specs]


def compare(
    base: str,
    new: str,
    thresholds: list[Threshold] | None = None,
    *,
    results: str | Path = "results",
    all_runs: bool = False,
    metrics: list[str] | None = None,
    options: Options | None = None,
) -> Comparison:
    """Load both sides, match their records and judge every shared metric."""
    sides = _load_sides([base, new], results, all_runs)
    return compare_sides(*sides, thresholds, metrics=metrics, options=options)


def compare_sides(
    base: Side,
    new: Side,
    thresholds: list[Threshold] | None = None,
    *,
    metrics: list[str] | None = None,
    options: Options | None = None,
) -> Comparison:
    """Match two sides already read and judge every shared metric, as ``compare`` does
    (``bench.ab`` splits one run's document into its two option sets)."""
    thresholds = thresholds or []
    _check_thresholds(thresholds, [base, new])
    return _Builder(base, new, thresholds, metrics, options or Options()).build()


def compare_runs(
    specs: list[str],
    thresholds: list[Threshold] | None = None,
    *,
    results: str | Path = "results",
    all_runs: bool = False,
    metrics: list[str] | None = None,
    options: Options | None = None,
) -> MultiComparison:
    """One column per side (the first is the base). ``specs`` of one store folder with
    ``all_runs``: every run of that store, oldest first."""
    thresholds = thresholds or []
    if len(specs) == 1 and all_runs:
        sides = store_run_sides(Path(specs[0]))
    else:
        sides = _load_sides(specs, results, all_runs)
    if len(sides) < 2:
        raise ConfigError(
            f"Nothing to compare: {specs[0]} holds {len(sides)} run(s). Give two or more runs, "
            "or --all STORE for a store with two or more runs."
        )
    _check_thresholds(thresholds, sides)
    pairs = [
        _Builder(sides[0], s, thresholds, metrics, options or Options()).build() for s in sides[1:]
    ]
    return MultiComparison(sides, pairs)
