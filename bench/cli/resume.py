"""``run --resume RUN_ID`` alone: the options of the run it completes, read back from the
command line its document records (``argv``).

The run's own options come first and the options given now explicitly go on top, so that
``--resume RUN_ID`` alone measures the rest as the run began, and an option given now that
differs from the run's is refused by the runner (``bench.runner.resume_into``: exit 2). The
models and harnesses are not read from ``argv`` but from the document's config (the names a
pattern such as ``chapter`` resolved to, the harnesses ``--harness all`` kept).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bench.cli.parser import build_parser, raising, subcommands
from bench.errors import BenchError

logger = logging.getLogger(__name__)

# options that say what to measure now and where: the resumed run takes them from the command
# given now (--models and --harness default to the document's config, ``_run_inputs``)
FROM_NOW = ("models", "exclude", "harness", "out", "resume", "argv", "debug", "harness_dests")


def explicit_options(argv: list[str]) -> dict[str, Any]:
    """The ``run`` options ``argv`` gives explicitly (dest -> value). ``argv`` is parsed again
    with every default suppressed, so that an option given at its default value counts."""
    parser = raising(build_parser())
    run = subcommands(parser)["run"]
    for action in run._actions:
        action.default = argparse.SUPPRESS
    dests = {a.dest for a in run._actions}
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if k in dests}


def stored_options(header: dict[str, Any]) -> argparse.Namespace | None:
    """The ``run`` options of a run document's recorded command line; None when it records
    none that parses as ``run`` (an older document, a run started by another program, an
    option this installation no longer has)."""
    argv = header.get("argv")
    if not isinstance(argv, list):
        return None
    try:
        args = raising(build_parser()).parse_args([str(a) for a in argv])
    except BenchError as e:
        logger.debug("--resume: the run's recorded command line does not parse: %s", e)
        return None
    return args if args.command == "run" else None


def resumed_args(args: argparse.Namespace, doc) -> argparse.Namespace:
    """``args`` (a ``run`` with ``--resume``) for completing ``doc``: the run's own options
    (its recorded command line), those given now explicitly on top. Without a readable
    command line in ``doc``, ``args`` as given."""
    before = stored_options(doc.header)
    now = getattr(args, "argv", None)
    if before is None or now is None:
        return args
    merged = argparse.Namespace(**vars(before))
    for key in FROM_NOW:
        if hasattr(args, key):
            setattr(merged, key, getattr(args, key))
    for key, value in explicit_options(list(now)).items():
        setattr(merged, key, value)
    return merged
