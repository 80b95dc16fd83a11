"""Trends over runs: a change is named only beyond the noise of the runs it compares, split by
machine, accuracy in points, deterministic metrics only when they changed. Small stores
written here."""

from __future__ import annotations

from bench.report.generate import generate
from bench.report.records import read_records
from bench.storage import ResultStore

AVX2 = "AMD EPYC · AVX2 · 2 vCPU"
AVX512 = "AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU"
# The machine section each label comes from (the reader recomputes labels from it).
FLAGS = {AVX2: ["avx2", "fma"], AVX512: ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]}


def speed(model: str, sps: float, spread: float = 0.01, batch: int = 16, machine: str = AVX2,
          rounds: list[float] | None = None) -> dict:  # fmt: skip
    """A throughput record whose step times spread by ``spread`` (IQR over median)."""
    median = 1000.0 * batch / sps
    config = {"img_size": 224, "batch_size": batch, "mode": "infer", "precision": "fp32",
              "layout": "nchw", "compiled": False, "optimize": False}  # fmt: skip
    metrics = {"infer_samples_per_sec": sps, "infer_batch_size": batch, "median": median, "iqr": spread * median,
               "p90": median * (1 + spread), "cv_pct": 100 * spread, "total_time_s": 5.0}  # fmt: skip
    if rounds:
        metrics["rounds_samples_per_sec"] = rounds
    return {"model": model, "harness": "throughput", "status": "ok", "device": "cpu",
            "device_name": machine, "config": config, "metrics": metrics}  # fmt: skip


def static(model: str, harness: str, metrics: dict, machine: str = AVX2) -> dict:
    return {"model": model, "harness": harness, "status": "ok", "device": "cpu",
            "device_name": machine, "config": {}, "metrics": metrics}  # fmt: skip


def write_runs(root, runs: list[list[dict]]):
    """One complete run document per list of records, a day apart, oldest first."""
    for n, records in enumerate(runs, 1):
        started = f"2026-01-{n:02d}T00:00:00.000000Z"
        header = {"tool": {"name": "cnn-bench", "version": "0.1.0"}, "run_id": f"run{n:05d}",
                  "started_utc": started, "status": "running",
                  "machine": {"id": "Test-CPU", "cpu": "AMD EPYC", "cores": 2,
                              "cpu_flags": FLAGS[records[0]["device_name"]]},
                  "versions": {"torch": "2.14.1"},
                  "commit": {"id": "0123456789abcdef", "dirty": False}, "config": {}}  # fmt: skip
        doc = ResultStore(root).new_run(header)
        doc.add(records)
        doc.finish("complete", started)
    return root


def trends_md(tmp_path, runs: list[list[dict]]) -> str:
    store = write_runs(tmp_path / "results", runs)
    generate(store, tmp_path / "reports")
    return (tmp_path / "reports" / "trends.md").read_text(encoding="utf-8")


def row_of(text: str, *cells: str) -> str:
    """The one table row holding every one of ``cells``."""
    found = [ln for ln in text.splitlines() if ln.startswith("|") and all(c in ln for c in cells)]
    assert len(found) == 1, (cells, found)
    return found[0]


def test_a_change_inside_the_records_spread_reads_within_noise(tmp_path):
    # +28% between two runs whose step times each spread by 25%: the spread rule's noise is 35%.
    text = trends_md(tmp_path, [[speed("resnet50", 6.4, spread=0.25)],
                                [speed("resnet50", 8.2, spread=0.25)]])  # fmt: skip
    row = row_of(text, "| resnet50 ", "| throughput ")
    assert "within noise" in row
    assert "+28" not in row


def test_a_change_inside_the_machines_run_to_run_noise_reads_within_noise(tmp_path):
    # Tight step times in each run, but every configuration moves ±20% from run to run.
    swings = [7.9, 6.7, 8.6, 6.2, 8.2]
    runs = [[speed(m, v * k, batch=b) for m, k, b in (("resnet50", 1, 1), ("vgg16", 0.3, 1),
                                                      ("alexnet", 5, 16))]
            for v in swings]  # fmt: skip
    text = trends_md(tmp_path, runs)
    for model in ("resnet50", "vgg16", "alexnet"):
        row = row_of(text, f"| {model} ", "| throughput ")
        assert "within run-to-run noise" in row
        assert "%" not in row.split("|")[-2].replace("±", "").split("(")[0]


def test_a_real_change_is_reported(tmp_path):
    # 2x with tight step times: beyond any noise the runs show.
    text = trends_md(tmp_path, [[speed("resnet50", 100.0)], [speed("resnet50", 200.0)]])
    assert "+100.0%" in row_of(text, "| resnet50 ", "| throughput ")


