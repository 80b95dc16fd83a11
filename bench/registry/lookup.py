"""The model registry: chapter cards, entry-point plugins, timm and torchvision by name.

Resolution order for a name:
1. a registered name (a model card, or a plugin's entry point);
2. ``torchvision:NAME`` for any torchvision classification model, ``timm:NAME`` to force timm;
3. any name timm knows (``resnet18``, ``mobilenetv3_large_100``, ``resnet50.a1_in1k``).
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError, DuplicateModelError, PluginError, UnknownModelError
from bench.registry.cards import ModelCard, chapter_table, conv_table, load_cards
from bench.registry.plugins import Plugin, find_plugins, load_plugin

logger = logging.getLogger(__name__)

TORCHVISION_PREFIX = "torchvision:"
TIMM_PREFIX = "timm:"
DEFAULT_INPUT_SIZE = (3, 224, 224)


def natural_key(name: str) -> list:
    """Sort key that puts resnet18 before resnet101."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.lower())]


@dataclass
class ModelSpec:
    """Everything the harnesses need to know about one model, and how to build it."""

    name: str
    source: str  # 'timm', 'torchvision', 'chapter' or a plugin's 'package[entry]'
    input_size: tuple[int, int, int] | None
    card: ModelCard | None = None
    builder: Callable[..., Any] | None = None
    target: str = ""  # the name in the source library
    build_kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set when the provider could not be loaded

    @property
    def in_chapter_table(self) -> bool:
        return bool(self.card and self.card.in_chapter_table)

    @property
    def num_classes(self) -> int:
        return self.card.num_classes if self.card else 1000

    def resolved_input_size(self) -> tuple[int, int, int]:
        return tuple(self.input_size or DEFAULT_INPUT_SIZE)

    def size_kwargs(self, img_size: int | None) -> dict[str, Any]:
        """Constructor arguments that make the model take ``img_size`` x ``img_size`` input,
        for the models that must be told (``{}`` for the others, which take any size):
        timm's fixed-size models (ViT, Swin, ...: ``img_size``; timm resamples their position
        embeddings, also when loading pretrained weights), torchvision's ViT (``image_size``),
        and plugins whose builder names an ``img_size`` parameter."""
        if not img_size or int(img_size) == self.resolved_input_size()[1]:
            return {}
        if self.source == "timm":
            return {"img_size": int(img_size)} if _timm_fixed_size(self.target) else {}
        if self.source == "torchvision":
            # torchvision's builders pass **kwargs on to the model class; its ViTs are the
            # family whose constructor needs the size (VisionTransformer(image_size=...))
            return {"image_size": int(img_size)} if self.target.startswith("vit_") else {}
        takes = _parameters(self.builder) if self.builder else set()
        return {"img_size": int(img_size)} if "img_size" in takes else {}

    def build(self, pretrained: bool = False, img_size: int | None = None, **kwargs):
        """Build the model (on the CPU, in train mode as every library returns it), for
        ``img_size`` input when given (see ``size_kwargs``)."""
        if self.error:
            raise PluginError(self.error)
        kw = {**self.build_kwargs, **self.size_kwargs(img_size), **kwargs}
        if self.source == "timm":
            import timm

            return timm.create_model(self.target, pretrained=pretrained, **kw)
        if self.source == "torchvision":
            return _build_torchvision(self.target, pretrained, kw)
        return self.builder(pretrained=pretrained, **kw)


def _parameters(fn) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _timm_fixed_size(name: str) -> bool:
    """Whether timm's model needs its input size at construction (``fixed_input_size``)."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name) or timm.models.get_pretrained_cfg(
            timm.models.get_arch_name(name)
        )
    except Exception:
        return False
    return bool(getattr(cfg, "fixed_input_size", False))


def _build_torchvision(name: str, pretrained: bool, kwargs: dict):
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT if pretrained else None
    if weights is not None and "num_classes" in kwargs:
        n = kwargs.pop("num_classes")
        model = tvm.get_model(name, weights=weights, **kwargs)
        if n != len(weights.meta["categories"]):
            from bench.registry.heads import reset_classifier

            reset_classifier(model, n)
        return model
    return tvm.get_model(name, weights=weights, **kwargs)


def _builder_input_size(builder) -> tuple[int, int, int] | None:
    """A plugin's default input size: ``builder.input_size`` or a timm-style cfg dict."""
    size = getattr(builder, "input_size", None)
    if size is None:
        cfg = getattr(builder, "pretrained_cfg", None) or getattr(builder, "default_cfg", None)
        if isinstance(cfg, dict):
            size = cfg.get("input_size")
    if size is None:
        return None
    size = tuple(int(v) for v in size)
    return size if len(size) == 3 else None


