"""The sweep's progress: a bar in a notebook (tqdm.auto), plain lines in a log."""

from __future__ import annotations

import io
import sys

from bench import progress
from bench.progress import Progress, in_notebook


def test_a_notebook_draws_a_bar_though_stderr_is_no_terminal(monkeypatch):
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    out = io.StringIO()
    p = Progress(2, stream=out)
    assert p._bar is not None
    p.update("a", "ok", False)
    p.close()
    assert "[1/2]" not in out.getvalue()  # the bar, not the log lines


def test_no_bar_in_a_notebook_when_bars_are_turned_off(monkeypatch):
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    out = io.StringIO()
    p = Progress(1, bar=False, stream=out)
    p.update("a", "ok", False)
    assert out.getvalue() == "[1/1] a: ok\n"


def test_in_notebook_is_a_jupyter_kernel(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel.zmqshell", raising=False)
    assert not in_notebook()
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", object())
    assert in_notebook()
