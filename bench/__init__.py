"""cnn-bench: reproducible measurements of the architectures a textbook chapter compares.

The package is importable without torch; heavy libraries are imported by the functions
that need them.
"""

__version__ = "0.1.0"

from bench.errors import BenchError

__all__ = ["BenchError", "__version__"]
