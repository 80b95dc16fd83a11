"""The isolated child's entry point: ``python -m bench.executors.worker JOB RESULT`` runs
``bench.executors.isolate.main``. A module of its own that nothing imports, so that running it
with ``-m`` never finds it imported already (the package's face imports ``isolate``, and
``python -m bench.executors.isolate`` would warn about that in every child)."""

from __future__ import annotations

import sys

from bench.executors.isolate import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
