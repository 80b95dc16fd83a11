"""The runtimes beside PyTorch eager, behind one contract (``base.Runtime``), and their registry.

Every runtime, cnn-bench's own (``onnxruntime``, ``openvino``: one file each) and a third
party's, is an entry point of the group ``cnn_bench.runtimes`` naming a ``Runtime`` (an
instance or its class); ``RUNTIMES`` adds some from Python (tests, notebooks). They are found
once per process, loaded, and checked; one that fails to load is listed with its error (asking
for it by name is a ConfigError; otherwise a warning), never a crash of the run. PyTorch
(``TORCH``) is not an entry point: the harness measures it itself.

The registry is cheap to import: no torch and no runtime package until a session is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bench.errors import BenchError, ConfigError, PluginError
from bench.harness.throughput.runtimes.base import (
    EXTRA,
    SYNC,
    TORCH,
    Runtime,
    Session,
    missing_packages,
    step,
)
from bench.registry.plugins import Plugin, find_plugins, import_entry_point

logger = logging.getLogger(__name__)

GROUP = "cnn_bench.runtimes"
# Keep in step with [project.entry-points."cnn_bench.runtimes"] in pyproject.toml
# (tests/test_runtime_plugins.py checks that they agree).
BUILTIN_RUNTIMES: dict[str, str] = {
    "onnxruntime": "bench.harness.throughput.runtimes.onnxruntime:RUNTIME",
    "openvino": "bench.harness.throughput.runtimes.openvino:RUNTIME",
}
# Runtimes registered from Python: name -> "module:attr" (a Runtime or its class).
RUNTIMES: dict[str, str] = {}

__all__ = ["EXTRA", "GROUP", "TORCH", "Runtime", "Session", "step"]


@dataclass
class RuntimeEntry:
    """One runtime as found: its name, provider (``package[entry]`` or ``python``), and the
    loaded ``Runtime`` or the error that kept it from loading."""

    name: str
    provider: str
    runtime: Runtime | None = None
    error: str | None = None


def _validate(provider: str, name: str, obj) -> Runtime:
    """The entry point's object as a ``Runtime`` (a class is instantiated), or a PluginError."""
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as e:
            raise PluginError(f"Runtime plugin {provider}: {obj.__name__}() failed: {e}") from e
    if not callable(getattr(obj, "open_session", None)):
        raise PluginError(
            f"Runtime plugin {provider} points at a {type(obj).__name__} without "
            "open_session(); the entry point must name a bench...runtimes.base.Runtime."
        )
    if getattr(obj, "name", None) != name:
        raise PluginError(
            f"Runtime plugin {provider}: it says name = '{getattr(obj, 'name', None)}' but the "
            f"entry point is called '{name}'; make them agree."
        )
    if name == TORCH:
        raise PluginError(f"Runtime plugin {provider}: '{TORCH}' is PyTorch's own name.")
    return obj


def _load(name: str, target: str, provider: str, plugin: Plugin | None) -> RuntimeEntry:
    entry = RuntimeEntry(name, provider)
    try:
        if plugin is not None:
            obj = import_entry_point(plugin, GROUP)
        else:
            obj = import_entry_point(Plugin(name, target, "python"), GROUP)
        entry.runtime = _validate(provider, name, obj)
    except BenchError as e:
        entry.error = str(e)
        logger.warning("%s", e)
    return entry


def discover() -> dict[str, RuntimeEntry]:
    """Every runtime beside PyTorch: cnn-bench's own first, then plugins, then ``RUNTIMES``;
    two providers of one name keep the first (and warn)."""
    found: dict[str, RuntimeEntry] = {}
    plugins = find_plugins(GROUP, BUILTIN_RUNTIMES)
    order = list(BUILTIN_RUNTIMES)
    plugins.sort(key=lambda p: (not p.builtin, order.index(p.name) if p.name in order else 99))
    rows = [(p.name, p.value, p.display, p) for p in plugins]
    rows += [(n, t, "python", None) for n, t in RUNTIMES.items()]
    for name, target, provider, plugin in rows:
        if name in found:
            logger.warning("Runtime '%s' is provided by both %s and %s; %s is used.",
                           name, found[name].provider, provider, found[name].provider)  # fmt: skip
            continue
        found[name] = _load(name, target, provider, plugin)
    return found


_CACHE: dict = {}


def entries() -> dict[str, RuntimeEntry]:
    """The runtimes of this process (found once; changes to ``RUNTIMES`` are seen)."""
    key = tuple(sorted(RUNTIMES.items()))
    if _CACHE.get("key") != key:
        _CACHE["entries"], _CACHE["key"] = discover(), key
    return _CACHE["entries"]


def names() -> tuple[str, ...]:
    """PyTorch and every runtime that loaded, in order (what ``--runtime all`` means)."""
    return (TORCH, *(n for n, e in entries().items() if e.runtime is not None))