def _timm_input_size(name: str) -> tuple[int, int, int] | None:
    import timm

    cfg = timm.models.get_pretrained_cfg(name.split(".")[0] if "." not in name else name)
    if cfg is None:
        try:
            cfg = timm.models.get_pretrained_cfg(timm.models.get_arch_name(name))
        except Exception:
            cfg = None
    size = getattr(cfg, "input_size", None)
    return tuple(size) if size else None


def _torchvision_input_size(name: str) -> tuple[int, int, int]:
    import torchvision.models as tvm

    try:
        weights = tvm.get_model_weights(name).DEFAULT
        crop = weights.transforms().crop_size[0]
        return (3, int(crop), int(crop))
    except Exception:
        return DEFAULT_INPUT_SIZE


def _excluded(name: str, patterns: list[str]) -> bool:
    bare = name.split(":", 1)[1] if name.startswith((TIMM_PREFIX, TORCHVISION_PREFIX)) else name
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(bare, p) for p in patterns)


def _card_spec(card: ModelCard, plugin_specs: dict[str, list[ModelSpec]]) -> tuple[ModelSpec, str]:
    """A card's spec, and the provider it names (a chapter card is backed by one of cnn-bench's
    own entry points)."""
    if card.source != "chapter":
        spec = ModelSpec(
            name=card.name,
            source=card.source,
            input_size=card.input_size,
            card=card,
            target=card.builder,
            build_kwargs=dict(card.build_kwargs),
        )
        return spec, f"cnn-bench card {card.path} ({card.source})"
    backing = [s for s in plugin_specs.get(card.builder, []) if s.source.startswith("cnn-bench[")]
    if not backing:
        raise PluginError(
            f"Model card {card.path} names the built-in builder '{card.builder}', "
            "which is not among cnn-bench's entry points. Reinstall cnn-bench."
        )
    base = backing[0]
    spec = ModelSpec(
        name=card.name,
        source="chapter",
        input_size=card.input_size,
        card=card,
        builder=base.builder,
        target=base.target,
        build_kwargs=dict(card.build_kwargs),
        error=base.error,
    )
    return spec, f"cnn-bench card {card.path}"


