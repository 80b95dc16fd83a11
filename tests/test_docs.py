"""The README and docs/: short enough to read, a table of contents, and no broken link.

Links are checked the way GitHub renders them: a relative path resolves from the file that
holds it, and a ``#anchor`` names a heading by GitHub's slug (lower case, punctuation dropped,
spaces as hyphens, ``-1``, ``-2`` ... for repeats). Code blocks and code spans are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 200

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links_in(lines: list[str]) -> list[str]:
    """Link targets (images too) in prose lines, code spans left out."""
    return [t for line in lines for t in _LINK.findall(_CODE_SPAN.sub("", line))]


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links_in(prose_lines(path.read_text(encoding="utf-8"))):
        if _SCHEME.match(target):
            continue  # a web address: not checked offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT)}")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    return broken


def test_readme_fits_on_a_few_screens():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; at most {MAX_README_LINES}"


def test_readme_contents_lists_every_section():
    lines = prose_lines(README.read_text(encoding="utf-8"))
    sections = [
        slug(m.group(2)) for line in lines if (m := _HEADING.match(line)) and m.group(1) == "##"
    ]
    assert sections[0] == "contents", "the README's first section is its table of contents"
    toc_start = lines.index("## Contents")
    toc_end = next(i for i in range(toc_start + 1, len(lines)) if lines[i].startswith("## "))
    listed = {t.lstrip("#") for t in links_in(lines[toc_start:toc_end]) if t.startswith("#")}
    assert listed == set(sections[1:])


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_where_things_live_names_every_part_of_bench():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "## Where things live" in text
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    parts = [
        p.name + ("/" if p.is_dir() else "")
        for p in (ROOT / "bench").iterdir()
        if p.name != "__init__.py" and p.name != "__pycache__" and (p.is_dir() or p.suffix == ".py")
    ]
    missing = sorted(p for p in parts if f"`bench/{p}`" not in section)
    assert missing == [], f"docs/architecture.md's map lacks {missing}"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("The chapter's anti-patterns, measured", "the-chapters-anti-patterns-measured"),
        ("Fine-tuned accuracy (`--harness finetune`)", "fine-tuned-accuracy---harness-finetune"),
        ("Sweeps, resume and the Ray executor", "sweeps-resume-and-the-ray-executor"),
    ],
)
def test_slugs_follow_github(heading, expected):
    assert slug(heading) == expected