def test_the_test_on_samples_decides_where_records_carry_them(tmp_path):
    tight = [[speed("resnet50", 100.0, rounds=[99.0, 100.0, 101.0, 100.5, 99.5])],
             [speed("resnet50", 200.0, rounds=[199.0, 200.0, 201.0, 200.5, 199.5])]]  # fmt: skip
    assert "+100.0%" in row_of(trends_md(tmp_path / "a", tight), "| resnet50 ")
    # Rounds that overlap: not significant, though the step times are tight (rounds that span
    # more than 25% of their median would be untrusted: these span 20%).
    loose = [[speed("resnet50", 100.0, rounds=[90.0, 100.0, 110.0, 95.0, 105.0])],
             [speed("resnet50", 104.0, rounds=[93.0, 104.0, 114.0, 99.0, 109.0])]]  # fmt: skip
    row = row_of(trends_md(tmp_path / "b", loose), "| resnet50 ")
    assert "within noise (p=" in row


def test_holm_over_a_table_quiets_a_chance_change_but_keeps_a_clear_one(tmp_path):
    # Five rounds a side 2.5% apart, spread ±2%: a t-test on log rounds gives p about 0.04.
    base = [100.0 * (1 + e) for e in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    moved = [1.025 * v for v in base]
    alone = trends_md(tmp_path / "a", [[speed("resnet50", 100.0, rounds=base)],
                                       [speed("resnet50", 102.5, rounds=moved)]])  # fmt: skip
    assert "+2.5%" in row_of(alone, "| resnet50 ")
    assert "one test on samples in this table, so no correction" in alone
    # Three such series and a clear 2x in one table: four tests, Holm-corrected together.
    chance = ("resnet50", "vgg16", "alexnet")
    tight = [99.0, 100.0, 101.0, 100.5, 99.5]
    runs = [
        [speed(m, 100.0, rounds=base) for m in chance] + [speed("lenet5", 100.0, rounds=tight)],
        [speed(m, 102.5, rounds=moved) for m in chance]
        + [speed("lenet5", 200.0, rounds=[2 * v for v in tight])],
    ]
    text = trends_md(tmp_path / "b", runs)
    for model in chance:
        row = row_of(text, f"| {model} ")
        assert "within noise (Holm p=" in row
        assert "+2.5%" not in row
    assert "+100.0%" in row_of(text, "| lenet5 ")
    assert "Holm's correction over the 4 tests on samples in this table" in text


def test_unchanged_deterministic_metrics_are_not_listed(tmp_path):
    same = {"params": 25_557_032}
    text = trends_md(
        tmp_path,
        [
            [static("resnet50", "params", same), static("vgg16", "params", {"params": 100})],
            [static("resnet50", "params", same), static("vgg16", "params", {"params": 120})],
        ],
    )
    assert "resnet50" not in text
    assert "unchanged" not in text
    assert "+20.0%" in row_of(text, "| vgg16 ", "| params ")


def test_a_top1_change_is_in_points(tmp_path):
    runs = [[static("resnet50", "finetune", {"top1": t, "top5": 99.0})] for t in (96.7, 97.1)]
    row = row_of(trends_md(tmp_path, runs), "| resnet50 ", "| finetune ")
    assert "+0.4 pt" in row
    assert "+0.4%" not in row


def test_two_machines_never_share_a_series(tmp_path):
    from bench.report.changes import series

    # One configuration, measured on each VM in turn: two series of two runs, never one of four.
    runs = [[speed("resnet50", v, machine=m)] for v, m in
            ((6.0, AVX2), (12.0, AVX512), (6.1, AVX2), (12.2, AVX512))]  # fmt: skip
    store = write_runs(tmp_path / "results", runs)
    all_series = series(read_records(store))
    assert sorted(s.device_name for s in all_series) == [AVX512, AVX2]
    for s in all_series:
        assert {p.run.run_id for p in s.points} in (
            {"run00001", "run00003"},
            {"run00002", "run00004"},
        )
    generate(store, tmp_path / "reports")
    text = (tmp_path / "reports" / "trends.md").read_text(encoding="utf-8")
    assert f"## {AVX2}" in text
    assert f"## {AVX512}" in text
    assert "+100" not in text
    assert "-50" not in text


def test_runtimes_are_named_as_elsewhere(tmp_path):
    ort = speed("resnet50", 100.0)
    ort["config"] = {**ort["config"], "runtime": "onnxruntime"}
    text = trends_md(tmp_path, [[speed("resnet50", 50.0), ort], [speed("resnet50", 100.0), ort]])
    assert "ONNX Runtime" in text
    assert "PyTorch" in text
    assert "onnxruntime" not in text


def test_the_plots_are_readable_and_split_by_machine(tmp_path):
    from bench.report.changes import series
    from bench.report.trends import PLOTTED, trend_figure

    assert "top1" not in PLOTTED
    runs = [[speed("resnet50", 100.0)], [speed("vgg16", 10.0)], [speed("resnet50", 150.0)],
            [speed("resnet50", 160.0, machine=AVX512)], [speed("resnet50", 300.0, machine=AVX512)],
            [speed("resnet50", 200.0), speed("vgg16", 20.0)]]  # fmt: skip
    all_series = series(read_records(write_runs(tmp_path / "results", runs)))
    fig = trend_figure(all_series, "infer_samples_per_sec")
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert len(titles) == 2
        assert any(AVX2 in t for t in titles)
        assert any(AVX512 in t for t in titles)
        for ax in fig.axes:
            assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())
            legend = ax.get_legend()
            assert all(t.get_fontsize() >= 9 for t in legend.get_texts())
            assert legend.get_bbox_to_anchor().x0 >= ax.get_window_extent().x1 - 1  # outside
        # The AVX2 VM's runs are 1, 2, 3 and 6 (runs 4 and 5 are the other VM's): resnet50 is
        # at its runs #1, #3 and #4, vgg16 at #2 and #4; a gap holds no line (NaN).
        (ax,) = [ax for ax in fig.axes if AVX2 in ax.get_title()]
        lines = {
            ln.get_label().split()[0]: ln for ln in ax.get_lines() if "noise" not in ln.get_label()
        }
        assert list(lines["resnet50"].get_xdata()) == [1, 2, 3, 4]
        assert [round(y, 1) if y == y else None for y in lines["resnet50"].get_ydata()] == [
            0.0,
            None,
            50.0,
            100.0,
        ]
        assert [y == y for y in lines["vgg16"].get_ydata()] == [True, False, True]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_page_gives_the_same_verdicts(tmp_path):
    from bench.report.html.page import sections
    from bench.report.html.render import Section, Table

    runs = [
        [speed("resnet50", 6.4, spread=0.25), static("resnet50", "finetune", {"top1": 96.7}),
         static("resnet50", "params", {"params": 7})],
        [speed("resnet50", 8.2, spread=0.25), static("resnet50", "finetune", {"top1": 97.1}),
         static("resnet50", "params", {"params": 7})],
    ]  # fmt: skip
    store = write_runs(tmp_path / "r", runs)
    (page,) = [s for s in sections(read_records(store)) if s.section_id == "trends"]
    blocks = page.blocks
    headings = [b.title for b in blocks if isinstance(b, Section)]
    assert headings[0] == AVX2  # one section per machine, named by its label
    table = next(b for b in blocks if isinstance(b, Table))
    cells = {(r.cells[1].text, r.cells[4].text): r.cells for r in table.rows}
    assert "params" not in {harness for harness, _ in cells}
    assert cells["throughput", "infer samples/s"][8].text.startswith("within noise")
    assert cells["finetune", "top-1 %"][8].text == "+0.4 pt"
    # the same table, with the same columns, as trends.md's
    generate(store, tmp_path / "out")
    md = (tmp_path / "out" / "trends.md").read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert tuple(c.strip() for c in header.strip("|").split("|")) == table.columns


