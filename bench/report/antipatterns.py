"""``reports/antipatterns.md``: the chapter's two anti-patterns, measured over seeds.

1. "Fine-tuning every layer at one learning rate from the start destroys what pre-training
   learnt; train the head first, then everything at a lower rate." Pretrained fine-tune
   records on small data (``--train-limit``) compared by protocol: ``full`` (every layer at
   ``--lr`` from the start), ``staged`` (head first, then everything with the backbone at a
   lower rate) and ``linear`` (the head alone).
2. "No augmentation overfits small data, but a wrong one hurts: turning digits by 180 degrees
   confuses 6 and 9." Records on small data compared by augmentation: ``none``, ``digits``,
   ``rot180``, with the 6/9 confusions counted from each record's confusion matrix.

A verdict follows from the numbers: a difference of means larger than the two conditions'
standard deviations added together supports (or, the other way, refutes) a claim; a smaller
one is within the spread, and says neither. ``scripts/antipatterns.sh`` reproduces the
records. Pure pandas; no torch.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.report.finetune import finetune_rows
from bench.report.fmt import wrap
from bench.report.records import Records
from bench.storage import atomic_write_text

PROTOCOLS = ("full", "staged", "linear")
AUGMENTS = ("none", "digits", "rot180")
MIN_SEEDS = 2


def _stats(values: list[float]) -> tuple[float, float, int]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def _mean_sd_text(s: tuple[float, float, int]) -> str:
    return f"{s[0]:.2f} ± {s[1]:.2f} (n={s[2]})"


def compare(
    better: tuple, worse: tuple, higher_is_better: bool = True, unit: str = "points"
) -> str:
    """'supported', 'refuted' or 'within the spread': is ``better``'s mean beyond ``worse``'s
    (above it, or below it when lower is better) by more than their standard deviations
    added together?"""
    gap = better[0] - worse[0] if higher_is_better else worse[0] - better[0]
    spread = better[1] + worse[1]
    if better[2] < MIN_SEEDS or worse[2] < MIN_SEEDS:
        return f"too few seeds (need {MIN_SEEDS} per condition)"
    if gap > spread:
        return f"supported (+{gap:.2f} {unit}, spread {spread:.2f})"
    if -gap > spread:
        return f"refuted ({gap:+.2f} {unit}, spread {spread:.2f})"
    return f"within the spread ({gap:+.2f} {unit} against {spread:.2f}): neither"


def _six_nine(r: dict) -> int | None:
    m = r.get("confusion")
    if not isinstance(m, list) or len(m) < 10:
        return None
    return int(m[6][9]) + int(m[9][6])


def _groups(rows: list[dict], by: str, values: tuple) -> dict[tuple, dict[str, list[dict]]]:
    """Small-data records grouped by everything but ``by`` and the seed."""
    out: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        if not r.get("train_limit") or r.get(by) not in values:
            continue
        key = (
            r["model"],
            r.get("dataset"),
            r.get("train_limit"),
            r.get("epochs"),
            r.get("finetune_img_size"),
            r.get("init"),
            r["device"],
            r.get("augment") if by == "protocol" else r.get("protocol"),
        )
        out.setdefault(key, {}).setdefault(r[by], []).append(r)
    return out


def _transfer(rows: list[dict]) -> list[str]:
    lines = ["## 1. Every layer at one rate from the start, or the head first", ""]
    table = []
    verdicts = []
    for key, by in sorted(_groups(rows, "protocol", PROTOCOLS).items(), key=str):
        if key[5] != "pretrained":
            continue
        stats = {p: _stats([r["top1"] for r in by[p]]) for p in PROTOCOLS if p in by}
        lr = {p: by[p][0].get("lr") for p in stats}
        table.append(
            f"| {key[0]} | {key[2]} | {key[3]} | {key[4]} | "
            + " | ".join(
                _mean_sd_text(stats[p]) + f" @ {lr[p]:g}" if p in stats else "-" for p in PROTOCOLS
            )
            + " |"
        )
        if "full" in stats and "staged" in stats:
            verdict = compare(stats["staged"], stats["full"])
            verdicts.append(
                f"- **{key[0]}**: head first beats all layers from the start: {verdict}"
            )
    if not table:
        return [*lines, "No records yet: `bash scripts/antipatterns.sh`.", ""]
    return [
        *lines,
        "Top-1 % on the held-out split, mean ± standard deviation over seeds, from ImageNet "
        "weights, trained on a stratified subset of the training images:",
        "",
        "| model | train images | epochs | img | full (all layers from the start) | staged "
        "(head first) | linear (head only) |",
        "|---|---:|---:|---:|---|---|---|",
        *table,
        "",
        *verdicts,
        "",
    ]


def _augmentation(rows: list[dict]) -> list[str]:
    lines = ["## 2. No augmentation, the right one, and a wrong one", ""]
    table, verdicts = [], []
    for key, by in sorted(_groups(rows, "augment", AUGMENTS).items(), key=str):
        if len(by) < 2:
            continue
        acc = {a: _stats([r["top1"] for r in by[a]]) for a in AUGMENTS if a in by}
        sixnine = {
            a: _stats([v for r in by[a] if (v := _six_nine(r)) is not None])
            for a in acc
            if any(_six_nine(r) is not None for r in by[a])
        }
        cells = [
            (_mean_sd_text(acc[a]) + (f"; 6↔9: {sixnine[a][0]:.1f}" if a in sixnine else ""))
            if a in acc
            else "-"
            for a in AUGMENTS
        ]
        table.append(f"| {key[0]} | {key[5]} | {key[2]} | {key[3]} | " + " | ".join(cells) + " |")
        if "none" in acc and "digits" in acc:
            verdict = compare(acc["digits"], acc["none"])
            verdicts.append(f"- **{key[0]}**: augmentation beats none on small data: {verdict}")
        if "rot180" in acc and "digits" in acc:
            verdict = compare(acc["digits"], acc["rot180"])
            verdicts.append(f"- **{key[0]}**: turning digits over hurts: {verdict}")
        if "rot180" in sixnine and "digits" in sixnine:
            verdict = compare(sixnine["digits"], sixnine["rot180"], False, "errors")
            verdicts.append(
                f"- **{key[0]}**: turning digits over confuses 6 and 9 (6↔9 errors): {verdict}"
            )
    if not table:
        return [*lines, "No records yet: `bash scripts/antipatterns.sh`.", ""]
    return [
        *lines,
        "Top-1 % on the held-out split, mean ± standard deviation over seeds, and the mean count "
        "of held-out 6s taken for 9s plus 9s taken for 6s:",
        "",
        "| model | init | train images | epochs | none | digits | rot180 |",
        "|---|---|---:|---:|---|---|---|",
        *table,
        "",
        *verdicts,
        "",
    ]


def antipatterns_markdown(rows: list[dict]) -> str:
    lines = [
        "# The chapter's anti-patterns, measured",
        "",
        *wrap(
            "Generated by `python -m bench report` from `results/`; do not edit by hand. Each claim "
            "is a comparison of fine-tune records that differ in one setting, over several seeds. "
            "A difference of means larger than the two standard deviations added together supports "
            "or refutes a claim; a smaller one says neither. Reproduce with "
            "`bash scripts/antipatterns.sh`."
        ),
        "",
        *_transfer(rows),
        *_augmentation(rows),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def antipatterns_section(records: Records, table, out) -> list[Path]:
    path = Path(out) / "antipatterns.md"
    atomic_write_text(path, antipatterns_markdown(finetune_rows(records.latest)))
    return [path]
