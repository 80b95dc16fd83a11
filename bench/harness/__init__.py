"""Harnesses say *what* is measured; the runner says how it is run.

Harnesses plug in through the entry-point group ``cnn_bench.harnesses``, cnn-bench's own
included (declared in its pyproject.toml; ``BUILTIN_HARNESSES`` stands in for them in a
checkout that is not installed), found, loaded and checked as model plugins are. The contract
is written in ``bench.harness.base``. Harness modules are cheap to import: torch and friends
are imported inside their functions, so that ``--help`` and ``list`` stay fast.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

from bench.errors import (
    BenchError,
    ConfigError,
    PluginError,
    UnknownHarnessError,
    error_text,
)
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
    return _entry(name).target


def _entry(name: str) -> HarnessEntry:
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
        _entry(n)
    order = list(found)
    return sorted(dict.fromkeys(names), key=order.index)


def get_harness(name: str):
    """A new instance of the harness called ``name``."""
    return _entry(name).cls()


def harness_class(name: str) -> type:
    return _entry(name).cls


def add_harness_arguments(parser) -> dict[str, list[str]]:
    """Each harness's own ``run`` options in a group named after it; returns the option
    names (``dest``) each harness added, so that its configuration gets its own values.

    Harnesses may share an option (``--pretrained`` for fine-tuning and validation): the
    first to declare it defines it (and shows it in ``--help``), and every harness that
    declares it receives its value.
    """
    dests: dict[str, list[str]] = {}
    declared: dict[str, str] = {}  # option string -> dest, across the harnesses' groups
    for name, entry in entries().items():
        add = getattr(entry.cls, "add_arguments", None) if entry.cls else None
        if add is None:
            continue
        group = _Recorder(parser.add_argument_group(f"{name} harness"), declared)
        add(group)
        dests[name] = group.dests
    return dests


class _Recorder:
    """An argument group that remembers the ``dest`` of every option added to it, and lets
    an option another harness declared already stand (its value reaches both)."""

    def __init__(self, group, declared: dict[str, str]):
        self._group = group
        self._declared = declared
        self.dests: list[str] = []

    def add_argument(self, *args, **kwargs):
        shared = [a for a in args if a in self._declared]
        if shared:
            self.dests.append(self._declared[shared[0]])
            return None
        action = self._group.add_argument(*args, **kwargs)
        self.dests.append(action.dest)
        for flag in action.option_strings:
            self._declared[flag] = action.dest
        return action


def configure(name: str, options: dict[str, Any], run) -> Any:
    """The harness's typed configuration from its own options' values (plain data); its
    ``configure`` hook when it has one, else the options themselves."""
    cls = harness_class(name)
    hook = getattr(cls, "configure", None)
    if hook is None:
        return dict(options)
    try:
        return hook(dict(options), run)
    except BenchError:
        raise
    except Exception as e:
        raise ConfigError(f"Harness '{name}': {error_text(e)}") from e


def config_as_dict(config) -> dict[str, Any]:
    """A harness configuration as plain data, for the results and the isolated worker."""
    import dataclasses

    if dataclasses.is_dataclass(config):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return dict(config or {})


def config_options(config) -> dict[str, Any]:
    """The options a configuration was given: ``config_as_dict`` without the fields a
    harness measured for the run (``metadata={"measured": True}``, like the throughput
    harness's peaks), which differ between a run and its ``--resume``."""
    import dataclasses

    if not dataclasses.is_dataclass(config):
        return config_as_dict(config)
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if not f.metadata.get("measured")
    }


def finalize(name: str, config, records: list[dict]) -> list[dict]:
    """The harness's last word on its records when the run ends (optional hook): the
    throughput harness sets every row against the run's best peak."""
    hook = getattr(harness_class(name), "finalize", None)
    return records if hook is None else hook(config, records)


def preflight(name: str, config) -> None:
    """The harness's check of its configuration before anything is measured (optional)."""
    check = getattr(harness_class(name), "preflight", None)
    if check is None:
        return
    try:
        check(config)
    except BenchError:
        raise
    except Exception as e:
        raise ConfigError(f"Harness '{name}': {error_text(e)}") from e


def prepare(name: str, config, run) -> Any:
    """The harness's once-per-run preparation of its configuration (optional hook)."""
    hook = getattr(harness_class(name), "prepare", None)
    if hook is None:
        return config
    try:
        return hook(config, run)
    except BenchError:
        raise
    except Exception as e:
        raise ConfigError(f"Harness '{name}': preparing the run failed: {error_text(e)}") from e


def split_options(harness: str | None = None, **options):
    """(RunConfig, the harness's configuration) from keyword options named as their fields:
    run-wide ones (``device``, ``batch_sizes``, ``isolate``, ...) go to the RunConfig, the
    rest to the harness's ``configure``."""
    from dataclasses import fields

    from bench.harness.base import RunConfig

    run_fields = {f.name for f in fields(RunConfig)}
    run = RunConfig(**{k: v for k, v in options.items() if k in run_fields})
    own = {k: v for k, v in options.items() if k not in run_fields}
    if harness is None:
        if own:
            raise ConfigError(f"Options {sorted(own)} belong to no harness; name the harness.")
        return run, None
    return run, configure(harness, own, run)


def make_job(spec, harness: str | None = None, measured=None, **options):
    """A Job for ``harness`` with these options (see ``split_options``): for Python callers,
    tests and notebooks, ``make_job(spec, "throughput", device="cpu", batch_sizes=(4,))``."""
    from bench.harness.base import Job

    run, config = split_options(harness, **options)
    return Job(spec, run, config, measured=measured or {})
