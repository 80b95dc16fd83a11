"""Parsers for command-line values, shared by the CLI and the harnesses' own options.

Each raises argparse.ArgumentTypeError with what was expected, so that argparse prints one
line and exits 2.
"""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{text}'")
    return int(text)


def nonneg_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'")
    return int(text)


def positive_float(text: str, what: str = "a positive number") -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
    return value


def add_once(group, *flags: str, **kwargs) -> None:
    """Add an option unless another harness already defined it (they share ``run``'s options)."""
    taken = getattr(group, "_option_string_actions", {})
    if any(f in taken for f in flags):
        return
    group.add_argument(*flags, **kwargs)
