"""Which fine-tune record made the checkpoint a throughput record was measured with.

A fine-tune record names its checkpoint by file name and content hash (``checkpoint_file``,
``checkpoint_sha256``); a throughput record run with ``--weights`` names the file it loaded the
same way (``init_file``, ``init_sha256``). A checkpoint *traces* when a fine-tune record in the
store has its sha256 and, where the throughput run scored it (``--val-data``: the accuracy
gate's eager fp32 top-1), both top-1 figures agree within ``TOP1_TOLERANCE`` points. The file
name alone proves nothing: it hashes the configuration, so a checkpoint trained again (another
machine, another commit) keeps its name and changes its weights.

Pure Python over the ``Records`` columns; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

TOP1_TOLERANCE = 0.1  # points: two scorings of one checkpoint on the same images agree
NO_RECORD = "no fine-tune record in results/"


@dataclass(frozen=True)
class Trace:
    """A throughput record's checkpoint and the fine-tune record that made it."""

    sha256: str | None  # the checkpoint's (None: the record loaded no file)
    file: str | None
    run_id: str | None = None  # the fine-tune record's run (None: none has this sha256)
    finetune_top1: float | None = None
    top1: float | None = None  # the throughput run's eager fp32 top-1 of the checkpoint
    note: str | None = None  # why it does not trace, or why the two top-1s differ; None: traces

    @property
    def short(self) -> str:
        return self.sha256[:12] if self.sha256 else "-"

    @property
    def traces(self) -> bool:
        return self.note is None


def _get(row, key):
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def finetune_index(frame) -> dict[str, dict]:
    """sha256 -> the latest ok fine-tune record (as a dict) whose checkpoint has it."""
    if frame.empty:
        return {}
    ok = frame[(frame["harness"] == "finetune") & (frame["status"] == "ok")]
    index: dict[str, dict] = {}
    for rec in ok.sort_values(["finished_utc", "run_id"], kind="stable").to_dict("records"):
        sha = (rec.get("metrics") or {}).get("checkpoint_sha256")
        if sha:
            index[sha] = rec
    return index


def _same_name(frame, file: str | None) -> list[dict]:
    """Fine-tune records written before records named a checkpoint's sha256 (``checkpoint``,
    a path) whose file has this name."""
    if not file or frame.empty:
        return []
    ok = frame[(frame["harness"] == "finetune") & (frame["status"] == "ok")]
    out = []
    for rec in ok.sort_values(["finished_utc", "run_id"], kind="stable").to_dict("records"):
        m = rec.get("metrics") or {}
        path = str(m.get("checkpoint") or "")
        if not m.get("checkpoint_sha256") and path.replace("\\", "/").rsplit("/", 1)[-1] == file:
            out.append(rec)
    return out


def gate_top1(metrics: dict) -> float | None:
    """A throughput record's eager fp32 top-1 of its weights (the accuracy gate's), if scored."""
    gate = metrics.get("accuracy_gate") or {}
    value = gate.get("fp32_top1", metrics.get("fp32_top1"))
    return float(value) if isinstance(value, (int, float)) else None


def _why_differ(ft: dict, rec, metrics: dict) -> str:
    """What differs between the two scorings of one checkpoint, in words."""
    fm, fc = ft.get("metrics") or {}, ft.get("config") or {}
    gate = metrics.get("accuracy_gate") or metrics
    reasons = []
    data = str(gate.get("accuracy_data") or "")
    if fc.get("dataset") and not data.startswith(str(fc["dataset"])):
        reasons.append(f"other images ({data or 'unnamed'}, not {fc['dataset']}'s held-out split)")
    elif fm.get("test_samples") and gate.get("accuracy_images") != fm["test_samples"]:
        reasons.append(f"{gate.get('accuracy_images')} of the {fm['test_samples']} held-out images")
    size = (_get(rec, "config") or {}).get("img_size")
    if fc.get("img_size") and size and int(size) != int(fc["img_size"]):
        reasons.append(f"{size} px, not the {fc['img_size']} px it was trained at")
    if reasons:
        return "scored on " + " and ".join(reasons)
    return "same images and input size: the two evaluations disagree"


def trace(frame, rec, index: dict[str, dict] | None = None) -> Trace:
    """The Trace of one throughput record (a ``Records`` row or its dict)."""
    metrics = _get(rec, "metrics") or {}
    sha, file = metrics.get("init_sha256"), metrics.get("init_file")
    top1 = gate_top1(metrics)
    if metrics.get("init_source") != "file":
        return Trace(sha, file, top1=top1, note="not a fine-tune checkpoint (no --weights file)")
    index = finetune_index(frame) if index is None else index
    ft = index.get(sha) if sha else None
    if ft is None:
        return Trace(sha, file, top1=top1, note=_untraced_note(frame, file))
    ft_top1 = (ft.get("metrics") or {}).get("top1")
    out = Trace(sha, file, str(ft.get("run_id")), ft_top1, top1)
    if top1 is None or ft_top1 is None or abs(float(ft_top1) - top1) <= TOP1_TOLERANCE:
        return out
    why = _why_differ(ft, rec, metrics)
    note = f"fine-tune run {out.run_id} scored this checkpoint {ft_top1:.1f}, this run {top1:.1f}: {why}"
    return Trace(sha, file, out.run_id, ft_top1, top1, note)


def _untraced_note(frame, file: str | None) -> str:
    """Why a checkpoint does not trace: no record has its sha256 (and which older records
    name a file of its name, without a sha256)."""
    note = f"{NO_RECORD} has its sha256"
    named = _same_name(frame, file)
    if not named:
        return note
    runs = ", ".join(
        f"{r.get('run_id')} (top-1 {float((r.get('metrics') or {}).get('top1')):.1f})"
        for r in named
    )
    return f"{note}; fine-tune run {runs} wrote a file of this name, but stored no sha256"


def untraced(frame) -> list[tuple[dict, Trace]]:
    """Every ok throughput record that names a fine-tune checkpoint (``--weights`` file) and
    does not trace, with its Trace (see the module's text)."""
    if frame.empty:
        return []
    index = finetune_index(frame)
    ok = frame[(frame["harness"] == "throughput") & (frame["status"] == "ok")]
    out = []
    for rec in ok.sort_values(["finished_utc", "run_id"], kind="stable").to_dict("records"):
        if (rec.get("metrics") or {}).get("init_source") != "file":
            continue
        t = trace(frame, rec, index)
        if not t.traces:
            out.append((rec, t))
    return out