class Registry:
    """Cards and plugins, loaded once; timm and torchvision looked up on demand."""

    def __init__(self, plugins: Sequence[Plugin] | None = None):
        self.cards: dict[str, ModelCard] = load_cards()
        self.plugins = list(find_plugins() if plugins is None else plugins)
        self.warnings: list[str] = []
        self.conflicts: dict[str, list[str]] = {}
        self._specs: dict[str, ModelSpec] = {}
        self._load()

    # -- assembling -------------------------------------------------------------------
    def _load(self) -> None:
        providers: dict[str, list[str]] = {}
        plugin_specs = self._plugin_specs()
        for card in self.cards.values():
            spec, provider = _card_spec(card, plugin_specs)
            providers.setdefault(card.name, []).append(provider)
            self._specs[card.name] = spec
        backed = {c.builder for c in self.cards.values() if c.source == "chapter"}
        for name, specs in plugin_specs.items():
            for spec in specs:
                if spec.source.startswith("cnn-bench[") and name in backed:
                    continue  # the card above is this entry point's public face
                providers.setdefault(name, []).append(f"plugin {spec.source}")
                self._specs.setdefault(name, spec)
        for name, who in providers.items():
            if len(who) > 1:
                self.conflicts[name] = who
                msg = f"Model name '{name}' is claimed by {' and by '.join(who)}."
                self.warnings.append(msg)  # shown once, by the CLI
                logger.debug("%s", msg)

    def _plugin_specs(self) -> dict[str, list[ModelSpec]]:
        """Every plugin's spec by name; one that cannot be loaded carries its error (and a
        warning is kept for the CLI)."""
        plugin_specs: dict[str, list[ModelSpec]] = {}
        for plugin in self.plugins:
            try:
                builder, error = load_plugin(plugin), None
            except PluginError as e:
                builder, error = None, str(e)
                self.warnings.append(str(e))  # shown once, by the CLI
                logger.debug("%s", e)
            spec = ModelSpec(
                name=plugin.name,
                source=plugin.display,
                input_size=_builder_input_size(builder) if builder else None,
                builder=builder,
                target=plugin.value,
                error=error,
            )
            plugin_specs.setdefault(plugin.name, []).append(spec)
        return plugin_specs

    # -- queries ----------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._specs, key=natural_key)

    def chapter_models(self) -> list[str]:
        """The chapter's table in its order, then the chapter's own models."""
        table = [c.name for c in chapter_table()]
        own = [
            c.name
            for c in self.cards.values()
            if c.source == "chapter" and not c.in_chapter_table and c.conv_table is None
        ]
        return table + own

    def conv_type_models(self) -> list[str]:
        """The chapter's table of convolution types, one single-layer model a row."""
        return [c.name for c in conv_table()]

    def list_models(
        self,
        patterns: Iterable[str] = (),
        exclude: Iterable[str] = (),
        include_timm: bool = False,
        include_torchvision: bool = False,
    ) -> list[str]:
        """Names matching any of the shell-style patterns (all when none), naturally sorted."""
        pool = set(self._specs)
        if include_timm:
            import timm

            pool.update(timm.list_models())
        if include_torchvision:
            import torchvision.models as tvm

            pool.update(TORCHVISION_PREFIX + n for n in tvm.list_models(module=tvm))
        patterns = list(patterns)
        if patterns:
            pool = {n for n in pool if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
        exclude = list(exclude)
        if exclude:
            pool = {n for n in pool if not any(fnmatch.fnmatchcase(n, p) for p in exclude)}
        return sorted(pool, key=natural_key)

    def _known_for_hints(self) -> list[str]:
        names = list(self._specs)
        try:
            import timm

            names += timm.list_models()
        except ImportError:  # pragma: no cover
            pass
        return names

    def get(self, name: str) -> ModelSpec:
        """The spec for one exact name (no wildcards)."""
        if name in self.conflicts:
            raise DuplicateModelError(
                f"Model name '{name}' is claimed by {' and by '.join(self.conflicts[name])}; "
                "uninstall one of them or rename its entry point."
            )
        if name in self._specs:
            return self._specs[name]
        if name.startswith(TORCHVISION_PREFIX):
            import torchvision.models as tvm

            target = name[len(TORCHVISION_PREFIX) :]
            if target not in tvm.list_models():
                raise UnknownModelError(target, list(tvm.list_models())) from None
            return ModelSpec(name, "torchvision", _torchvision_input_size(target), target=target)
        target = name[len(TIMM_PREFIX) :] if name.startswith(TIMM_PREFIX) else name
        import timm

        if timm.is_model(target):
            return ModelSpec(name, "timm", _timm_input_size(target), target=target)
        raise UnknownModelError(name, self._known_for_hints())

    def catalogue(self, source: str, pattern: str = "*") -> list[str]:
        """A source's own catalogue by shell wildcard: ``timm`` (timm's names, the
        architectures without pretrained tags) or ``torchvision`` (as 'torchvision:NAME')."""
        if source == "timm":
            import timm

            names = timm.list_models(pattern)
        else:
            import torchvision.models as tvm

            found = tvm.list_models(module=tvm)
            names = [TORCHVISION_PREFIX + n for n in found if fnmatch.fnmatchcase(n, pattern)]
        return sorted(names, key=natural_key)

    def _expand(self, token: str) -> list[str]:
        """One ``--models`` token as names."""
        if token == "chapter":
            return self.chapter_models()
        if token == "conv_types":
            return self.conv_type_models()
        if not any(ch in token for ch in "*?["):
            return [token]
        for prefix in (TIMM_PREFIX, TORCHVISION_PREFIX):
            if token.startswith(prefix):
                matched = self.catalogue(prefix[:-1], token[len(prefix) :])
                break
        else:
            matched = self.list_models([token]) or self.list_models([token], include_timm=True)
        if not matched:
            raise ConfigError(
                f"The pattern '{token}' matches no model. See 'python -m bench list --all'."
            )
        return matched

    def resolve(self, tokens: str | Iterable[str], exclude: Iterable[str] = ()) -> list[ModelSpec]:
        """Expand ``--models``: names, 'chapter', 'conv_types', wildcards, a source's
        catalogue ('timm:*', 'timm:resnet*', 'torchvision:*'), less the names matching any
        ``exclude`` wildcard (tried with and without a 'timm:'/'torchvision:' prefix);
        every name is checked before anything is measured."""
        if isinstance(tokens, str):
            tokens = tokens.split(",")
        names: list[str] = []
        for token in (t.strip() for t in tokens):
            if token:
                names += self._expand(token)
        exclude = [e for e in exclude if e]
        if exclude:
            names = [n for n in names if not _excluded(n, exclude)]
        if not names:
            raise ConfigError(
                "No models given (or --exclude removed them all). Pass --models NAME[,NAME...] "
                "or --models chapter."
            )
        specs = [self.get(n) for n in dict.fromkeys(names)]
        for spec in specs:
            if spec.error:
                raise PluginError(spec.error)
        return specs
