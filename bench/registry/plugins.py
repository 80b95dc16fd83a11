"""Entry-point plugins in three pure steps: find, load, validate.

A plugin is an entry point in the group ``cnn_bench.models`` whose object is a model
builder: a callable ``builder(pretrained=False, **kwargs) -> torch.nn.Module``. The entry
point's name is the model's name. cnn-bench's own chapter models are declared the same way
in its pyproject.toml; from a checkout that is not installed they are added from
``BUILTIN_ENTRY_POINTS`` below, so both paths run the same code.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import metadata

from bench.errors import PluginError

logger = logging.getLogger(__name__)

GROUP = "cnn_bench.models"
DISTRIBUTION = "cnn-bench"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

# Keep in step with [project.entry-points."cnn_bench.models"] in pyproject.toml
# (tests/test_plugins.py checks that they agree).
BUILTIN_ENTRY_POINTS = {
    "lenet5": "bench.models.chapter:lenet5",
    "simple_cnn": "bench.models.chapter:simple_cnn",
    "chapter_resnet": "bench.models.chapter:chapter_resnet",
    "resnet50_transfer": "bench.models.chapter:resnet50_transfer",
    "conv_standard": "bench.models.conv_types:conv_standard",
    "conv_1x1": "bench.models.conv_types:conv_1x1",
    "conv_depthwise": "bench.models.conv_types:conv_depthwise",
    "conv_separable": "bench.models.conv_types:conv_separable",
    "conv_dilated": "bench.models.conv_types:conv_dilated",
    "conv_transposed": "bench.models.conv_types:conv_transposed",
}


def _normalize(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


@dataclass(frozen=True)
class Plugin:
    """A found (not yet loaded) entry point."""

    name: str
    value: str
    distribution: str

    @property
    def display(self) -> str:
        """How plugins are shown everywhere: ``package[entry]``."""
        return f"{self.distribution}[{self.name}]"

    @property
    def builtin(self) -> bool:
        return _normalize(self.distribution) == DISTRIBUTION


def find_plugins(group: str = GROUP, builtins: dict[str, str] | None = None) -> list[Plugin]:
    """Scan installed distributions for ``group``, de-duplicated and sorted (cnn-bench's own
    first). From a checkout that is not installed, ``builtins`` stand in for cnn-bench's."""
    builtins = BUILTIN_ENTRY_POINTS if builtins is None else builtins
    found: dict[tuple[str, str], Plugin] = {}
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] or "unknown"
        for ep in dist.entry_points:
            if ep.group != group:
                continue
            key = (_normalize(dist_name), ep.name)
            found.setdefault(key, Plugin(ep.name, ep.value, dist_name))
    if not any(_normalize(d) == DISTRIBUTION for d, _ in found):
        for name, value in builtins.items():
            found[(DISTRIBUTION, name)] = Plugin(name, value, DISTRIBUTION)
    return sorted(found.values(), key=lambda p: (not p.builtin, _normalize(p.distribution), p.name))


def import_entry_point(plugin: Plugin, group: str = GROUP):
    """Import the entry point's object; any failure becomes a PluginError naming it."""
    ep = metadata.EntryPoint(name=plugin.name, value=plugin.value, group=group)
    try:
        return ep.load()
    except Exception as e:
        raise PluginError(
            f"Plugin {plugin.display} ({plugin.value}) failed to load: {type(e).__name__}: {e}. "
            f"Fix or uninstall the '{plugin.distribution}' package."
        ) from e


def load_plugin(plugin: Plugin):
    """Import a model plugin's builder and check it; any failure is a PluginError naming it."""
    obj = import_entry_point(plugin)
    validate_plugin(plugin, obj)
    return obj


def validate_plugin(plugin: Plugin, obj) -> None:
    if not NAME_RE.match(plugin.name):
        raise PluginError(
            f"Plugin {plugin.display}: '{plugin.name}' is not a valid model name "
            "(letters, digits, '_', '-', '.'; no spaces or wildcards)."
        )
    if not callable(obj):
        raise PluginError(
            f"Plugin {plugin.display} points at a {type(obj).__name__}, not a model builder; "
            "the entry point must name a function builder(pretrained=False, **kwargs) -> nn.Module."
        )
