"""Harnesses say *what* is measured; the runner says how it is run.

A harness is a class with a ``name`` and a ``measure(job)`` method returning a list of
``Measurement`` (a configuration and its metrics). They are looked up here by name and
imported only when used, so that ``python -m bench list`` never imports torch.
"""

from __future__ import annotations

import importlib

from bench.errors import UnknownHarnessError

# name -> "module:Class"; order is the order they run in.
HARNESSES: dict[str, str] = {
    "params": "bench.harness.params:ParamsHarness",
    "flops": "bench.harness.flops:FlopsHarness",
    "depth": "bench.harness.depth:DepthHarness",
    "throughput": "bench.harness.throughput:ThroughputHarness",
    "finetune": "bench.harness.finetune.harness:FinetuneHarness",
}

# What `run` measures when --harness is not given.
DEFAULT_HARNESSES: tuple[str, ...] = ("params", "flops", "depth", "throughput")


def harness_names() -> list[str]:
    return list(HARNESSES)


def parse_harnesses(text: str | None) -> list[str]:
    if not text:
        return list(DEFAULT_HARNESSES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(HARNESSES)
    unknown = [n for n in names if n not in HARNESSES]
    if unknown:
        raise UnknownHarnessError(
            f"Unknown harness '{unknown[0]}'. Choose from: {', '.join(HARNESSES)} (or 'all')."
        )
    return sorted(dict.fromkeys(names), key=list(HARNESSES).index)


def add_harness_arguments(parser) -> None:
    """Let each harness module add its own ``run`` options (``add_arguments(group)``).

    Harness modules must therefore be cheap to import: torch and friends are imported
    inside their functions.
    """
    for name, target in HARNESSES.items():
        module = importlib.import_module(target.split(":")[0])
        add = getattr(module, "add_arguments", None)
        if add is not None:
            add(parser.add_argument_group(f"{name} harness"))


def preflight(names, options: dict) -> None:
    """Check the options of the chosen harnesses before anything is measured.

    A harness module may define ``preflight(options)`` raising a BenchError for input that
    would fail every model alike (a missing file, a data set that is not there), so that it
    is one line and exit status 2 instead of a row of identical errors.
    """
    for name in names:
        module = importlib.import_module(HARNESSES[name].split(":")[0])
        check = getattr(module, "preflight", None)
        if check is not None:
            check(options)


def get_harness(name: str):
    module, cls = HARNESSES[name].split(":")
    return getattr(importlib.import_module(module), cls)()