def test_a_setting_a_record_leaves_out_reads_as_its_default():
    from bench.report.changes import setting

    assert setting("scenario", None) == "scenario sync"  # not 'scenario None'
    assert setting("scenario", "offline") == "scenario offline"
    assert setting("fold_bn", None) == ""  # a lever not pulled
    assert setting("fold_bn", True) == "fold_bn"
    assert setting("runtime", None) == "PyTorch"
    assert setting("batch_size", 16) == "bs 16"


def test_a_value_that_names_itself_reads_alone_and_the_headline_fits_a_line(tmp_path):
    """'bf16', not 'precision bf16'; a value that says nothing alone keeps its key ('bs 16').
    Five resnet50 series told apart by batch, layout, precision, runtime, --optimize and
    scenario stay within 160 characters a line in trends.md."""
    from bench.report.changes import setting
    from bench.report.fmt import MAX_LINE

    assert (setting("precision", "bf16"), setting("layout", "channels_last")) == (
        "bf16", "channels_last")  # fmt: skip
    assert setting("mode", "train") == "train"
    assert setting("img_size", 64) == "img 64"
    variants = [
        {"batch_size": 1, "precision": "bf16", "runtime": "openvino", "scenario": "offline"},
        {"batch_size": 1, "precision": "bf16", "runtime": "openvino"},
        {"precision": "bf16", "layout": "channels_last"},
        {},
        {"precision": "bf16", "runtime": "openvino", "optimize": True},
    ]

    def run(sps: float) -> list[dict]:
        recs = [speed("resnet50", sps + k, machine=AVX512) for k in range(len(variants))]
        for r, change in zip(recs, variants, strict=True):
            r["config"].update(change)
        return recs

    md = trends_md(tmp_path, [run(50.0), run(52.0)])
    assert "| bs 16 nchw optimize bf16 OpenVINO scenario sync " in md
    assert max(len(line) for line in md.splitlines()) <= MAX_LINE
