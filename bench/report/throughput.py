"""The throughput report: ``reports/throughput.md`` and ``reports/throughput_vs_gmacs.png``.

Registered in ``bench.report.sections.SECTIONS``. Reads only the results (no torch); the plot uses
matplotlib's Agg backend and writes no timestamp or version, so the same results give the
same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.harness.throughput.allocator import KEEP  # cheap: no torch
from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.report.best import best_blocks, machine_of, short_config
from bench.report.blocks import Heading, Notes, Para, Tbl, slug
from bench.report.fmt import (
    CHOSEN,
    WARN,
    Footnotes,
    clip,
    fmt_gmacs,
    fmt_int,
    fmt_number,
    fmt_sps,
    is_missing,
    is_number,
)
from bench.report.quantization import quantization_blocks
from bench.report.records import UNTRUSTED_RULE, Records, is_chosen, untrusted
from bench.report.runtimes import RUNTIME_PLOT, runtimes_blocks, runtimes_png, throughput_rows
from bench.report.speedplot import PLOT, plot_png
from bench.report.workload import LOSSY_MARK, build_words, levers_text, precision_text
from bench.storage import atomic_write_bytes

HARNESS = "throughput"
# An 'of peak' against a peak below this share of the device's best peak is marked.
LOW_PEAK = 0.8
PEAK_TEXT = (
    "'Of peak' divides GMAC/s by a large matrix product's GMAC/s at the same precision on the "
    "same device, measured in the same run (the row's run); the letter names the method the "
    "peak was measured with (footnotes). Methods changed between runs: an early one measured "
    f"the peak once, before the first model, and read low on a busy machine. {WARN} low peak: "
    f"the run's peak is under {LOW_PEAK:.0%} of the best peak measured on that device at that "
    "precision, so its 'of peak' reads high; compare GMAC/s instead. Peak mem is in MiB: on a "
    "GPU, torch's peak allocated memory; on a CPU, the increase of the worker's peak resident "
    "memory over what it held before the model was built (+N); records from before that was "
    "measured show the worker's whole peak resident set (framework and data included), marked "
    "'whole'. results.csv keeps both (peak_mem_mb, peak_mem_increase_mb)."
)
ABOVE_PEAK_TEXT = (
    f"{WARN} above peak: the model did more multiply-accumulates per second than the run's "
    "matrix product. That is a sign of a bad peak measurement (a busy machine while it was "
    "measured, or a runtime whose kernels beat the matrix product timed), not a result; rerun "
    "on a quiet machine."
)
CANDIDATE_WIDTH = 45  # the candidates table's names, so that its lines fit 160 bytes (✓ is 3)
OPTIMIZE = "python -m bench run --models chapter --harness throughput --optimize"
CLIPPED = (("Candidate", CANDIDATE_WIDTH),)  # in the markdown; the page shows it whole
CANDIDATES_TEXT = (
    "Each `--optimize` run tries these candidates on one model and keeps the fastest that "
    f"agrees with eager fp32 ({CHOSEN} after its samples/s; a lossy one, marked "
    f"{LOSSY_MARK}, only where its top-1 stays within the run's accuracy budget), at the "
    "run's input size (px) and batch; one table per machine; one run's candidates are listed "
    "together, with its samples/s (the median of its timed rounds; runs before 6 December kept "
    "the best round) and, in brackets, the lowest and highest round where the run recorded "
    "them (the records keep every round). A candidate's name is clipped at "
    f"{CANDIDATE_WIDTH} characters; the page (index.html) lists its levers in full."
)


MALLOC_TEXT = (
    "timed while glibc returned the memory a step frees to the kernel (`--malloc system`, or a "
    "run before that option): each step faulted its tensors in again, more in the first round "
    "than in later ones, so this PyTorch candidate's first round ran slower and its figure "
    "reads low next to a run under `--malloc keep` (docs/throughput.md, Method: Allocator)."
)


def config_text(config: dict) -> str:
    """A throughput configuration in words: 'batch 16, fp32, nchw, eager, PyTorch'."""
    runtime = RUNTIME_LABELS.get(config.get("runtime") or "torch", config.get("runtime"))
    text = (
        f"{config.get('mode', 'infer')} batch {fmt_int(config.get('batch_size'))}, "
        f"{config.get('precision', '-')}, {config.get('layout', '-')}, "
        f"{'compiled' if config.get('compiled') else 'eager'}, {runtime}"
    )
    text += "".join(f", {lever}" for lever in levers_text(config))
    if config.get("scenario") not in (None, "sync"):  # a record without one is sync
        text = f"{config['scenario']}, {text}"
    return text + (" (chosen by --optimize)" if config.get("optimize") else "")


def _peak_label(method) -> str:
    """The peak method without its run-to-run counts, so that one method reads as one."""
    if is_missing(method) or not method:
        return "not recorded (the earliest runs)"
    text = re.sub(r"(best of|timings of) \d+", r"\1 N", str(method))
    return re.sub(r"\(\d+ in all\)", "(N in all)", text)


class PeakNotes:
    """Letters for the peak methods of the rows shown, and each device's best peak, so that
    an 'of peak' against a low peak (an older method, a busy machine) is marked."""

    def __init__(self, rows: list[dict], notes: Footnotes) -> None:
        self.notes = notes
        self.letters: dict[str, str] = {}
        self.best: dict[tuple, float] = {}
        for r in rows:
            key = (r.get("device_name"), r.get("precision"))
            if is_number(r.get("peak_gmacs_per_sec")):
                self.best[key] = max(self.best.get(key, 0.0), r["peak_gmacs_per_sec"])

    def cell(self, r: dict) -> str:
        frac = r.get("frac_of_peak")
        if is_missing(frac):
            return "-"
        label = _peak_label(r.get("peak_method"))
        letter = self.letters.setdefault(label, chr(ord("A") + len(self.letters)))
        marker = self.notes.mark(f"peak{letter}", f"peak method {letter}: {label}")
        text = f"{100 * frac:.1f}%" + (f" {WARN}" if frac > 1 else "") + f" {letter}{marker}"
        best = self.best.get((r.get("device_name"), r.get("precision")))
        if best and r.get("peak_gmacs_per_sec", best) < LOW_PEAK * best:
            text += f" {WARN} low peak"
        return text


def _timing_row(i: int, r: dict) -> dict:
    mode = r.get("mode") or "infer"
    flag = untrusted(r)
    return {
        "#": str(i),
        "Model": r["model"],
        "px": fmt_int(r.get("img_size")),
        "Configuration": short_config(r),
        "Samples/s": fmt_sps(r.get(f"{mode}_samples_per_sec")) + (f" {WARN}" if flag else ""),
        "Median (ms)": fmt_number(r.get("median"), ",.2f"),
        "Timed (s)": fmt_number(r.get("total_time_s"), ",.2f"),
        "J/sample": fmt_number(r.get("energy_j_per_sample"), ".3g"),
    }


ENERGY_TEXT = (
    "J/sample: energy over the timed loop per sample (NVML's GPU board counter, or RAPL's CPU "
    "packages); '-': not readable there (the record's energy_note says why)."
)


def _memory_cell(r: dict) -> str:
    """Peak memory in MiB: on the CPU the increase over the worker's baseline when recorded."""
    if r.get("device") == "cpu":
        if not is_missing(r.get("peak_mem_increase_mb")):
            return "+" + fmt_number(r["peak_mem_increase_mb"], ",.0f")
        if not is_missing(r.get("peak_mem_mb")):
            return fmt_number(r["peak_mem_mb"], ",.0f") + " whole"
    return fmt_number(r.get("peak_mem_mb"), ",.0f")