def check_names(runtimes) -> tuple[str, ...]:
    """The runtimes as a tuple, duplicates dropped; a ConfigError naming an unknown one, or
    the error of one that failed to load."""
    runtimes = (runtimes,) if isinstance(runtimes, str) else tuple(runtimes)
    known = entries()
    for r in runtimes:
        if r != TORCH and r in known and known[r].runtime is None:
            raise ConfigError(f"--runtime {r}: {known[r].error}")
    bad = [r for r in runtimes if r != TORCH and r not in known]
    if not runtimes or bad:
        raise ConfigError(
            f"--runtime {','.join(runtimes)}: expected a comma list of {', '.join(names())} "
            "(or 'all')."
        )
    return tuple(dict.fromkeys(runtimes))


def get(name: str) -> Runtime:
    """The loaded runtime called ``name`` (not PyTorch); a ConfigError otherwise."""
    if name == TORCH:
        raise ConfigError(f"{TORCH}: PyTorch is measured by the harness, not a Runtime.")
    check_names((name,))
    return entries()[name].runtime


def label(name: str) -> str:
    """A runtime in words ('ONNX Runtime'); its name when it is unknown here."""
    if name == TORCH:
        return "PyTorch"
    entry = entries().get(name)
    return (entry.runtime.label or name) if entry and entry.runtime else str(name)


class _Labels(Mapping):
    """Each runtime's label by name, read from the registry when first asked for."""

    def __getitem__(self, name):
        if name != TORCH and (name not in entries() or entries()[name].runtime is None):
            raise KeyError(name)
        return label(name)

    def __iter__(self):
        return iter(names())

    def __len__(self):
        return len(names())


LABELS: Mapping[str, str] = _Labels()


# -- what is installed -------------------------------------------------------------------------
def missing(name: str, int8: bool = False) -> list[str]:
    """The distributions ``name`` needs (for INT8 with ``int8``: those beyond the runtime)
    that are not installed; [] for PyTorch or a runtime not known here."""
    entry = entries().get(name)
    if name == TORCH or entry is None or entry.runtime is None:
        return []
    rt = entry.runtime
    return missing_packages((rt.int8_packages or {}) if int8 else rt.packages)


def installed(name: str) -> bool:
    return not missing(name)


def not_installed_text(name: str) -> str:
    return f"--runtime {name}: {', '.join(missing(name))} not installed; pip install '{EXTRA}'."


def require(runtimes) -> None:
    """A ConfigError (one line, exit 2) naming the extra when an asked runtime is missing."""
    for r in runtimes:
        if not installed(r):
            raise ConfigError(not_installed_text(r))


def version(name: str) -> str | None:
    """The installed version of the runtime's package (torch's for PyTorch), or None."""
    from bench.harness.throughput.runtimes.base import dist_version

    if name == TORCH:
        return dist_version("torch")
    entry = entries().get(name)
    return dist_version(entry.runtime.version_package) if entry and entry.runtime else None


def version_packages() -> tuple[str, ...]:
    """The distribution each loaded runtime states its version by (for ``compare``)."""
    rts = [e.runtime for e in entries().values() if e.runtime is not None]
    return tuple(dict.fromkeys(rt.version_package for rt in rts if rt.version_package))


# -- what a runtime can do here ------------------------------------------------------------------
def skip_reason(name: str, mode: str, device: str, precision: str, channels_last: bool,
                scenario: str = SYNC) -> str | None:  # fmt: skip
    """Why runtime ``name`` cannot measure this configuration here (a row's text), or None."""
    if name == TORCH:
        return None
    entry = entries().get(name)
    if entry is None or entry.runtime is None:
        return f"skipped: runtime '{name}' is not available ({entry.error if entry else 'unknown'})"
    rt = entry.runtime
    if not installed(name):
        return f"skipped: {rt.label} not installed (pip install '{EXTRA}')"
    if mode != "infer":
        return f"skipped: {rt.label} is measured for inference only"
    if channels_last:
        return (
            f"skipped: {rt.label} takes the exported NCHW graph and chooses its own internal "
            "layout; --channels-last applies to PyTorch only"
        )
    return rt.skip_reason(device, precision, scenario)


def int8_skip_reason(name: str, mode: str, device: str) -> str | None:
    """Why ``name``'s INT8 candidate cannot be measured here, or None (the accuracy gate's
    own conditions are the caller's)."""
    entry = entries().get(name)
    if entry is None or entry.runtime is None:
        return skip_reason(name, mode, device, "fp32", False)
    rt = entry.runtime
    if not installed(name):
        return f"skipped: {rt.label} not installed (pip install '{EXTRA}')"
    if rt.int8_packages is None:
        return f"skipped: {rt.label} has no INT8 candidate"
    if absent := missing(name, int8=True):
        return f"skipped: {rt.label} INT8 needs {', '.join(absent)}, not installed (pip install '{EXTRA}')"
    if mode != "infer":
        return "skipped: INT8 is measured for inference only"
    if device != "cpu":
        return f"skipped: {rt.label} INT8 is measured on the CPU; use --device cpu"
    return None
