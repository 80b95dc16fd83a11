"""A throughput figure's workload is its key: every speed table names its input size, the best
figures are per workload (the chapter's question apart from INT8 / bf16 on checkpoints at
64 px), runtimes name their precision, and plots keep input sizes and untrusted timings apart."""

from __future__ import annotations

import re

import pytest
from conftest import LONG_MACHINE

from bench.report.generate import generate
from bench.storage import ResultStore

SIZE = re.compile(r"\b\d+ ?px\b")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "int8")


def tables(markdown: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every markdown table as (its title: the headings above it, joined by ' / ', its header
    cells, its rows' cells)."""
    out, headings, lines = [], {}, markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            headings = {k: v for k, v in headings.items() if k < level}
            headings[level] = line.lstrip("#").strip()
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            title = " / ".join(headings[k] for k in sorted(headings))
            out.append((title, block[0], block[2:]))
            continue
        i += 1
    return out


def _size_column(header: list[str]) -> bool:
    return any(re.search(r"\bpx\b|input size", h, re.IGNORECASE) for h in header)


def unsized_speed_tables(markdown: str) -> list[str]:
    """The titles and headers of tables with a samples/s column that neither have an input-size
    column nor name one size in their title."""
    return [
        f"{title}: {header}"
        for title, header, _ in tables(markdown)
        if any("samples/s" in h.lower() for h in header)
        and not _size_column(header)
        and not SIZE.search(title)
    ]


# The tables other engineers own, fixed on their branches (issue 25): when one passes, its
# strict xfail fails, and the mark goes.
OWNED_ELSEWHERE: dict[str, str] = {}
REPORTS = ("antipatterns.md", "chapter.md", "finetune.md", "machines.md", "models.md",
           "throughput.md", "trends.md")  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=OWNED_ELSEWHERE[n]))
        if n in OWNED_ELSEWHERE
        else n
        for n in REPORTS
    ],
)
def test_every_samples_per_sec_table_names_its_input_size(committed_reports, name):
    assert sorted(p.name for p in committed_reports.glob("*.md")) == sorted(REPORTS)
    found = unsized_speed_tables((committed_reports / name).read_text(encoding="utf-8"))
    assert not found, found


def _record(model, sps, *, px=224, precision="fp32", runtime=None, optimize=False, **metrics):
    config = {"img_size": px, "batch_size": 16, "mode": "infer", "precision": precision,
              "layout": "nchw", "compiled": False, "optimize": optimize}  # fmt: skip
    if runtime:
        config["runtime"] = runtime
    return {
        "model": model, "source": "timm", "harness": "throughput", "status": "ok",
        "device": "cpu", "device_name": "Test CPU", "config": config,
        "metrics": {
            "infer_samples_per_sec": sps, "infer_batch_size": 16, "infer_img_size": px,
            "median": 16e3 / sps, "cv_pct": 1.5, "total_time_s": 2.0, "warmup_stable": True,
            "peak_mem_mb": 900.0, "threads": 2, "batch_size_reduced": False, **metrics,
        },
        "finished_utc": "2026-01-01T00:00:00.000000Z",
    }  # fmt: skip


CHECKPOINT = {
    "init_source": "file",
    "init_file": "resnet50-37c1cb0dd6d8.pt",
    "init_sha256": "a0" * 32,
    "model_in_chans": 1,
    "accuracy_data": "mnist5k held-out split (stratified 4000/1000, split seed 0)",
}


TEST_MACHINE = {"id": "test-machine", "cpu": "Test Chip", "cores": 2, "cpu_flags": ["avx2"]}
TEST_LABEL = "Test Chip · AVX2 · 2 vCPU"  # how the reader names a CPU row of that machine


def _generate(tmp_path, records, machine=None) -> str:
    store = ResultStore(tmp_path / "results")
    doc = store.new_run({"run_id": "wl000001", "started_utc": "2026-01-01T00:00:00.000000Z",
                         "machine": {**TEST_MACHINE, **(machine or {})}})  # fmt: skip
    doc.add(records)
    generate(store.root, tmp_path / "out")
    return (tmp_path / "out" / "throughput.md").read_text(encoding="utf-8")


def _best_tables(md: str) -> list[tuple[str, list[str], list[list[str]]]]:
    return [t for t in tables(md) if "Best inference samples/s" in t[0]]


def _row_text(row: list[str]) -> str:
    return " ".join(row)


