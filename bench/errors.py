"""The one root error of cnn-bench and its subclasses.

Every message says what was wrong, what was expected and what to do; the CLI prints it
on one line and exits 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import difflib
import re


class BenchError(Exception):
    """Root of every error cnn-bench raises on purpose."""


class ConfigError(BenchError):
    """A command-line option or configuration value is invalid."""


class UnknownModelError(BenchError):
    """A model name resolves to no provider."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
        hint = ""
        if close:
            hint = " Did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        super().__init__(
            f"Unknown model '{name}'.{hint} See 'python -m bench list' "
            "(add --all for timm's whole catalogue)."
        )


class UnknownHarnessError(BenchError):
    """A harness name is not one cnn-bench has."""


class HarnessError(BenchError):
    """A harness broke its contract (returned something that is not a measurement)."""


class PluginError(BenchError):
    """A third-party entry point could not be loaded or is malformed."""


class DuplicateModelError(BenchError):
    """Two providers claim the same model name."""


class CardError(BenchError):
    """A model card in registry/ is missing a field or cannot be parsed."""


class StorageError(BenchError):
    """A results store cannot be read or written."""


class DataError(BenchError):
    """A data set or weights file cannot be found or read."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, SIGHUP): handled like Ctrl-C, so that what was
    measured is kept, the run is marked interrupted and isolated workers are killed."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def error_text(exc: BaseException, limit: int | None = None) -> str:
    """An exception in one line: its type and the first line of its message (terminal colours
    removed, at most ``limit`` characters of it)."""
    msg = first_line(exc)[:limit]
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


class ModelTooLargeError(BenchError):
    """A model's weights do not fit in this machine's memory."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, terminal colours removed ('' when it has
    none)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return text.splitlines()[0] if text else ""


class OutOfMemoryError(BenchError):
    """A measurement ran out of memory and could not (or was told not to) back off."""


class RuntimeStepError(BenchError):
    """A runtime step failed (export, conversion, session, first run); the message names it."""


class CountError(BenchError):
    """No counter could count a model's MACs; the message says why each one failed."""


class WorkerError(BenchError):
    """The isolated measurement raised, crashed or timed out."""


class DivergedError(BenchError):
    """A training is not a result: its loss or its outputs turned NaN or infinite, or it ended
    at chance (``bench.harness.finetune.divergence`` says when). The message names the epoch,
    the step and the learning rate, and what to change."""


class NotFiniteError(BenchError):
    """A model's outputs hold NaN or infinite values where they are scored (the validate
    harness, the accuracy gate of ``--optimize``): a top-1 of them would mean nothing."""
