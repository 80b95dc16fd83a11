"""cnn-bench's version, in a module of its own: the modules that record it import it from
here, not from the package, whose API functions reach the command line above them."""

__version__ = "0.1.0"