def test_the_best_table_keeps_int8_at_64_px_apart_from_fp32_at_224_px(tmp_path):
    md = _generate(
        tmp_path,
        [
            _record("resnet50", 17.8),
            _record(
                "resnet50",
                926.3,
                px=64,
                precision="int8",
                runtime="openvino",
                optimize=True,
                **CHECKPOINT,
            ),
        ],
    )
    best = _best_tables(md)
    question = [t for t in best if any("17.8" in _row_text(r) for r in t[2])]
    int8 = [t for t in best if any("926.3" in _row_text(r) for r in t[2])]
    assert question, "the 224 px fp32 figure is the chapter's question's best"
    assert int8, "the 64 px INT8 figure is a best figure of its own workload"
    assert "64 px" in int8[0][0], int8[0][0]
    assert "INT8" in int8[0][0], int8[0][0]
    for title, _, rows in best:
        text = " ".join(_row_text(r) for r in rows)
        assert not ("17.8" in text and "926.3" in text), title
    assert not unsized_speed_tables(md), unsized_speed_tables(md)


def test_the_committed_best_tables_are_each_one_workload(committed_reports):
    """The chapter's question holds exact precisions only; every other best table names its
    one input size and holds rows at that size only."""
    md = (committed_reports / "throughput.md").read_text(encoding="utf-8")
    best = _best_tables(md)
    assert best
    for title, header, rows in best:
        cells = [dict(zip(header, r, strict=True)) for r in rows]
        if "question" in title:
            lossy = [
                c for c in cells if re.search(r"\b(bf16|fp16|int8)\b", _row_text(list(c.values())))
            ]
            assert not lossy, (title, lossy)
        else:
            size = SIZE.search(title)
            assert size, title
            px = size.group(0).split()[0].replace("px", "")
            assert {c.get("px") for c in cells} == {px}, (title, cells)


def test_one_workload_of_fp32_at_224_px_gives_one_best_table_and_no_other(tmp_path):
    md = _generate(tmp_path, [_record("resnet50", 17.8), _record("vgg16", 5.1)])
    best = _best_tables(md)
    question = f"Throughput / Best inference samples/s: the chapter's question / {TEST_LABEL}"
    assert [t[0] for t in best] == [question]
    assert not unsized_speed_tables(md)
    assert "other workloads" not in md


def test_runtimes_side_by_side_name_a_lossy_precision(tmp_path):
    md = _generate(
        tmp_path,
        [
            _record("resnet50", 17.8),
            _record("resnet50", 30.2, runtime="openvino"),
            _record(
                "resnet50", 900.0, px=64, precision="int8", runtime="onnxruntime", **CHECKPOINT
            ),
            _record("resnet50", 926.3, px=64, precision="int8", runtime="openvino", **CHECKPOINT),
        ],
    )
    sbs = md.split("## Runtimes side by side")[1].split("\n## ")[0]
    rows = [r for _, _, rs in tables(sbs) for r in rs]
    lossy = [r for r in rows if any("926.3" in c or "900.0" in c for c in r)]
    assert len(lossy) == 1, rows
    assert "int8 (lossy)" in lossy[0], lossy
    exact = [r for r in rows if any("30.2" in c for c in r)]
    assert len(exact) == 1, rows
    assert "fp32" in exact[0], exact


def test_a_record_row_and_its_tidy_row_have_one_workload_key():
    from bench.report.workload import workload_key

    rec = _record("resnet50", 926.3, px=64, precision="int8", runtime="openvino", **CHECKPOINT)
    tidy = {"model": "resnet50", **rec["config"], **rec["metrics"], "compile_mode": float("nan")}
    key = workload_key(rec)
    assert workload_key(tidy) == key
    assert (key.img_size, key.batch, key.precision, key.runtime) == (64, 16, "int8", "openvino")
    assert (key.weights, key.weights_sha256, key.data, key.channels) == (
        "resnet50-37c1cb0dd6d8.pt", "a0" * 32, "mnist5k", 1)  # fmt: skip
    assert (key.mode, key.scenario, key.levers) == ("infer", "sync", ())
    plain = workload_key(_record("resnet50", 17.8))
    assert (plain.weights_source, plain.weights, plain.channels) == ("random init", None, None)
    assert key.without("precision", "runtime") != plain.without("precision", "runtime")  # size


def test_plots_keep_input_sizes_apart_and_draw_no_untrusted_timing():
    from bench.report.speedplot import plot_points

    rows = [
        _record("resnet50", 17.8, infer_gmacs=4.1),
        _record("vgg16", 80.0, infer_gmacs=15.5, total_time_s=0.3),  # too short to trust
        _record("resnet50", 926.3, px=64, precision="int8", infer_gmacs=0.33, **CHECKPOINT),
    ]
    panels = plot_points(rows)
    assert list(panels) == [64, 224]
    assert [(p.model, p.series[1]) for p in panels[224]] == [("resnet50", "fp32")]
    assert [(p.model, p.series[1]) for p in panels[64]] == [("resnet50", "int8")]


def test_the_plots_are_drawn_with_a_lossy_series_named(tmp_path):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from bench.report.speedplot import gmacs_figure, plot_points

    rows = [_record("resnet50", 17.8, infer_gmacs=4.1),
            _record("resnet50", 60.0, precision="bf16", infer_gmacs=4.1)]  # fmt: skip
    fig = gmacs_figure(plt, plot_points(rows))
    try:
        (ax,) = [a for a in fig.axes if a.get_visible()]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["Test CPU, bf16 (lossy)", "Test CPU, fp32"]
        assert ax.get_title() == "224 px input"
    finally:
        plt.close(fig)


