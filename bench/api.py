"""The Python API: ``bench.run``, ``bench.load``, ``bench.compare`` and ``bench.report`` do
what ``python -m bench run``, ``report`` and ``compare`` do, and hand back data (a ``Run``, a
pandas DataFrame, a ``Comparison``) instead of printing it.

``run``'s options are the command line's: each keyword is a ``run`` option's long name with
underscores (``batch_size=16`` is ``--batch-size 16``), a list is a comma list, ``True``
gives a flag. They are turned into that command line and go through the CLI's own parser
and configuration (``bench.cli``), so that a bad one raises the ``BenchError`` whose line
the CLI prints, and the run document records the equivalent command line (which ``--resume``
reads back). torch is imported only once a run starts; ``bench/__init__.py`` imports this
module only when one of its functions is called.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.stats import ALPHA, CONFIDENCE

__all__ = ["Run", "compare", "load", "report", "run", "run_argv"]


@dataclass
class Run:
    """A finished (or interrupted) run: its id, its document's path and its records."""

    run_id: str
    path: Path
    records: list[dict[str, Any]]
    status: str  # 'complete', or 'interrupted'

    @property
    def failed(self) -> list[str]:
        """The models with a record that failed (the CLI's exit status 1)."""
        bad = (r.get("model") for r in self.records if r.get("status") == "error")
        return list(dict.fromkeys(m for m in bad if m is not None))

    def to_pandas(self):
        """The run's tidy table: results.csv's columns, one row per (model, device,
        configuration) (``bench.report.tidy``)."""
        return load(self.path)


def _names(value, what: str) -> str:
    """A comma option's text from a name or a list of names."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise ConfigError(f"{what}: expected a name or a list of names, got {value!r}.")


def _option(parser, key: str, value) -> list[str]:
    """The command-line words of one keyword option (none for False or None)."""
    flag = "--" + key.replace("_", "-")
    action = parser._option_string_actions.get(flag)
    if action is None or action.dest == "help":  # --help would print and exit
        known = sorted(
            s[2:].replace("-", "_") for s in parser._option_string_actions if s.startswith("--")
        )
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(
            f"bench.run: unknown option '{key}'.{hint} It takes the long names of 'python -m "
            "bench run --help' with underscores (batch_size=16 for --batch-size 16)."
        )
    if value is None or value is False:
        return []
    if value is True:
        if action.nargs == 0 or action.nargs == "?":
            return [flag]
        raise ConfigError(f"bench.run: {key}=True: {flag} takes a value; give one.")
    if action.nargs == 0:
        raise ConfigError(f"bench.run: {key}={value!r}: {flag} is a flag; give True or False.")
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return [f"{flag}={value}"]


def run_argv(models, harness=None, out=None, **options) -> list[str]:
    """The ``python -m bench`` command line (after ``python -m bench``) of ``bench.run``'s
    arguments; an unknown option or a value of the wrong kind is a ConfigError."""
    from bench.cli.parser import build_parser, subcommands

    parser = subcommands(build_parser())["run"]
    argv = ["run", "--models", _names(models, "models")]
    if harness is not None:
        argv.append("--harness=" + _names(harness, "harness"))
    if out is not None:
        argv.append(f"--out={out}")
    for key, value in options.items():
        argv += _option(parser, key, value)
    return argv


def run(models, harness=None, out=None, **options) -> Run:
    """Measure ``models`` (names, patterns or 'chapter'; a list or a comma string) with
    ``harness`` (default: the CLI's) into the store ``out`` (default: results/), with the
    ``run`` options in ``options``. Ctrl-C saves what was measured and is raised again."""
    from bench.cli import sweep
    from bench.cli.parser import build_parser, raising
    from bench.dist import is_main_process

    argv = run_argv(models, harness, out, **options)
    args = raising(build_parser()).parse_args(argv)
    args.argv = argv
    doc = sweep(args, chatty=is_main_process())
    return Run(doc.header.get("run_id", "-"), doc.path, list(doc.records), doc.header["status"])


def load(path="results"):
    """The tidy table (results.csv's columns) of a run document or of a whole store: the
    latest record of each (model, harness, device, configuration)."""
    from bench.report.records import read_records
    from bench.report.tidy import tidy

    if not Path(path).exists():
        raise ConfigError(f"No results at {path}. Give a run's .json file or a store folder.")
    return tidy(read_records(path).latest)


def compare(base, new, *more, fail=None, results="results", all_runs=False, metrics=None,
            alpha=ALPHA, confidence=CONFIDENCE, cross_machine=False):  # fmt: skip
    """``python -m bench compare BASE NEW [MORE...]``: each side a run id (in ``results``), a
    run's file, a store folder or a timm CSV. ``fail``: thresholds ('top1:-0.5', or a list).
    Returns the Comparison (``to_pandas()``, ``exit_code``, ``failures``, ``render()``)."""
    from bench.compare import Options, compare_runs, parse_thresholds
    from bench.compare import compare as compare_two

    fail = [fail] if isinstance(fail, str) else list(fail or [])
    how = {
        "results": results,
        "all_runs": all_runs,
        "metrics": [m for m in metrics.split(",") if m] if isinstance(metrics, str) else metrics,
        "options": Options(alpha, confidence, cross_machine),
    }
    sides = [str(s) for s in (base, new, *more)]
    if len(sides) == 2:
        return compare_two(*sides, parse_thresholds(fail), **how)
    return compare_runs(sides, parse_thresholds(fail), **how)


def report(results="results", out="reports") -> list[Path]:
    """``python -m bench report``: regenerate the reports from a store; the files written."""
    from bench.report.generate import generate

    if not Path(results).is_dir():
        raise ConfigError(f"No results store at {results}/. Run bench.run(...) first.")
    return generate(results, out)
