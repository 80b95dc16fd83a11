"""Harnesses say *what* is measured; the runner says how it is run.

Harnesses plug in through the entry-point group ``cnn_bench.harnesses``, cnn-bench's own
included (declared in its pyproject.toml; ``BUILTIN_HARNESSES`` stands in for them in a
checkout that is not installed), found, loaded and checked as model plugins are
(``discovery``). The contract is written in ``base``; ``lifecycle`` adds each harness's own
``run`` options, calls its optional hooks and builds its configuration. Harness modules are
cheap to import: torch and friends are imported inside their functions, so that ``--help``
and ``list`` stay fast.
"""

from __future__ import annotations

from bench.harness.discovery import (
    BUILTIN_HARNESSES,
    DEFAULT_HARNESSES,
    GROUP,
    HARNESSES,
    HarnessEntry,
    entries,
    get_harness,
    harness_class,
    harness_names,
    harness_target,
    parse_harnesses,
    resolve_harness,
    warnings,
)
from bench.harness.lifecycle import (
    add_harness_arguments,
    call_hook,
    config_as_dict,
    config_from_options,
    config_options,
    harness_hook,
    make_job,
    split_options,
)

__all__ = [
    "BUILTIN_HARNESSES",
    "DEFAULT_HARNESSES",
    "GROUP",
    "HARNESSES",
    "HarnessEntry",
    "add_harness_arguments",
    "call_hook",
    "config_as_dict",
    "config_from_options",
    "config_options",
    "entries",
    "get_harness",
    "harness_class",
    "harness_hook",
    "harness_names",
    "harness_target",
    "make_job",
    "parse_harnesses",
    "resolve_harness",
    "split_options",
    "warnings",
]