def test_each_name_on_the_plot_takes_its_series_colour_and_covers_no_other():
    """Where two machines' points of one model sit close, each name is read against its own
    point by colour, and the names do not overlap."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from bench.report.speedplot import _name_box, gmacs_figure, plot_points

    rows = [
        _record("resnet50", 17.8, infer_gmacs=4.1),
        {**_record("resnet50", 18.4, infer_gmacs=4.1), "device_name": "Other CPU"},
    ]
    fig = gmacs_figure(plt, plot_points(rows))
    try:
        (ax,) = [a for a in fig.axes if a.get_visible()]
        renderer = fig.canvas.get_renderer()
        markers = {to_hex(c.get_edgecolor()[0]) for c in ax.collections}
        names = [t for t in ax.texts if t.get_text() == "ResNet-50"]
        assert len(names) == 2
        assert {to_hex(t.get_color()) for t in names} == markers  # one colour a series
        a, b = (_name_box(t, renderer) for t in names)
        assert not a.overlaps(b)
    finally:
        plt.close(fig)


def test_the_pages_speed_tables_name_input_size_and_a_lossy_precision(tmp_path):
    from bench.report.html.page import sections
    from bench.report.html.render import Table
    from bench.report.html.throughput import throughput_blocks
    from bench.report.records import read_records

    cand = {"runtime": "openvino", "precision": "int8", "layout": "nchw", "compiled": False,
            "infer_samples_per_sec": 926.3, "top1_agree": True}  # fmt: skip
    _generate(tmp_path, [_record("resnet50", 17.8),
                         _record("resnet50", 926.3, px=64, precision="int8", runtime="openvino",
                                 optimize=True, candidates=[cand], **CHECKPOINT)])  # fmt: skip
    frame = read_records(tmp_path / "results").latest
    (table,) = [b for b in throughput_blocks(frame) if isinstance(b, Table)]
    px, precision = table.columns.index("px"), table.columns.index("Precision")
    cells = {(r.cells[px].text, r.cells[precision].text) for r in table.rows}
    assert ("64", "int8 (lossy)") in cells, cells
    (page,) = [
        s for s in sections(read_records(tmp_path / "results")) if s.section_id == "throughput"
    ]
    blocks = page.blocks
    (cands,) = [b for b in blocks if isinstance(b, Table) and b.table_id.startswith("candidates-")]
    px, candidate = cands.columns.index("px"), cands.columns.index("Candidate")
    cells = {(r.cells[px].text, r.cells[candidate].text) for r in cands.rows}
    assert ("64", "int8 (lossy) nchw OpenVINO") in cells, cells


LONG = "Intel Xeon Platinum 8480+ · AVX-512 BF16 VNNI AMX · 224 vCPU"


def test_throughput_md_fits_160_characters_whatever_the_machines_label(tmp_path):
    from bench.report.fmt import MAX_LINE

    def long(rec):
        return {**rec, "device_name": LONG}

    cand = {"runtime": "openvino", "precision": "int8", "layout": "nchw", "compiled": False,
            "infer_samples_per_sec": 926.3, "top1_agree": True, "error": "x" * 120}  # fmt: skip
    failed = {**_record("vgg16", 1.0), "status": "error", "error": "WorkerError: " + "y" * 150}
    skipped = {**_record("vgg16", 1.0, runtime="openvino"), "status": "skipped",
               "error": "skipped: " + "z" * 150}  # fmt: skip
    md = _generate(tmp_path, [long(r) for r in [
        _record("resnet50", 17.8), _record("resnet50", 30.2, runtime="openvino"),
        _record("resnet50", 926.3, px=64, precision="int8", runtime="openvino", optimize=True,
                candidates=[cand], **CHECKPOINT),
        failed, skipped]], machine=LONG_MACHINE)  # fmt: skip
    assert f"### {LONG}" in md
    wide = [line for line in md.splitlines() if len(line) > MAX_LINE]
    assert not wide, wide


def test_a_machine_without_an_exact_native_figure_is_named_under_the_question(tmp_path):
    gpu = {**_record("resnet50", 23430.7, precision="bf16"), "device": "cuda",
           "device_name": "NVIDIA H200"}  # fmt: skip
    md = _generate(tmp_path, [_record("resnet50", 17.8), gpu])
    question = md.split("## Best inference samples/s: the chapter's question")[1].split("\n## ")[0]
    assert "23,430.7" not in question
    assert "native input size on NVIDIA H200" in " ".join(question.split())
    other = md.split("## Best inference samples/s: other workloads")[1]
    assert "### NVIDIA H200: bf16 on random init at 224 px" in other
