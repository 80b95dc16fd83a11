"""One A/B run judged: its document read as ``compare`` reads a run (``load_side``), split
into its two arms, and each A record set beside its B partner and judged by compare's own
matching and tests (``compare_sides``): B against A, A the base.

A record's partner is the other arm's record of the same model and configuration. A key of
the configuration whose values differ between the arms (what the option sets change: batch
size, precision, layout...) is matched by rank instead (A's smallest batch with B's smallest),
and the pair shows it as 'A value→B value'."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from bench.compare import Comparison, Entry, Options, Side, Threshold, compare_sides, load_side
from bench.errors import DataError
from bench.storage import read_document

LABEL_KEY = "ab"  # the record's configuration key naming its arm


def _text(value) -> str:
    return json.dumps(value, sort_keys=True)


def _differing(a: list[Entry], b: list[Entry]) -> list[str]:
    """The configuration keys whose values differ between the arms' records of one model."""
    keys = {k for e in a + b for k in e.config if k != LABEL_KEY}
    return [k for k in sorted(keys) if _values(a, k) != _values(b, k)]


def _values(entries: list[Entry], key: str) -> list[str]:
    return sorted({_text(e.config.get(key)) for e in entries})


def _pair_key(e: Entry, arm: list[Entry], differ: list[str]) -> tuple:
    shared = {k: v for k, v in e.config.items() if k != LABEL_KEY and k not in differ}
    ranks = tuple(_values(arm, k).index(_text(e.config.get(k))) for k in differ)
    return (e.harness, e.device, _text(shared), ranks)


def _one_config(a_entry: Entry, b_entry: Entry, differ: list[str]) -> dict:
    """The configuration both records of a pair carry: the shared keys, and 'A→B' for each
    key the arms change."""
    config = {k: v for k, v in a_entry.config.items() if k != LABEL_KEY and k not in differ}
    for k in differ:
        config[k] = f"{a_entry.config.get(k, '-')}→{b_entry.config.get(k, '-')}"
    return config


def _align(a: list[Entry], b: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """One model's records of each arm, each pair given one configuration to match on."""
    differ = _differing(a, b)
    b_by_key = {_pair_key(e, b, differ): e for e in b}
    a_out, b_out, paired = [], [], set()
    for e in a:
        key = _pair_key(e, a, differ)
        partner = b_by_key.get(key)
        if partner is None or e.status != "ok" or partner.status != "ok":
            a_out.append(replace(e, config=_without_label(e)))
            continue
        config = _one_config(e, partner, differ)
        a_out.append(replace(e, config=config))
        b_out.append(replace(partner, config=config))
        paired.add(id(partner))
    b_out += [replace(e, config=_without_label(e)) for e in b if id(e) not in paired]
    return a_out, b_out


def _without_label(e: Entry) -> dict:
    return {k: v for k, v in e.config.items() if k != LABEL_KEY}


def arm_sides(path: Path) -> tuple[Side, Side]:
    """The A/B run document at ``path`` as two sides: A (the base) and B."""
    whole = load_side(str(path))
    header = read_document(path) or {}
    arms = ((header.get("config") or {}).get("ab") or {}).get("arms") or {}
    if set(arms) != {"A", "B"}:
        raise DataError(f"{path} is not an A/B run ('python -m bench ab' writes those).")
    sides: dict[str, list[Entry]] = {"A": [], "B": []}
    for model in dict.fromkeys(e.model for e in whole.entries):
        mine = [e for e in whole.entries if e.model == model]
        a, b = ([e for e in mine if e.config.get(LABEL_KEY) == x] for x in ("A", "B"))
        a, b = _align(a, b)
        sides["A"] += a
        sides["B"] += b
    return tuple(
        Side(f"{x}: {' '.join(arms[x].get('options') or []) or '(defaults)'}", sides[x],
             runs=whole.runs, name=x)
        for x in ("A", "B")
    )  # fmt: skip


def judge_ab(
    path: Path,
    thresholds: list[Threshold] | None = None,
    metrics: list[str] | None = None,
    options: Options | None = None,
) -> Comparison:
    """B judged against A, as ``compare A B`` would judge two runs."""
    a, b = arm_sides(path)
    return compare_sides(a, b, thresholds, metrics=metrics, options=options)
