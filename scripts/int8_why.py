"""Why INT8 may be slower than bf16 here: one model at one input size, timed quickly in
OpenVINO (fp32, bf16, NNCF INT8) and ONNX Runtime (fp32 and four static INT8 variants: QDQ
per channel, the same with ``reduce_range``, QDQ per tensor, and QOperator per channel; all
U8S8: activations uint8, weights int8), and printed as one table, fastest first.

    python scripts/int8_why.py --model resnet50 --img-size 224 --batch 16
    python scripts/int8_why.py --model simple_cnn --img-size 28 --quick   # seconds

Speed only: random weights and seeded synthetic calibration images (no accuracy is measured).
A variant that cannot run here (a missing package, no native bf16) is a row saying why.
Meant for a quiet machine; --quick is a check that every path works, not a measurement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ORT_INT8 = {  # label -> quantize_int8's options
    "QDQ per-channel (cnn-bench's)": {"quant_format": "QDQ", "per_channel": True},
    "QDQ per-channel reduce_range": {
        "quant_format": "QDQ",
        "per_channel": True,
        "reduce_range": True,
    },
    "QDQ per-tensor": {"quant_format": "QDQ", "per_channel": False},
    "QOperator per-channel": {"quant_format": "QOperator", "per_channel": True},
}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", default="resnet50", help="a registered or timm model name")
    p.add_argument("--img-size", type=int, default=224, help="input height and width")
    p.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: torch's)")
    p.add_argument("--calibration-images", type=int, default=32,
                   help="synthetic calibration images (default: 32)")  # fmt: skip
    p.add_argument("--min-time", type=float, default=3.0,
                   help="seconds each variant is timed (default: 3)")  # fmt: skip
    p.add_argument(
        "--quick",
        action="store_true",
        help="0.2 s per variant and 8 calibration images: a check, not a measurement",
    )
    return p.parse_args(argv)


def time_infer(infer, min_time_s: float) -> tuple[float, int]:
    """(seconds per call, calls): two warm-up calls, then calls until ``min_time_s``."""
    for _ in range(2):
        infer()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time_s or calls < 3:
        infer()
        calls += 1
    return elapsed / calls, calls


def openvino_variants(model, x, calib, threads: int):
    """(label, session or the reason it is missing) of OpenVINO's fp32, bf16 and INT8."""
    from bench.harness.throughput.runtimes import get, missing

    if missing("openvino"):
        return [("OpenVINO", "openvino not installed")]
    ov = get("openvino")
    out = []
    for precision in ("fp32", "bf16"):
        reason = ov.skip_reason("cpu", precision)
        label = f"OpenVINO {precision}"
        out.append((label, reason or (lambda p=precision: ov.open_session(model, x, threads,
                                                                          "cpu", p))))  # fmt: skip
    if missing("openvino", int8=True):
        return [*out, ("OpenVINO INT8 (NNCF)", "nncf not installed")]
    graph = lambda: ov.open_quantized(ov.quantize(model, x, calib, threads), x, threads)  # noqa: E731
    return [*out, ("OpenVINO INT8 (NNCF)", graph)]


def onnxruntime_variants(model, x, calib, threads: int):
    """(label, session factory or the reason it is missing) of ONNX Runtime's fp32 and the
    INT8 variants of ``ORT_INT8``."""
    from bench.harness.throughput.runtimes import get, missing
    from bench.harness.throughput.runtimes.onnxruntime import quantize_int8

    if missing("onnxruntime"):
        return [("ONNX Runtime", "onnxruntime not installed")]
    ort = get("onnxruntime")
    out = [("ONNX Runtime fp32", lambda: ort.open_session(model, x, threads, "cpu", "fp32"))]

    def int8(options):
        with tempfile.TemporaryDirectory(prefix="int8-why-") as tmp:
            graph = quantize_int8(model, x, calib, Path(tmp), **options).read_bytes()
        return ort.open_quantized(graph, x, threads)

    return out + [(f"ONNX Runtime INT8 {k}", lambda o=o: int8(o)) for k, o in ORT_INT8.items()]


def measure(variants, min_time_s: float) -> list[tuple[str, float | None, str]]:
    """(label, samples/s or None, a note) per variant: built, timed, closed; a failure is
    its note."""
    rows = []
    for label, make in variants:
        if isinstance(make, str):
            rows.append((label, None, make))
            continue
        try:
            start = time.perf_counter()
            session = make()
            build_s = time.perf_counter() - start
            try:
                per_call, calls = time_infer(session.infer, min_time_s)
            finally:
                session.close()
        except Exception as e:  # one variant's failure is its row
            rows.append((label, None, f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"))
            continue
        sps = session.samples_per_call / per_call
        rows.append((label, sps, f"{calls} calls, built in {build_s:.1f} s"))
        print(f"  {label}: {sps:.1f} samples/s", file=sys.stderr)
    return rows


def table(rows, title: str) -> str:
    """The rows as a markdown table, fastest first, each against OpenVINO bf16 (else fp32)."""
    speed = {label: sps for label, sps, _ in rows}
    base_label = next((k for k in ("OpenVINO bf16", "OpenVINO fp32") if speed.get(k)), None)
    base = speed.get(base_label) if base_label else None
    lines = [f"## {title}", "", f"| Variant | Samples/s | vs {base_label or '-'} | Note |",
             "|---|---:|---:|---|"]  # fmt: skip
    for label, sps, note in sorted(rows, key=lambda r: -(r[1] or 0.0)):
        ratio = f"{sps / base:.2f}x" if sps and base else "-"
        lines.append(f"| {label} | {f'{sps:.1f}' if sps else '-'} | {ratio} | {note} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import torch

    from bench.registry.lookup import Registry

    args = parse(argv)
    if args.quick:
        args.min_time, args.calibration_images = 0.2, 8
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    spec = Registry().get(args.model)
    model = spec.build(pretrained=False, img_size=args.img_size).eval()
    c = spec.resolved_input_size()[0]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((args.batch, c, args.img_size, args.img_size), generator=gen)
    calib = torch.randn((args.calibration_images, c, args.img_size, args.img_size), generator=gen)
    variants = openvino_variants(model, x, calib, threads)
    variants += onnxruntime_variants(model, x, calib, threads)
    rows = measure(variants, args.min_time)
    title = (
        f"{args.model} at {args.img_size} px, batch {args.batch}, {threads} threads, "
        f"{args.min_time:g} s each{' (quick: not a measurement)' if args.quick else ''}"
    )
    print(table(rows, title))
    return 0 if any(sps for _, sps, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