def _without_empty(rows: list[dict], column: str) -> list[dict]:
    """``rows`` without ``column`` when no row has a value in it (energy measured nowhere)."""
    if all(r[column] == "-" for r in rows):
        return [{k: v for k, v in r.items() if k != column} for r in rows]
    return rows


def _compute_row(i: int, r: dict, peaks: PeakNotes) -> dict:
    return {
        "#": str(i),
        "Model": r["model"],
        "px": fmt_int(r.get("img_size")),
        "GMACs": fmt_gmacs(r.get("infer_gmacs")),
        "GMAC/s": fmt_number(r.get("achieved_gmacs_per_sec"), ",.1f"),
        "Peak GMAC/s": fmt_number(r.get("peak_gmacs_per_sec"), ",.0f"),
        "Of peak (method)": peaks.cell(r),
        "Compile (s)": fmt_number(r.get("compile_time_s"), ",.1f"),
        "Peak mem (MiB)": _memory_cell(r),
        "Threads": fmt_int(r.get("threads")),
    }


def _candidates(frame, notes: Footnotes) -> tuple[list[dict], list[dict], list[str]]:
    """--optimize candidates of the latest throughput records: one run's together, with
    every round's samples/s; the record and the machine of each."""
    rows, recs, machines = [], [], []
    if frame.empty:
        return rows, recs, machines
    ok = frame[(frame["harness"] == HARNESS) & (frame["status"] == "ok")]
    for rec in ok.sort_values(["model", "run_id"], kind="stable").itertuples():
        cands = rec.metrics.get("candidates")
        if not isinstance(cands, list):
            continue
        mode = rec.config.get("mode", "infer")
        for c in cands:
            reason = c.get("error") or ""
            recs.append(rec._asdict())
            machines.append(machine_of(recs[-1]))
            chosen = is_chosen(c, rec.config, rec.metrics)
            rows.append(
                {
                    "Model": rec.model,
                    "px": fmt_int(rec.config.get("img_size")),
                    "Batch": fmt_int(rec.config.get("batch_size")),
                    "Candidate": _candidate_text(c),
                    "Samples/s [rounds' range]": _rounds_cell(
                        c.get(f"{mode}_samples_per_sec"), c.get("rounds_samples_per_sec"), chosen
                    ),
                    "Max abs diff": fmt_number(c.get("max_abs_diff"), ".2g"),
                    "Note": _candidate_note(c, rec.metrics, reason, notes),
                }
            )
    return rows, recs, machines


