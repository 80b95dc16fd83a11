"""Does a plain loop show --optimize's slow first round? Times one model at two PyTorch
configurations (fp32 NCHW, bf16 channels-last) for three rounds in one process, with the
harness's warm-up policy and timed loop, and prints every round's samples/s with its warm-up
and timed step times. Issue 26: in the harness the first round of a PyTorch candidate is
slower; this loop, without the harness around it, is not. Run it on a quiet machine:

    python scripts/first_round_probe.py --model resnet50 --img-size 224 --batch 16
"""

from __future__ import annotations

import argparse
import functools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50", help="a timm model name")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import timm
    import torch

    from bench.harness.throughput.timing import (
        CpuTimer,
        WarmupPolicy,
        collector_paused,
        timed_loop,
        warm_up,
    )

    torch.manual_seed(0)
    model = timm.create_model(args.model).eval()
    x = torch.randn(args.batch, 3, args.img_size, args.img_size)
    configs = [("fp32", False), ("bf16", True)]
    for r in range(args.rounds):
        for precision, channels_last in configs if r % 2 == 0 else configs[::-1]:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            m, xi = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)
            autocast = functools.partial(
                torch.autocast, "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"
            )

            def step(m=m, xi=xi, autocast=autocast):
                with autocast():
                    return m(xi)

            with torch.inference_mode(), collector_paused():
                warm, stable = warm_up(step, lambda: None, WarmupPolicy())
                timer = CpuTimer()
                total = timed_loop(step, timer, 10, 2.0)
            rate = args.batch * len(timer.times_ms) / total
            print(
                f"round {r + 1} {precision} channels_last={channels_last}: {rate:.1f}/s, "
                f"warm-up {len(warm)} steps (settled: {stable}) "
                f"{[round(w * 1e3) for w in warm]} ms, timed {[round(t) for t in timer.times_ms]} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
