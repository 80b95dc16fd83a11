"""Why was --optimize's first round slower? Times one model at two PyTorch configurations
(fp32 NCHW, bf16 channels-last) for three rounds in one process, with the harness's warm-up
policy and timed loop, under a glibc malloc policy (``--malloc``, as ``run --malloc``), and
prints every round's samples/s, its page faults per timed step, and its step times.

Under ``system`` every step faults its activations in again (glibc unmaps a freed block above
its mmap threshold and trims the heap's free top), and how many depends on the thresholds
glibc has raised so far, that is on what the process ran before: the harness's later rounds
faulted less than its first. Under ``keep`` (the harness's default) a warmed-up step faults
nothing in. Run it on a quiet machine, once per policy:

    python scripts/first_round_probe.py --model resnet50 --img-size 224 --batch 16 --malloc system
    python scripts/first_round_probe.py --model resnet50 --img-size 224 --batch 16 --malloc keep
"""

from __future__ import annotations

import argparse
import functools

from bench.harness.throughput.allocator import (
    KEEP,
    POLICIES,
    malloc_policy,
    minor_faults,
    release_freed_memory,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50", help="a timm model name")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--malloc", choices=POLICIES, default=KEEP)
    args = parser.parse_args()
    with malloc_policy(args.malloc) as policy:
        print(f"malloc: {policy}", flush=True)
        probe(args)


def probe(args) -> None:
    """Every round of both configurations, printed as it ends."""
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

            if args.malloc == KEEP:  # as time_steps does: each timing starts alike
                release_freed_memory()
            with torch.inference_mode(), collector_paused():
                warm, stable = warm_up(step, lambda: None, WarmupPolicy())
                timer = CpuTimer()
                faults = minor_faults()
                total = timed_loop(step, timer, 10, 2.0)
                faults = (minor_faults() - faults) / len(timer.times_ms)
            rate = args.batch * len(timer.times_ms) / total
            print(
                f"round {r + 1} {precision} channels_last={channels_last}: {rate:.1f}/s, "
                f"{faults:.0f} page faults per step, warm-up {len(warm)} steps (settled: "
                f"{stable}) {[round(w * 1e3) for w in warm]} ms, "
                f"timed {[round(t) for t in timer.times_ms]} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
