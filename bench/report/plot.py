"""Plots as bytes: the same figure always gives the same PNG (no timestamp, no version)."""

from __future__ import annotations

import io


def png_bytes(fig, dpi: float | None = None) -> bytes:
    """``fig`` as PNG bytes without the 'Software' metadata, so that reports stay byte-stable."""
    buf = io.BytesIO()
    kwargs = {"dpi": dpi} if dpi is not None else {}
    fig.savefig(buf, format="png", metadata={"Software": None}, **kwargs)
    return buf.getvalue()
