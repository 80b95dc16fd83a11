"""cnn-bench: reproducible measurements of the architectures a textbook chapter compares.

The package is importable without torch; heavy libraries are imported by the functions
that need them. The Python API (``bench.api``, docs/python.md) is reached through the thin
functions below, which import it when called:

>>> import bench
>>> run = bench.run(["lenet5", "simple_cnn"], harness=["params", "flops"], out="results")
>>> run.to_pandas()[["model", "param_count"]]

``bench.compare`` and ``bench.report`` are also the names of subpackages: importing one sets
the package's attribute to it, so the subpackage is then made callable as the function of its
name (``_Package``), and ``bench.compare(...)`` works whichever of the two it is.
"""

import sys
import types

from bench.errors import BenchError
from bench.version import __version__

__all__ = ["BenchError", "__version__", "compare", "load", "report", "run"]


def run(models, harness=None, out=None, **options):
    """Measure ``models`` as ``python -m bench run`` does; options are its long names with
    underscores (``batch_size=16``). Returns a ``bench.api.Run``."""
    from bench import api

    return api.run(models, harness, out, **options)


def load(path="results"):
    """The tidy DataFrame (results.csv's columns) of one run's file or of a whole store."""
    from bench import api

    return api.load(path)


def compare(base, new, *more, fail=None, **options):
    """``python -m bench compare``: a Comparison with ``to_pandas()`` and ``exit_code``."""
    from bench import api

    return api.compare(base, new, *more, fail=fail, **options)


def report(results="results", out="reports"):
    """``python -m bench report``: regenerate the reports; returns the files written."""
    from bench import api

    return api.report(results, out)


class _CallableCompare(types.ModuleType):
    """The ``bench.compare`` subpackage, callable as ``bench.compare(base, new, ...)``."""

    def __call__(self, base, new, *more, fail=None, **options):
        from bench import api

        return api.compare(base, new, *more, fail=fail, **options)


class _CallableReport(types.ModuleType):
    """The ``bench.report`` subpackage, callable as ``bench.report(results, out)``."""

    def __call__(self, results="results", out="reports"):
        from bench import api

        return api.report(results, out)


class _Package(types.ModuleType):
    """The ``bench`` package: a subpackage named as an API function becomes callable when
    the import system sets it as the package's attribute."""

    def __setattr__(self, name, value):
        callable_as = {"compare": _CallableCompare, "report": _CallableReport}.get(name)
        if callable_as is not None and type(value) is types.ModuleType:
            value.__class__ = callable_as
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
