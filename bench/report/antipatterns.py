"""``reports/antipatterns.md``: the chapter's two anti-patterns, measured over seeds.

1. "Fine-tuning every layer at one learning rate from the start destroys what pre-training
   learnt; train the head first, then everything at a lower rate." Pretrained fine-tune
   records on small data (``--train-limit``) compared by protocol: ``full`` (every layer at
   ``--lr`` from the start), ``staged`` (head first, then everything with the backbone at a
   lower rate) and ``linear`` (the head alone).
2. "No augmentation overfits small data, but a wrong one hurts: turning digits by 180 degrees
   confuses 6 and 9." Records on small data compared by augmentation: ``none``, ``digits``,
   ``rot180``, with the 6/9 confusions counted from each record's confusion matrix.

A verdict follows from the numbers: the difference of the two conditions' means over seeds,
with its 95% confidence interval and the p-value of Welch's t-test (unequal variances,
Welch-Satterthwaite degrees of freedom; any number of seeds from 2). An interval wholly on the
claim's side supports it, wholly on the other side refutes it, and one that holds 0 says
neither. ``scripts/antipatterns.sh`` reproduces the records. Pure pandas and scipy; no torch.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from bench.report.finetune import finetune_rows
from bench.report.fmt import wrap
from bench.report.records import Records
from bench.storage import atomic_write_text

PROTOCOLS = ("full", "staged", "linear")
AUGMENTS = ("none", "digits", "rot180")
MIN_SEEDS = 2
CONFIDENCE = 0.95


def _stats(values: list[float]) -> tuple[float, float, int]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def _mean_sd_text(s: tuple[float, float, int]) -> str:
    return f"{s[0]:.2f} ± {s[1]:.2f} (n={s[2]})"


def _welch(a: tuple, b: tuple) -> tuple[float, float, float]:
    """(standard error, degrees of freedom, t quantile) of mean(a) - mean(b), Welch's way."""
    from scipy.stats import t

    va, vb = a[1] ** 2 / a[2], b[1] ** 2 / b[2]
    se = math.sqrt(va + vb)
    if se == 0:
        return 0.0, float(a[2] + b[2] - 2), 0.0
    df = (va + vb) ** 2 / (va**2 / (a[2] - 1) + vb**2 / (b[2] - 1))
    return se, df, float(t.ppf((1 + CONFIDENCE) / 2, df))


def compare(
    better: tuple, worse: tuple, higher_is_better: bool = True, unit: str = "points"
) -> str:
    """'supported', 'refuted' or 'neither': where the confidence interval of the gap (the
    mean of ``better`` minus that of ``worse``, or the other way when lower is better) lies.
    Each condition is (mean, standard deviation, seeds)."""
    from scipy.stats import t

    if better[2] < MIN_SEEDS or worse[2] < MIN_SEEDS:
        return f"too few seeds (need {MIN_SEEDS} per condition)"
    gap = better[0] - worse[0] if higher_is_better else worse[0] - better[0]
    se, df, q = _welch(better, worse)
    low, high = gap - q * se, gap + q * se
    p = float(2 * t.sf(abs(gap) / se, df)) if se else float(gap == 0)
    evidence = (
        f"{gap:+.2f} {unit}, {CONFIDENCE:.0%} CI [{low:+.2f}, {high:+.2f}]; Welch's t "
        f"p={p:.2g}, seeds {better[2]} and {worse[2]}"
    )
    if low > 0:
        return f"supported ({evidence})"
    if high < 0:
        return f"refuted ({evidence})"
    return f"neither: the interval holds 0 ({evidence})"


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
            "Each verdict gives the difference of means with its 95% confidence interval and "
            "Welch's t-test over the seeds: an interval wholly on the claim's side supports it, "
            "wholly on the other side refutes it, and one that holds 0 says neither. Reproduce with "
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
