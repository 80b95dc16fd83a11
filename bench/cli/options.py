"""What the parsed options configure: the run-wide ``RunConfig`` and each harness's own
option values (shared by ``run`` and ``ab``)."""

from __future__ import annotations


def run_config_of(args):
    """The run-wide configuration from the options ``run`` names (not a deny-list)."""
    from bench.harness.base import ExecutionConfig, RunConfig

    execution = ExecutionConfig(
        isolate=args.isolate,
        model_timeout_s=args.model_timeout_s,
        executor=args.executor,
        ray_address=args.ray_address,
        resume=args.resume is not None,
    )
    return RunConfig(
        device=args.device,
        batch_sizes=tuple(args.batch_sizes) if args.batch_sizes else None,
        precision=args.precision,
        img_size=args.img_size,
        execution=execution,
    )


def harness_options(args, harnesses) -> dict[str, dict]:
    """Each harness's own options that were given, by harness (its defaults fill the rest)."""
    dests = args.harness_dests
    return {
        h: {d: getattr(args, d) for d in dests.get(h, ()) if hasattr(args, d)} for h in harnesses
    }
