"""Each harness's own ``run`` options, in an argparse group named after it."""

from __future__ import annotations

from bench.harness.discovery import entries


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