def _candidate_note(c: dict, metrics: dict, reason: str, notes: Footnotes) -> str:
    """The candidate's note: why it failed, was skipped or is never chosen, and for a PyTorch
    candidate timed while glibc returned freed memory (``--malloc system``, or a run before
    the option), that its steps page-faulted their tensors in (``MALLOC_TEXT``)."""
    marks = [notes.numbered("n", reason)] if reason else []
    if c.get("runtime", "torch") == "torch" and metrics.get("malloc") != KEEP:
        marks.append(notes.mark("m", MALLOC_TEXT))  # a short label: the table is 160 wide
    return " ".join(marks)


def _candidate_text(c: dict) -> str:
    """An --optimize candidate in words: 'bf16 channels_last eager PyTorch BN folded' (eager or
    compiled for PyTorch only: another runtime runs its own graph)."""
    name = c.get("runtime", "torch")
    return " ".join([precision_text(c.get("precision")), str(c.get("layout")),
                     *build_words(name, c.get("compiled")), RUNTIME_LABELS.get(name, name),
                     *levers_text(c)])  # fmt: skip


def _rounds_cell(figure, rounds, chosen: bool) -> str:
    """The candidate's samples/s (marked when chosen), then the range of its timed rounds
    (when recorded): the lowest and the highest, so that the cell stays narrow whatever the
    count of rounds."""
    cell = fmt_sps(figure) + (f" {CHOSEN}" if chosen else "")
    if not isinstance(rounds, list) or len(rounds) < 2:
        return cell
    return f"{cell} [{fmt_sps(min(rounds))}-{fmt_sps(max(rounds))}]"


def _skipped(frame):
    if frame.empty:
        return frame
    rows = frame[(frame["harness"] == HARNESS) & (frame["status"] == "skipped")]
    return _with_config(rows)


def _with_config(rows):
    return rows.assign(
        runtime=[c.get("runtime", "torch") for c in rows["config"]],
        mode=[c.get("mode", "-") for c in rows["config"]],
        batch=[fmt_int(c.get("batch_size")) for c in rows["config"]],
        precision=[c.get("precision", "-") for c in rows["config"]],
        px=[fmt_int(c.get("img_size")) for c in rows["config"]],
    )


def _machine_blocks(prefix: str, rows: list[dict], machines: list[str], recs=None, **kw) -> list:
    """``rows`` as one table per machine, each under a heading naming it (``recs``: the
    record of each row, for a Run column)."""
    out: list = []
    for machine in dict.fromkeys(machines):
        mine = [i for i, m in enumerate(machines) if m == machine]
        table = tuple(rows[i] for i in mine)
        ids = tuple(recs[i] for i in mine) if recs else ()
        out += [Heading(machine, 3), Tbl(f"{prefix}-{slug(machine)}", table, ids, **kw)]
    return out


def _measurements(table, notes: Footnotes) -> list:
    rows = sorted(throughput_rows(table).to_dict("records"), key=machine_of)
    if not rows:
        return [
            Para(
                "No throughput results yet: "
                "`python -m bench run --models chapter --harness throughput`."
            )
        ]
    peaks = PeakNotes(rows, notes)
    numbered = list(enumerate(rows, 1))
    machines = [machine_of(r) for r in rows]
    timing = _without_empty([_timing_row(i, r) for i, r in numbered], "J/sample")
    compute = [_compute_row(i, r, peaks) for i, r in numbered]
    out = [
        *best_blocks(rows),
        Heading("Every measurement: timing"),
        Para(
            f"{WARN} after samples/s: the timing is too short or unsettled to trust "
            f"({UNTRUSTED_RULE}); "
            "such records are left out of the best figures and of the plots. px: the input's "
            "height and width."
        ),
        *_machine_blocks("timing", timing, machines, rows),
        Heading("Every measurement: compute, peak and memory"),
        Para(f"The # column is the row of the timing table, which names its run. {PEAK_TEXT}"),
        *_machine_blocks("compute", compute, machines),
    ]
    if "J/sample" in timing[0]:
        out.append(Para(ENERGY_TEXT))
    if any(f"% {WARN}" in c["Of peak (method)"] for c in compute):
        out.append(Para(ABOVE_PEAK_TEXT))
    return [*out, Notes()]


