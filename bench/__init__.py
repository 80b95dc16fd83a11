"""cnn-bench: reproducible measurements of the architectures a textbook chapter compares.

The package is importable without torch; heavy libraries are imported by the functions
that need them.
"""

from bench.errors import BenchError
from bench.version import __version__

__all__ = ["BenchError", "__version__"]
