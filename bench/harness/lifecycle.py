"""A harness's life in a run, by its name: its own ``run`` options added to the parser
(``add_harness_arguments``), its optional hooks called (``harness_hook``, ``call_hook``:
``configure``, ``preflight``, ``prepare``, ``finalize``; ``bench.harness.base`` lists them),
and its configuration typed from its options' values (its ``configure`` hook), kept as plain
data for the run document (``config_as_dict``, ``config_options``) and built from keyword
options for Python callers (``split_options``, ``make_job``)."""

from __future__ import annotations

from typing import Any

from bench.errors import BenchError, ConfigError, error_text
from bench.harness.discovery import entries, harness_class

_ABSENT = object()


# -- options ----------------------------------------------------------------------------
def add_harness_arguments(
    parser, run_options: dict[str, str] | None = None, only: tuple[str, ...] | None = None
) -> dict[str, list[str]]:
    """Each harness's own ``run`` options in a group named after it; returns the option
    names (``dest``) each harness added, so that its configuration gets its own values.

    Harnesses may share an option (``--pretrained`` for fine-tuning and validation): the
    first to declare it defines it (and shows it in ``--help``), and every harness that
    declares it receives its value. ``run_options`` (option string -> dest) are run-wide
    options a harness may declare too (``--no-progress``): the run's option stands, and
    the harness receives its value. ``only``: these harnesses alone (``ab``: throughput).
    """
    dests: dict[str, list[str]] = {}
    # option string -> dest, across the run's shared options and the harnesses' groups
    declared: dict[str, str] = dict(run_options or {})
    for name, entry in entries().items():
        if only is not None and name not in only:
            continue
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


# -- hooks ------------------------------------------------------------------------------
def harness_hook(name: str, hook: str):
    """The hook ``hook`` of the harness called ``name``, or None when it has none."""
    return getattr(harness_class(name), hook, None)


def call_hook(name: str, hook: str, *args, default: Any = _ABSENT, doing: str = "") -> Any:
    """``hook(*args)`` of the harness called ``name``; ``default`` (else its first argument)
    when it has none. A failure that is not a ``BenchError`` becomes a ``ConfigError`` naming
    the harness (and what it was ``doing``), one line at the CLI."""
    fn = harness_hook(name, hook)
    if fn is None:
        return args[0] if default is _ABSENT else default
    try:
        return fn(*args)
    except BenchError:
        raise
    except Exception as e:
        raise ConfigError(f"Harness '{name}': {doing}{error_text(e)}") from e


# -- configuration ----------------------------------------------------------------------
def config_from_options(name: str, options: dict[str, Any], run) -> Any:
    """The harness's typed configuration from its own options' values (plain data); its
    ``configure`` hook when it has one, else the options themselves. ``--precision int8`` is
    refused (one line) for a harness without ``int8 = True``."""
    if getattr(run, "precision", None) == "int8" and not getattr(
        harness_class(name), "int8", False
    ):
        raise ConfigError(
            f"--precision int8: harness '{name}' has no INT8 path; INT8 speed is measured by "
            "--harness throughput with --runtime onnxruntime or openvino."
        )
    return call_hook(name, "configure", dict(options), run, default=dict(options))


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


def split_options(harness: str | None = None, **options):
    """(RunConfig, the harness's configuration) from keyword options named as their fields:
    run-wide ones (``device``, ``batch_sizes``, ``isolate``, ...) go to the RunConfig, the
    rest to the harness's ``configure``."""
    from bench.harness.base import RunConfig

    run_fields = set(RunConfig().as_dict())  # its own fields and its execution's
    run = RunConfig.from_dict({k: v for k, v in options.items() if k in run_fields})
    own = {k: v for k, v in options.items() if k not in run_fields}
    if harness is None:
        if own:
            raise ConfigError(f"Options {sorted(own)} belong to no harness; name the harness.")
        return run, None
    return run, config_from_options(harness, own, run)


def make_job(spec, harness: str | None = None, measured=None, **options):
    """A Job for ``harness`` with these options (see ``split_options``): for Python callers,
    tests and notebooks, ``make_job(spec, "throughput", device="cpu", batch_sizes=(4,))``."""
    from bench.harness.base import Job

    run, config = split_options(harness, **options)
    return Job(spec, run, config, measured=measured or {})
