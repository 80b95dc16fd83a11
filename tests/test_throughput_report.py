"""The throughput report section: table, candidates, failures and a byte-stable plot."""

from __future__ import annotations

from bench.report.generate import generate
from bench.report.sections import SECTIONS
from bench.storage import ResultStore


def _record(model, sps, gmacs, status="ok", error=None, **metrics):
    return {
        "model": model, "source": "timm", "harness": "throughput", "status": status,
        "error": error, "device": "cpu", "device_name": "Test CPU",
        "config": {} if status != "ok" else {
            "img_size": 224, "batch_size": 16, "mode": "infer", "precision": "fp32",
            "layout": "nchw", "compiled": False, "optimize": False,
        },
        "metrics": {} if status != "ok" else {
            "infer_samples_per_sec": sps, "infer_step_time": 16e3 / sps, "infer_batch_size": 16,
            "infer_img_size": 224, "median": 16e3 / sps, "p90": 17e3 / sps, "cv_pct": 1.5,
            "peak_mem_mb": 900.0, "infer_gmacs": gmacs, "achieved_gmacs_per_sec": gmacs * sps,
            "peak_gmacs_per_sec": 200.0, "frac_of_peak": gmacs * sps / 200.0, "threads": 2,
            "batch_size_reduced": False, **metrics,
        },
        "finished_utc": "2026-01-01T00:00:00.000000Z",
    }  # fmt: skip


def _store(tmp_path):
    store = ResultStore(tmp_path / "results")
    header = {"run_id": "abcd1234", "started_utc": "2026-01-01T00:00:00.000000Z",
              "machine": {"id": "test-machine", "cpu": "Test CPU"}}  # fmt: skip
    doc = store.new_run(header)
    candidates = [
        {"precision": "fp32", "layout": "nchw", "compiled": False, "infer_samples_per_sec": 10.0,
         "infer_batch_size": 16, "error": None},
        {"precision": "bf16", "layout": "nchw", "compiled": False, "infer_samples_per_sec": None,
         "infer_batch_size": None, "error": "skipped: no native BF16 on this device"},
    ]  # fmt: skip
    doc.add(
        [
            _record("resnet50", 10.0, 4.1, candidates=candidates, optimize_speedup=1.0),
            _record("convnext_tiny", 8.0, 4.5),
            _record("not_a_chapter_model", 100.0, 0.3),
            _record("vgg16", None, None, status="error", error="WorkerError: no result after 5 s"),
        ]
    )
    return store.root