def _not_measured(frame) -> list:
    """The latest throughput records that failed, and those skipped as not measurable, one
    table per machine."""
    out: list = []
    bad = frame[(frame["harness"] == HARNESS) & ~frame["status"].isin(["ok", "skipped"])]
    if not bad.empty:
        out.append(Heading("Failed throughput measurements", anchor="throughput-failed"))
        cols = ["model", "error"]
        if any(c.get("runtime") for c in bad["config"]):
            bad = _with_config(bad)
            cols = ["model", "runtime", "mode", "batch", "px", "error"]
        out += _machine_frames(bad, cols, "failed")
    skipped = _skipped(frame)
    if not skipped.empty:
        out.append(Heading("Skipped (not measurable here)", anchor="throughput-skipped"))
        cols = ["model", "runtime", "mode", "batch", "px", "precision", "error"]
        out += _machine_frames(
            skipped.rename(columns={"error": "reason"}), cols, "skipped", "reason"
        )
    return out


def _machine_frames(frame, cols: list[str], kind: str, last: str = "error") -> list:
    """``frame``'s ``cols`` (the last named ``last``), one table per machine under a heading
    naming it."""
    cols = [*cols[:-1], last]
    machines = [machine_of(r) for r in frame.to_dict("records")]
    out: list = []
    for machine, group in frame.assign(_machine=machines).groupby("_machine", sort=True):
        out += [Heading(machine, 3), Tbl(f"{kind}-{slug(machine)}", tuple(_clipped(group[cols])))]
    return out


def _clipped(frame) -> list[dict]:
    return [{k: clip(str(v)) for k, v in r.items()} for r in frame.to_dict("records")]


def throughput_blocks(frame, table, notes: Footnotes) -> list:
    """throughput.md's sections as blocks (``bench.report.blocks``), its footnotes marked in
    ``notes``: the best tables, every measurement, runtimes side by side, the --optimize
    candidates and quantization."""
    out = [*_measurements(table, notes), *runtimes_blocks(table)]
    cands, recs, machines = _candidates(frame, notes)
    out.append(Heading("--optimize candidates", anchor="candidates"))
    if cands:
        out += [
            Para(CANDIDATES_TEXT),
            *_machine_blocks("candidates", cands, machines, recs, clipped=CLIPPED),
            Notes(),
        ]
    else:
        out.append(Para(f"No `--optimize` run yet: `{OPTIMIZE}`."))
    return out + quantization_blocks(frame, notes)


INTRO = (
    "Generated by `python -m bench report` from `results/`; do not edit by hand. Samples/s is "
    "samples over the total timed time after a warm-up that runs until the step time is "
    "stable; step times are per batch, in ms. GMACs are fvcore's multiply-accumulates at batch "
    "1; GMAC/s is GMACs x samples/s (x3 for training). PyTorch's figures depend on glibc's "
    "allocator: under `--malloc keep` (the default since 6 December) the memory a step frees "
    "stays in the process; runs before it, and `--malloc system`, faulted their tensors in again "
    "at every step and read lower (results.csv: malloc, page_faults_per_step; "
    "docs/throughput.md, Method: Allocator). "
    f"The plot is [{PLOT}]({PLOT})."
)


def throughput_section_blocks(records: Records, table, notes: Footnotes) -> list:
    """throughput.md's blocks: the measured tables, their notes, then what was not measured."""
    frame = records.latest
    out = [*throughput_blocks(frame, table, notes), Notes()]
    return out if frame.empty else [*out, *_not_measured(frame)]


def throughput_plots(records: Records, table, out_dir) -> list[Path]:
    """Write the section's PNGs when there is something to plot."""
    out = Path(out_dir)
    written = []
    png = plot_png(throughput_rows(table).to_dict("records"))
    if png is not None:
        atomic_write_bytes(out / PLOT, png)
        written.append(out / PLOT)
    png = runtimes_png(table)
    if png is not None:
        atomic_write_bytes(out / RUNTIME_PLOT, png)
        written.append(out / RUNTIME_PLOT)
    return written
