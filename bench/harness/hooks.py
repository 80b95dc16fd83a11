"""Calling a harness's optional hooks (``configure``, ``preflight``, ``prepare``, ``finalize``:
``bench.harness.base`` lists them) by name."""

from __future__ import annotations

from typing import Any

from bench.errors import BenchError, ConfigError, error_text
from bench.harness.discovery import harness_class

_ABSENT = object()


def harness_hook(name: str, hook: str):
    """The hook ``hook`` of the harness called ``name``, or None when it has none."""
    return getattr(harness_class(name), hook, None)


def call_hook(name: str, hook: str, *args, default: Any = _ABSENT, doing: str = "") -> Any:
    """``hook(*args)`` of the harness called ``name``; ``default`` (else its first argument)
    when it has none. A failure that is not a ``BenchError`` becomes a ``ConfigError`` naming
    the harness (and what it was ``doing``), one line at the CLI."""
    fn = harness_hook(name, hook)
    if fn is None:
        return args[0] if default is _ABSENT else default
    try:
        return fn(*args)
    except BenchError:
        raise
    except Exception as e:
        raise ConfigError(f"Harness '{name}': {doing}{error_text(e)}") from e