def _generated_twice_alike(results, tmp_path) -> dict[str, bytes]:
    """The reports generated twice from ``results``: byte for byte the same (asserted)."""
    first = {p.name: p.read_bytes() for p in generate(results, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in generate(results, tmp_path / "b")}
    assert first == second
    return first


def test_section_is_registered():
    assert "throughput" in {s.name for s in SECTIONS}


def test_throughput_report_and_plot_are_deterministic(tmp_path):
    results = _store(tmp_path)
    first = _generated_twice_alike(results, tmp_path)
    assert "throughput.md" in first
    assert "throughput_vs_gmacs.png" in first
    assert first["throughput_vs_gmacs.png"].startswith(b"\x89PNG")
    md = first["throughput.md"].decode()
    assert "| resnet50 " in md
    assert "| convnext_tiny " in md
    assert "## --optimize candidates" in md
    assert "skipped: no native BF16" in md
    assert "## Failed throughput measurements" in md
    assert "no result after 5 s" in md
    csv = first["results.csv"].decode().splitlines()
    assert {"infer_samples_per_sec", "infer_batch_size", "frac_of_peak", "precision"} <= set(
        csv[0].split(",")
    )


def test_no_throughput_results_gives_a_hint_and_no_plot(tmp_path):
    store = ResultStore(tmp_path / "results")
    store.new_run({"run_id": "x", "started_utc": "2026-01-01T00:00:00Z", "machine": {"id": "m"}})
    written = [p.name for p in generate(store.root, tmp_path / "out")]
    assert "throughput.md" in written
    assert "throughput_vs_gmacs.png" not in written
    assert "No throughput results yet" in (tmp_path / "out" / "throughput.md").read_text()


def _runtime_store(tmp_path):
    store = ResultStore(tmp_path / "results")
    doc = store.new_run({"run_id": "rt000001", "started_utc": "2026-01-01T00:00:00.000000Z",
                         "machine": {"id": "test-machine", "cpu": "Test CPU"}})  # fmt: skip
    ort = _record("resnet50", 40.0, 4.1, max_abs_diff=1e-5, top1_agree=True, agrees=True)
    ort["config"]["runtime"] = "onnxruntime"
    ov = _record("resnet50", 60.0, 4.1, max_abs_diff=2e-5, top1_agree=True, agrees=True)
    ov["config"]["runtime"] = "openvino"
    skipped = _record("resnet50", None, None, status="skipped",
                      error="skipped: OpenVINO is measured for inference only")  # fmt: skip
    skipped["config"] = {"mode": "train", "batch_size": 16, "runtime": "openvino"}
    failed = _record("vgg16", None, None, status="error",
                     error="RuntimeStepError: export to ONNX failed: boom")  # fmt: skip
    failed["config"] = {"mode": "infer", "batch_size": 16, "runtime": "onnxruntime"}
    above = _record("alexnet", 100.0, 2.5)  # 2.5 x 100 / 200 = 125 % of peak
    doc.add([_record("resnet50", 10.0, 4.1), ort, ov, skipped, failed, above])
    return store.root


def test_runtimes_side_by_side_skipped_rows_and_above_peak_flag(tmp_path):
    results = _runtime_store(tmp_path)
    first = _generated_twice_alike(results, tmp_path)
    assert first["runtimes.png"].startswith(b"\x89PNG")
    md = first["throughput.md"].decode()
    assert "nchw ONNX Runtime" in md  # the configuration names the runtime
    assert "| ONNX Runtime " in md
    assert "## Runtimes side by side" in md
    sbs = md.split("## Runtimes side by side")[1]
    assert "40.0 (4.00x)" in sbs  # ONNX Runtime over PyTorch eager
    assert "60.0 (6.00x)" in sbs
    assert "same top-1" in sbs
    assert "alexnet" not in sbs  # no other runtime measured
    assert "125.0% ⚠" in md
    assert "⚠ above peak" in md
    assert "## Skipped (not measurable here)" in md
    assert "inference only" in md
    failed = md.split("## Failed throughput measurements")[1].split("\n## ")[0]
    assert "export to ONNX failed" in failed
    assert "inference only" not in failed
    # the torch-only report has neither the table nor the plot
    plain = {p.name for p in generate(_store(tmp_path / "plain"), tmp_path / "c")}
    assert "runtimes.png" not in plain


def _cand(precision, sps, runtime="torch", agree=True, error=None, **gate):
    return {"runtime": runtime, "precision": precision, "layout": "nchw", "compiled": False,
            "form": "training", "infer_samples_per_sec": sps, "top1_agree": agree,
            "error": error, **gate}  # fmt: skip


def _md_tables(text: str) -> list[list[dict]]:
    """Each markdown table of ``text``: its rows as {header: cell}."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and (i == 0 or not lines[i - 1].startswith("|")):
            head = [c.strip() for c in line.split("|")[1:-1]]
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("| "):
                    break
                body.append(dict(zip(head, (c.strip() for c in row.split("|")[1:-1]), strict=True)))
            tables.append(body)
    return tables


def test_quantization_section_sets_int8_against_the_fastest_other_candidate(tmp_path):
    """Speed-up over the fastest candidate other than INT8 that passed its checks, bf16
    included and named (not a faster one that disagrees, nor a bf16 over the budget); a drop
    over the budget is marked; a failed INT8 is a note; the chapter's models without a run are
    named."""
    from bench.report.fmt import WARN

    store = ResultStore(tmp_path / "results")
    doc = store.new_run({"run_id": "q1", "started_utc": "2026-01-01T00:00:00.000000Z",
                         "machine": {"id": "m", "cpu": "Test Chip", "cores": 2, "cpu_flags": ["avx2"]}})  # fmt: skip
    gate = {"fp32_top1": 97.0, "accuracy_budget": 0.5}
    fine = [_cand("fp32", 100.0), _cand("fp32", 150.0, "onnxruntime"),
            _cand("fp32", 900.0, "openvino", agree=False), _cand("bf16", 400.0),
            _cand("bf16", 800.0, "openvino", within_budget=False),
            _cand("int8", 450.0, "onnxruntime", agree=False, candidate_top1=96.8,
                  top1_drop=0.2, within_budget=True, accuracy_images=1000, images_lost=3,
                  images_gained=1, top1_drop_low=-0.05, top1_drop_high=0.45, **gate),
            _cand("int8", 300.0, "openvino", agree=False, candidate_top1=97.0,
                  top1_drop=0.0, within_budget=True, **gate)]  # fmt: skip
    lossy = [_cand("fp32", 50.0),
             _cand("int8", 200.0, "onnxruntime", agree=False, candidate_top1=90.0,
                   top1_drop=7.0, within_budget=False, error="over the budget: never chosen",
                   **gate)]  # fmt: skip
    broken = [_cand("fp32", 20.0),
              _cand("int8", None, "onnxruntime", error="quantization failed: Boom")]  # fmt: skip
    rows = []
    for model, cands, chosen in (("resnet50", fine, ("int8", "onnxruntime")),
                                 ("lenet5", lossy, ("fp32", "torch")),
                                 ("simple_cnn", broken, ("fp32", "torch"))):  # fmt: skip
        images = {
            "accuracy_images": 1000,
            "accuracy_data": "digits held-out",
            "calibration_images": 128,
            "calibration_data": "digits training",
        }
        # a record whose chosen candidate is not lossy has the images in its gate only
        top = images if chosen[0] == "int8" else {}
        r = _record(model, 1.0, 1.0, candidates=cands, accuracy_gate=images, **top)  # fmt: skip
        r["config"].update(precision=chosen[0], runtime=chosen[1], optimize=True)
        rows.append(r)
    doc.add(rows)
    written = _generated_twice_alike(store.root, tmp_path)
    md = written["throughput.md"].decode()
    page = written["index.html"].decode()
    speed = page.split('id="int8-speed-')[1].split("</table>")[0]
    assert speed.count("<tr") == 5  # its header and the four INT8 candidates
    assert ">1.12x<" in speed
    accuracy = page.split('id="int8-accuracy-')[1].split("</table>")[0]
    assert ">⚠ +7.0 [-]<" in accuracy  # a record from before the interval
    section = md.split("## Quantization: speed-up and accuracy cost by architecture")[1]
    accuracy, speed = _md_tables(section)
    table = {}
    for acc, spd in zip(accuracy, speed, strict=True):  # one row per INT8 candidate in each
        model = acc["Model"].split("[")[0]
        assert (spd["Model"].split("[")[0], spd["INT8 by"]) == (model, acc["INT8 by"])
        table[model if acc["INT8 by"] == "ONNX Runtime" else f"{model} by OpenVINO"] = acc | spd
    assert list(table) == ["lenet5", "resnet50", "resnet50 by OpenVINO", "simple_cnn"]
    assert table["resnet50 by OpenVINO"]["Speed-up"] == "0.75x"  # one row per INT8 runtime
    assert (table["resnet50"]["Against"], table["resnet50"]["Its samples/s"]) == (
        "bf16 eager PyTorch",
        "400.0",
    )
    # the interval's bounds rounded outwards: -0.05 to -0.1, 0.45 to 0.5
    assert (table["resnet50"]["Speed-up"], table["resnet50"]["Drop [95% CI]"]) == (
        "1.12x",
        "+0.2 [-0.1, 0.5]",
    )
    assert table["resnet50"]["Lost/gained of N"] == "3/1 of 1,000"
    assert table["resnet50 by OpenVINO"]["Lost/gained of N"] == "-"  # no such fields: '-'
    assert table["resnet50 by OpenVINO"]["Drop [95% CI]"] == "+0.0 [-]"
    assert table["resnet50"]["INT8 (samples/s)"] == "450.0 ✓"  # the one --optimize chose
    assert (table["lenet5"]["Speed-up"], table["lenet5"]["Drop [95% CI]"]) == (
        "4.00x",
        f"{WARN} +7.0 [-]",
    )
    assert table["lenet5"]["INT8 (samples/s)"] == "200.0"  # over the budget: measured, shown
    assert table["simple_cnn"]["Speed-up"] == "-"
    assert "quantization failed: Boom" in section
    assert "Not measured yet: alexnet, vgg16" in section
    flat = " ".join(section.split())
    assert "Top-1 on 1,000 images of digits held-out" in flat
    # one run, one device, one set of images (lenet5's though fp32 was chosen): named once,
    # the device in the heading and the run and images under the tables, no Device column
    assert "### INT8 on Test Chip · AVX2 · 2 vCPU" in section
    assert "Every row comes from one run[^q1]. Top-1 on 1,000 images" in " ".join(section.split())
    assert not [row for row in accuracy + speed if "Device" in row]


def test_quantization_tables_fit_a_screen_with_the_interval(tmp_path):
    """The accuracy table with its interval, wide: the longest chapter model name, rows of two
    runs (each row names its run and its images in footnotes), a wide drop and count."""
    from bench.report.fmt import MAX_LINE, WARN

    store = ResultStore(tmp_path / "results")
    wide = {"fp32_top1": 86.8, "accuracy_budget": 0.5, "candidate_top1": 71.2,
            "top1_drop": 15.6, "within_budget": False, "error": "refused: never chosen",
            "accuracy_images": 1000, "images_lost": 157, "images_gained": 1,
            "top1_drop_low": 13.14, "top1_drop_high": 18.21}  # fmt: skip
    for run_id, data in (("1a2b3c4d", "digits held-out"), ("5e6f7a8b", "mnist5k held-out")):
        doc = store.new_run({"run_id": run_id, "started_utc": "2026-01-01T00:00:00.000000Z",
                             "machine": {"id": "m", "cpu": "Test Chip"}})  # fmt: skip
        cands = [_cand("fp32", 100.0), _cand("int8", 90.0, "onnxruntime", agree=False, **wide),
                 _cand("int8", 95.0, "openvino", agree=False, **wide)]  # fmt: skip
        images = {"accuracy_images": 1000, "accuracy_data": data, "calibration_images": 128,
                  "calibration_data": "training split"}  # fmt: skip
        r = _record("vit_base_patch16_224", 1.0, 1.0, candidates=cands, accuracy_gate=images,
                    init_file="vit.pt", init_sha256="0123456789abcdef" * 4)  # fmt: skip
        r["config"].update(optimize=True, batch_size=16 if run_id < "5" else 32)
        doc.add([r])
    md = _generated_twice_alike(store.root, tmp_path)["throughput.md"].decode()
    section = md.split("## Quantization: speed-up and accuracy cost by architecture")[1]
    accuracy = _md_tables(section)[0]
    assert accuracy[0]["Checkpoint"] == "0123456789ab"
    assert accuracy[0]["Drop [95% CI]"] == f"{WARN} +15.6 [13.1, 18.3]"
    assert accuracy[0]["Lost/gained of N"] == "157/1 of 1,000"
    assert "[^1a2b3c4d]" in accuracy[0]["Model"]
    lines = section.splitlines()
    assert max(len(line) for line in lines) <= MAX_LINE
    assert max(line.count(" | ") + 1 for line in lines if line.startswith("|")) <= 10


def test_a_candidates_rounds_show_as_their_range():
    """Three rounds or more stay one narrow cell: the figure, then the lowest and highest."""
    from bench.report.throughput import _rounds_cell

    assert _rounds_cell(219.9, [222.7, 192.5, 219.9], True) == "219.9 ✓ [192.5-222.7]"
    assert _rounds_cell(100.0, [100.0], False) == "100.0"


def test_speed_only_int8_rows_say_accuracy_not_measured_in_tables_and_page(tmp_path):
    store = ResultStore(tmp_path / "results")
    doc = store.new_run({"run_id": "q8000001", "started_utc": "2026-01-01T00:00:00.000000Z",
                         "machine": {"id": "test-machine", "cpu": "Test CPU"}})  # fmt: skip
    rows = []
    for runtime, sps in (("onnxruntime", 30.0), ("openvino", 50.0)):
        q8 = _record("resnet50", sps, 4.1, accuracy="accuracy not measured",
                     calibration_data="synthetic: 128 seeded random 3x224x224 images")  # fmt: skip
        q8["config"].update(runtime=runtime, precision="int8")
        rows.append(q8)
    fp32 = _record("resnet50", 20.0, 4.1, max_abs_diff=1e-5, top1_agree=True, agrees=True)
    fp32["config"]["runtime"] = "onnxruntime"
    gated = _record("convnext_tiny", 9.0, 4.5)  # an INT8 row that was judged: no such note
    gated["config"].update(runtime="openvino", precision="int8")
    doc.add([_record("resnet50", 10.0, 4.1), fp32, gated, *rows])
    first = _generated_twice_alike(store.root, tmp_path)
    md = first["throughput.md"].decode()
    lines = [ln for ln in md.splitlines() if "int8" in ln]
    assert lines
    for ln in lines:
        assert ("accuracy not measured" in ln) == ("resnet50" in ln), ln
    assert not [ln for ln in md.splitlines() if "fp32" in ln and "accuracy not measured" in ln]
    sbs = md.split("## Runtimes side by side")[1].split("\n## ")[0]
    assert "int8 (accuracy not measured)" in sbs
    page = next(v.decode() for k, v in first.items() if k.endswith(".html"))
    assert "int8 (accuracy not measured)" in page


def test_the_reports_read_the_words_the_harness_writes():
    from bench.harness.throughput.quantize import NOT_MEASURED as written
    from bench.report.workload import NOT_MEASURED as read

    assert written == read == "accuracy not measured"


def test_a_pytorch_candidate_timed_under_glibcs_default_allocator_says_so():
    """Marked: a PyTorch candidate of a record under `--malloc system` or without the key (a
    run before it). Quiet: one under `keep`, and another runtime's (its own memory)."""
    from bench.report.fmt import Footnotes
    from bench.report.throughput import MALLOC_TEXT, _candidate_note

    notes = Footnotes()
    torch_cand, ort_cand = {"runtime": "torch"}, {"runtime": "onnxruntime"}
    assert _candidate_note(torch_cand, {"malloc": "keep"}, "", notes) == ""
    assert _candidate_note(ort_cand, {}, "", notes) == ""
    assert _candidate_note(torch_cand, {}, "", notes) == "[^m]"
    assert _candidate_note(torch_cand, {"malloc": "system"}, "boom", notes) == "[^n1] [^m]"
    assert notes.text("m") == MALLOC_TEXT


def test_the_runtimes_plot_starts_its_log_axis_a_decade_below_the_lowest_bar():
    from bench.report.runtimes import log_floor

    assert log_floor(40.7) == 10.0  # 40 and 50 drawn as their logs compare, not as a sliver
    assert log_floor(10.0) == 1.0  # a bar at a power of ten keeps a length
    assert log_floor(0.5) == 0.1
    assert log_floor(2.0e4) == 1.0e4
