"""What a throughput measurement measured, as one key: its workload.

``workload_key(row)`` reads one throughput row, either a record row of ``records.history`` or
``records.latest`` (``config`` and ``metrics`` dicts) or a row of the tidy table (flat columns,
NaN where empty), and returns a ``Workload``: the model, its weights (where they came from, the
file and its sha256), the data they were trained and checked on, the input's channels, mode,
scenario, input size, batch, precision, layout, runtime and levers. Two rows with the same key
are measurements of the same thing (on their machines: the machine is not part of the workload);
a report sets two rows side by side as comparable only where their keys differ in the one thing
the comparison is about.

``answers_question(workload)`` says whether a row answers the chapter's question: the model at
its card's native input size and channels, ImageNet weights or random initialisation (a
checkpoint trained on other data is another workload), at an exact precision (``EXACT``).
bf16, fp16 and INT8 are lossy: an accuracy gate bounds their loss on its data, it does not make
them exact. Pure Python; no torch, no pandas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.report.fmt import is_missing

# Precisions whose outputs match fp32's to rounding: tf32 is what fp32 matrix products use on
# a GPU that allows it (the record's ``tf32`` metric says whether it did).
EXACT = ("fp32", "tf32")
LOSSY = ("bf16", "fp16", "int8")
LOSSY_MARK = "(lossy)"
# a speed-only INT8 row's ``accuracy`` (``--precision int8``: calibrated on synthetic images)
NOT_MEASURED = "accuracy not measured"
# The scenario of a record that names none: batches one after another, each waited for
# (records before --scenario, and sync records, which leave it out of their configuration).
SCENARIO = "sync"
RANDOM_INIT = "random init"
CHECKPOINT = "file"  # init_source of weights read from a --weights file
INFERENCE_FORM = "inference"  # a reparameterised model's form (bench.harness.reparam)


def levers_text(d: dict) -> list[str]:
    """What sets a candidate or a configuration apart beyond precision, layout, compiled and
    runtime, in words: its torch.compile mode, 'BN folded', 'reparameterised' (a candidate's
    ``form``, or a record's or tidy row's ``model_form``), and 'LoadGen' with the first word of
    its verdict where LoadGen issued the queries ('LoadGen shortened', 'LoadGen VALID'; a
    configuration alone, without the verdict, reads 'LoadGen'). Empty cells of a tidy row count
    as absent."""
    mode = d.get("compile_mode")
    out = [mode] if isinstance(mode, str) else []
    if d.get("fold_bn") is True:
        out.append("BN folded")
    if INFERENCE_FORM in (d.get("form"), d.get("model_form")):
        out.append("reparameterised")
    if d.get("loadgen") is True:
        verdict = d.get("loadgen_verdict")
        out.append(f"LoadGen {str(verdict).split()[0].rstrip(':')}" if verdict else "LoadGen")
    return out


@dataclass(frozen=True)
class Workload:
    """A throughput measurement's identity, less its machine."""

    model: str
    weights_source: str  # 'random init', 'timm', 'torchvision', a package, or 'file'
    weights: str | None  # the weights file's name (None: none was read)
    weights_sha256: str | None
    data: str | None  # what the weights were trained and checked on ('mnist5k'); None: none
    channels: int | None  # the input's channels where the record names them (a checkpoint's)
    mode: str  # 'infer' or 'train'
    scenario: str
    img_size: int | None  # the input's height and width, px
    batch: int | None  # the batch measured (after any reduction)
    precision: str
    layout: str
    runtime: str
    levers: tuple[str, ...]  # 'compiled', a compile mode, 'BN folded', 'reparameterised'

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def exact(self) -> bool:
        return self.precision in EXACT

    @property
    def checkpoint(self) -> bool:
        """Weights read from a checkpoint file (trained on ``data``, not ImageNet)."""
        return self.weights_source == CHECKPOINT

    def weights_kind(self) -> str:
        """The kind of weights in words: 'random init', 'timm weights', 'checkpoints' (a
        table's title names it once; the file and its sha256 are the row's)."""
        if self.weights_source == RANDOM_INIT:
            return RANDOM_INIT
        return "checkpoints" if self.checkpoint else f"{self.weights_source} weights"

    def without(self, *fields: str) -> tuple:
        """The key less ``fields``: what a comparison across those fields holds equal."""
        return tuple(v for k, v in self.as_dict().items() if k not in fields)


def _flat(row: dict) -> dict:
    """A record row's configuration over its metrics; a tidy row as it is. Empty cells
    (None, NaN) are left out."""
    config, metrics = row.get("config"), row.get("metrics")
    if isinstance(config, dict) or isinstance(metrics, dict):
        merged = {**(metrics or {}), **(config or {}), "model": row.get("model")}
    else:
        merged = dict(row)
    return {k: v for k, v in merged.items() if not is_missing(v)}


def _int(v) -> int | None:
    return None if v is None else int(v)


def _data(flat: dict) -> str | None:
    """The data the weights were checked on, by name: the gate's 'mnist5k held-out split
    (...)' reads 'mnist5k'."""
    text = flat.get("accuracy_data") or flat.get("calibration_data")
    return str(text).split()[0] if text else None


def workload_key(row: dict) -> Workload:
    """The workload of a throughput record row or tidy row (see the module's docstring)."""
    r = _flat(row)
    mode = str(r.get("mode") or "infer")
    levers = (["compiled"] if r.get("compiled") is True else []) + levers_text(r)
    source = r.get("init_source")
    return Workload(
        model=str(r.get("model")),
        weights_source=str(source) if source else RANDOM_INIT,
        weights=r.get("init_file"),
        weights_sha256=r.get("init_sha256"),
        data=_data(r),
        channels=_int(r.get("model_in_chans")),
        mode=mode,
        scenario=str(r.get("scenario") or SCENARIO),
        img_size=_int(r.get("img_size", r.get(f"{mode}_img_size"))),
        batch=_int(r.get(f"{mode}_batch_size", r.get("batch_size"))),
        precision=str(r.get("precision") or "fp32"),
        layout=str(r.get("layout") or "nchw"),
        runtime=str(r.get("runtime") or "torch"),
        levers=tuple(levers),
    )


def build_words(runtime, compiled) -> list[str]:
    """How a PyTorch model ran: ['eager'] or ['compiled']; nothing for another runtime, which
    runs its own graph."""
    if (runtime or "torch") != "torch":
        return []
    return ["compiled" if compiled else "eager"]


def precision_text(precision, accuracy=None) -> str:
    """A precision, marked when lossy: 'int8 (lossy)', and 'int8 (accuracy not measured)' for
    a speed-only row (its ``accuracy``), lossy and never scored."""
    p = "-" if is_missing(precision) else str(precision)
    if accuracy == NOT_MEASURED:
        return f"{p} ({NOT_MEASURED})"
    return f"{p} {LOSSY_MARK}" if p in LOSSY else p


def native_shape(model: str) -> tuple[int, int] | None:
    """(channels, px) of a model's card, None for a model without one."""
    from bench.registry.cards import load_cards

    card = load_cards().get(model)
    return None if card is None else (card.input_size[0], card.input_size[1])


def answers_question(w: Workload) -> bool:
    """Whether a workload answers the chapter's question: inference at the card's native size
    and channels, ImageNet weights or random init, an exact precision."""
    native = native_shape(w.model)
    return (
        native is not None
        and w.mode == "infer"
        and w.img_size == native[1]
        and w.channels in (None, native[0])
        and not w.checkpoint
        and w.exact
    )
