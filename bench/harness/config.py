"""A harness's configuration: typed from its own options' values (its ``configure`` hook),
as plain data for the run document (``config_as_dict``), and built from keyword options for
Python callers (``split_options``, ``make_job``)."""

from __future__ import annotations

from typing import Any

from bench.errors import ConfigError
from bench.harness.hooks import call_hook


def config_from_options(name: str, options: dict[str, Any], run) -> Any:
    """The harness's typed configuration from its own options' values (plain data); its
    ``configure`` hook when it has one, else the options themselves."""
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
