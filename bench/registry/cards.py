"""Model cards: the reviewed data in ``registry/`` about each chapter architecture.

Cards are TOML files. From a checkout they are read from ``registry/`` at the top of the
repository; from an installed wheel, from the data package ``bench._cards`` that the
wheel builds out of the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

from bench.errors import CardError

SOURCES = ("timm", "torchvision", "chapter")


@dataclass(frozen=True)
class ChapterRow:
    """One row of the chapter's comparison table, as printed (strings, '-' when blank)."""

    row: int = 0
    layers: str = "-"
    params: str = "-"
    top1: str = "-"
    innovation: str = ""
    # What the chapter counts as layers where it is not the depth harness's weight layers on the
    # longest path (ViT-B/16's 12 are transformer blocks): the report says "counts differently".
    layers_counts: str = ""
    # What a reviewer found the chapter's top-1 to be, where it matches no reference (AlexNet's
    # 63.3% is the paper's 7-CNN ensemble): the report's verdict names it.
    top1_is: str = ""


@dataclass(frozen=True)
class Published:
    """The figures of published weights (torchvision's or timm's weight metadata) or a hand
    count, each with where it comes from: the top-1 here is that of the weights, not the
    paper's (``Paper``)."""

    params: int | None = None
    params_source: str = ""
    gmacs: float | None = None
    gmacs_source: str = ""
    top1: float | None = None
    top1_source: str = ""
    depth: int | None = None
    depth_source: str = ""


@dataclass(frozen=True)
class Paper:
    """The figures of the architecture's own paper (``[paper]`` in its card): ImageNet-1k top-1
    and parameters, each None where the paper gives none, and ``source``: the paper, the table
    and the setting (or why there is no figure)."""

    top1: float | None = None
    params: float | None = None
    source: str = ""


@dataclass(frozen=True)
class ConvRow:
    """One row of the chapter's table of convolution types, as printed."""

    row: int = 0
    params: str = ""
    compute: str = ""
    use: str = ""
    feature: str = ""


@dataclass(frozen=True)
class FinetuneRecipe:
    """A model's own fine-tune defaults, where the harness's cannot serve it (``[finetune]``
    in its card): the peak rate from scratch and the batch size. ``--lr`` and ``--batch-size``
    on the command line still win. ``why`` says what was measured."""

    lr: float | None = None
    batch_size: int | None = None
    why: str = ""

    def __post_init__(self):
        if self.lr is not None and not float(self.lr) > 0:
            raise CardError(f"[finetune] lr must be positive, not {self.lr}.")
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 2
        ):
            raise CardError(
                f"[finetune] batch_size must be a whole number of at least 2, "
                f"not {self.batch_size!r}."
            )


@dataclass(frozen=True)
class ModelCard:
    name: str
    display_name: str
    source: str
    builder: str
    input_size: tuple[int, int, int]
    in_chapter_table: bool = False
    year: int | None = None
    num_classes: int = 1000
    build_kwargs: dict[str, Any] = field(default_factory=dict)
    chapter: ChapterRow | None = None
    published: Published = field(default_factory=Published)
    paper: Paper = field(default_factory=Paper)
    conv_table: ConvRow | None = None
    formula: dict[str, str] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    finetune: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    path: str = ""

    def formula_value(self, key: str) -> int | None:
        """A formula of the card ('params', 'macs') evaluated at its dims."""
        if key not in self.formula:
            return None
        return evaluate(self.formula[key], self.dims, self.path)


def evaluate(expression: str, names: dict[str, int], origin: str = "") -> int:
    """Evaluate products and sums of names and whole numbers, and nothing else."""
    import ast

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = walk(node.left), walk(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return int(names[node.id])
        raise CardError(
            f"Formula '{expression}' in {origin or 'a card'} may use only + and * of whole "
            f"numbers and the dims {', '.join(sorted(names))}."
        )

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise CardError(f"Formula '{expression}' in {origin} does not parse: {e.msg}.") from e
    return walk(tree)


def _card_dir():
    """The folder holding the cards: the checkout's registry/, else the installed data."""
    checkout = Path(__file__).resolve().parents[2] / "registry"
    if checkout.is_dir() and any(checkout.glob("*.toml")):
        return checkout
    try:
        return resources.files("bench._cards")
    except ModuleNotFoundError as e:  # pragma: no cover - a broken install
        raise CardError(
            "Model cards not found: neither registry/ beside the bench package nor the "
            "installed bench._cards data. Reinstall cnn-bench ('pip install .')."
        ) from e


def parse_card(text: str, origin: str) -> ModelCard:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"Model card {origin} is not valid TOML: {e}. Fix the file.") from e
    missing = [
        k for k in ("name", "display_name", "source", "builder", "input_size") if k not in raw
    ]
    if missing:
        raise CardError(f"Model card {origin} lacks {', '.join(missing)}; add them.")
    if raw["source"] not in SOURCES:
        raise CardError(
            f"Model card {origin} has source '{raw['source']}'; expected one of {', '.join(SOURCES)}."
        )
    size = tuple(int(v) for v in raw["input_size"])
    if len(size) != 3:
        raise CardError(f"Model card {origin}: input_size must be [channels, height, width].")
    try:
        return ModelCard(
            name=raw["name"],
            display_name=raw["display_name"],
            source=raw["source"],
            builder=raw["builder"],
            input_size=size,
            in_chapter_table=bool(raw.get("in_chapter_table", False)),
            year=raw.get("year"),
            num_classes=int(raw.get("num_classes", 1000)),
            build_kwargs=dict(raw.get("build_kwargs", {})),
            chapter=ChapterRow(**raw["chapter"]) if "chapter" in raw else None,
            published=Published(**raw.get("published", {})),
            paper=Paper(**raw.get("paper", {})),
            conv_table=ConvRow(**raw["conv_table"]) if "conv_table" in raw else None,
            formula=dict(raw.get("formula", {})),
            dims={k: int(v) for k, v in raw.get("dims", {}).items()},
            finetune=FinetuneRecipe(**raw.get("finetune", {})),
            path=origin,
        )
    except TypeError as e:
        raise CardError(f"Model card {origin} has an unknown field: {e}.") from e
    except CardError as e:
        raise CardError(f"Model card {origin}: {e}") from e


@cache
def load_cards() -> dict[str, ModelCard]:
    """All cards by model name, in file-name order."""
    folder = _card_dir()
    cards: dict[str, ModelCard] = {}
    entries = sorted(
        (p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name
    )
    for entry in entries:
        card = parse_card(entry.read_text(encoding="utf-8"), f"registry/{entry.name}")
        if card.name in cards:
            raise CardError(
                f"Two model cards are named '{card.name}': {cards[card.name].path} and {card.path}."
            )
        cards[card.name] = card
    return cards


def conv_table() -> list[ModelCard]:
    """The cards of the chapter's table of convolution types, in its order."""
    rows = [c for c in load_cards().values() if c.conv_table is not None]
    return sorted(rows, key=lambda c: c.conv_table.row)


def chapter_table() -> list[ModelCard]:
    """The cards of the chapter's comparison table, in the chapter's order."""
    rows = [c for c in load_cards().values() if c.in_chapter_table]
    return sorted(rows, key=lambda c: c.chapter.row if c.chapter else 0)
