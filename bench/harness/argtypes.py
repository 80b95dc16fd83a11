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


def int_list(text: str) -> list[int]:
    """``1,32,256``: positive whole numbers, duplicates dropped, order kept."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive whole numbers such as '1,32,256', got '{text}'"
        )
    return list(dict.fromkeys(values))


def device(text: str) -> str:
    """``--device``: auto, cpu or cuda; cuda only where torch sees a GPU."""
    from bench.harness.base import DEVICES
    from bench.harness.device import DeviceError, check_device

    if text not in DEVICES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICES)}, got '{text}'")
    if text == "cuda":
        try:
            check_device("cuda")
        except DeviceError as e:
            raise argparse.ArgumentTypeError(str(e).rstrip(".")) from None
    return text
