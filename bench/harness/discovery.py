"""Finding the harnesses: built-ins and plugins of the entry-point group ``cnn_bench.harnesses``,
and those registered from Python (``HARNESSES``), loaded and checked as model plugins are, and
each name resolved once to its class and ``module:Class`` target (``resolve_harness``)."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError, PluginError, UnknownHarnessError
from bench.registry.plugins import Plugin, find_plugins, import_entry_point

logger = logging.getLogger(__name__)

GROUP = "cnn_bench.harnesses"

# Keep in step with [project.entry-points."cnn_bench.harnesses"] in pyproject.toml
# (tests/test_plugins.py checks that they agree). The order is the order they run in.
BUILTIN_HARNESSES: dict[str, str] = {
    "params": "bench.harness.params:ParamsHarness",
    "flops": "bench.harness.flops:FlopsHarness",
    "depth": "bench.harness.depth:DepthHarness",
    "throughput": "bench.harness.throughput:ThroughputHarness",
    "finetune": "bench.harness.finetune.harness:FinetuneHarness",
    "validate": "bench.harness.validate:ValidateHarness",
}

# What `run` measures when --harness is not given.
DEFAULT_HARNESSES: tuple[str, ...] = ("params", "flops", "depth", "throughput")

# Extra harnesses registered from Python (tests, notebooks): name -> "module:Class".
HARNESSES: dict[str, str] = {}


@dataclass
class HarnessEntry:
    """One harness as found: its name, where it comes from, and its class once loaded."""

    name: str
    target: str  # "module:Class"
    provider: str  # "cnn-bench[params]", "package[entry]" or "python"
    cls: type | None = None
    error: str | None = None

    @property
    def counts_only(self) -> bool:
        """Whether it only counts (``params``, ``flops``, ``depth``), read from its class."""
        return bool(getattr(self.cls, "counts_only", False))


def _validate(plugin_display: str, name: str, obj) -> type:
    if not inspect.isclass(obj):
        raise PluginError(
            f"Harness plugin {plugin_display} points at a {type(obj).__name__}, not a class; "
            "the entry point must name a class with 'name' and 'measure(job)'."
        )
    if not callable(getattr(obj, "measure", None)):
        raise PluginError(f"Harness plugin {plugin_display}: {obj.__name__} has no measure(job).")
    declared = getattr(obj, "name", name)
    if declared != name:
        raise PluginError(
            f"Harness plugin {plugin_display}: the class says name = '{declared}' but the entry "
            f"point is called '{name}'; make them agree."
        )
    return obj


def discover() -> tuple[dict[str, HarnessEntry], list[str]]:
    """Every harness (built-ins first, in their order), loaded; and the warnings to show.

    A plugin that fails to load stays listed with its error (asking for it shows the error);
    two providers of one name keep the first (cnn-bench's own) and warn.
    """
    entries: dict[str, HarnessEntry] = {}
    warnings: list[str] = []
    plugins: list[Plugin] = find_plugins(GROUP, BUILTIN_HARNESSES)
    builtin_order = list(BUILTIN_HARNESSES)
    plugins.sort(key=lambda p: (not p.builtin, _order(builtin_order, p.name), p.name))
    found = [(p.name, p.value, p.display, p) for p in plugins]
    found += [(n, t, "python", None) for n, t in HARNESSES.items()]
    for name, target, provider, plugin in found:
        if name in entries and plugin is not None:
            warnings.append(
                f"Harness '{name}' is provided by both {entries[name].provider} and "
                f"{provider}; {entries[name].provider} is used. Rename one entry point."
            )
            continue
        entry = HarnessEntry(name, target, provider)
        try:
            obj = import_entry_point(plugin, GROUP) if plugin else _import(target)
            entry.cls = _validate(provider, name, obj)
        except BenchError as e:
            entry.error = str(e)
            warnings.append(str(e))
        entries[name] = entry
    return entries, warnings


def _order(order: list[str], name: str) -> int:
    return order.index(name) if name in order else len(order)


def _import(target: str):
    import importlib

    module, cls = target.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except Exception as e:
        raise PluginError(f"Harness {target} failed to load: {type(e).__name__}: {e}") from e


_CACHE: dict[str, Any] = {}


def entries() -> dict[str, HarnessEntry]:
    """The harnesses of this process (discovered once; ``HARNESSES`` changes are seen)."""
    key = tuple(sorted(HARNESSES.items()))
    if _CACHE.get("key") != key:
        _CACHE["entries"], _CACHE["warnings"] = discover()
        _CACHE["key"] = key
    return _CACHE["entries"]


def warnings() -> list[str]:
    entries()
    return list(_CACHE["warnings"])


def harness_names() -> list[str]:
    return list(entries())


def harness_target(name: str) -> str:
    """Where the harness called ``name`` lives, as ``module:Class``."""
    return resolve_harness(name).target


def resolve_harness(name: str) -> HarnessEntry:
    """The loaded harness called ``name`` (its class and target); unknown or broken: an error."""
    found = entries()
    if name not in found:
        raise UnknownHarnessError(
            f"Unknown harness '{name}'. Choose from: {', '.join(found)} (or 'all'); "
            "'python -m bench list --harnesses' shows where each comes from."
        )
    entry = found[name]
    if entry.cls is None:
        raise PluginError(entry.error or f"Harness '{name}' could not be loaded.")
    return entry


def parse_harnesses(text: str | None) -> list[str]:
    """``--harness`` as a list of names in run order; unknown names are an error."""
    if not text:
        return list(DEFAULT_HARNESSES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    found = entries()
    if names == ["all"]:
        return [n for n, e in found.items() if e.cls is not None]
    for n in names:
        resolve_harness(n)
    order = list(found)
    return sorted(dict.fromkeys(names), key=order.index)


def get_harness(name: str):
    """A new instance of the harness called ``name``."""
    return resolve_harness(name).cls()


def harness_class(name: str) -> type:
    return resolve_harness(name).cls
