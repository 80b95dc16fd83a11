"""The sweep's progress: a bar on a terminal or in a Jupyter notebook (tqdm.auto draws a
notebook widget there), plain lines on stderr otherwise. No torch here."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """Models done of ``total`` and failures.

    On a terminal it is a tqdm bar (which shows the time elapsed and an estimate of the time
    left), in a notebook tqdm's notebook bar; elsewhere (a log, a pipe, CI) one line per
    model, ``[i/n] model: ok``, which greps well."""

    def __init__(self, total: int, bar: bool = True, stream: TextIO | None = None):
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream or sys.stderr
        self._bar = None
        if bar and total and (getattr(self.stream, "isatty", lambda: False)() or in_notebook()):
            from tqdm.auto import tqdm  # the notebook's widget in a notebook, else tqdm's

            self._bar = tqdm(
                total=total, file=self.stream, unit="model", dynamic_ncols=True, desc="sweep"
            )

    def update(self, model: str, status: str, failed: bool) -> None:
        self.done += 1
        self.failed += bool(failed)
        if self._bar is not None:
            self._bar.set_postfix_str(f"failed={self.failed} last={model}", refresh=False)
            self._bar.update(1)
            return
        self.stream.write(f"[{self.done}/{self.total}] {model}: {status}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel, where stderr is no terminal but a bar can be
    drawn (the test tqdm.auto makes: the kernel's shell module is loaded)."""
    return "ipykernel.zmqshell" in sys.modules
