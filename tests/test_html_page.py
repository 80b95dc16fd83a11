"""reports/index.html without a browser: stable bytes, nothing fetched from a network, every
section and its provenance present. The browser's checks are in test_html_browser.py."""

from __future__ import annotations

import collections
import itertools
from html.parser import HTMLParser

import pytest
from conftest import REPO, STORE

from bench.report.generate import generate
from bench.report.html import write_page
from bench.report.html.plots import pareto_front
from bench.report.records import read_records

FIXTURE = REPO / "tests" / "data" / "results"
RESULTS = STORE
SECTIONS = ("chapter", "throughput", "candidates", "finetune", "validate", "antipatterns",
            "trends", "conv-types", "failures", "runs")  # fmt: skip


class _Refs(HTMLParser):
    """Every attribute that makes a browser fetch or navigate, and every id."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()
        self.all_ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data") and value:
                self.refs.append(value)
            if name == "id":
                self.ids.add(value)
                self.all_ids.append(value)


def _refs(text: str) -> _Refs:
    parser = _Refs()
    parser.feed(text)
    return parser


def _check_offline(text: str) -> None:
    refs = _refs(text)
    outside = [r for r in refs.refs if not r.startswith(("#", "data:"))]
    assert outside == [], f"references outside the page: {outside[:5]}"
    for needle in ("http://", "https://", "url(", "@import", "fetch(", "XMLHttpRequest"):
        in_code = [p for p in text.split("<style>")[1:] + text.split("<script>")[1:]
                   if needle in p.split("</")[0]]  # fmt: skip
        assert not in_code, f"{needle} in the page's style or script"
    broken = [r for r in refs.refs if r.startswith("#") and r[1:] not in refs.ids]
    assert broken == [], f"links to no anchor: {sorted(set(broken))[:5]}"


def test_page_is_written_beside_the_markdown_and_stable(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    written = generate(FIXTURE, first)
    generate(FIXTURE, second)
    assert first / "index.html" in written
    assert (first / "index.html").read_bytes() == (second / "index.html").read_bytes()
    text = (first / "index.html").read_text()
    _check_offline(text)
    for section in SECTIONS:
        assert f'<section id="{section}">' in text or f'<h3 id="{section}">' in text
    assert "run newer000" in text  # provenance in a row's title


def test_empty_store_gives_a_page(tmp_path):
    generate(tmp_path / "none", tmp_path / "out")
    text = (tmp_path / "out" / "index.html").read_text()
    assert "ResNet-50" in text  # the chapter's table lists its cards before any record
    assert "No runs yet." in text
    _check_offline(text)


@pytest.mark.slow
def test_committed_results_give_the_same_page_twice(tmp_path):
    records = read_records(RESULTS)
    a = write_page(records, tmp_path / "a").read_bytes()
    b = write_page(records, tmp_path / "b").read_bytes()
    assert a == b
    _check_offline(a.decode())


def test_pareto_front_keeps_what_nothing_beats():
    points = [(100.0, 70.0, "fast"), (10.0, 80.0, "accurate"), (50.0, 60.0, "beaten"),
              (10.0, 75.0, "tie-speed, worse")]  # fmt: skip
    assert [p[2] for p in pareto_front(points)] == ["fast", "accurate"]


# -- one page holds every table -------------------------------------------------------------
def _markdown_tables(text: str) -> list[tuple[str, ...]]:
    """The header of every markdown table in ``text``."""
    import re

    lines = text.splitlines()
    return [
        tuple(c.strip() for c in line.strip().strip("|").split("|"))
        for line, below in itertools.pairwise(lines)
        if line.startswith("|") and re.fullmatch(r"\|[:\- |]+\|", below)
    ]


def _page_tables(page: str) -> set[tuple[str, ...]]:
    import re
    from html import unescape

    heads = re.findall(r"<thead><tr>(.*?)</tr></thead>", page)
    return {tuple(unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", t)) for t in heads}


def tables_missing_from_page(out) -> dict[str, list[tuple[str, ...]]]:
    """Per markdown file, the distinct tables whose columns no table of the page has."""
    page = _page_tables((out / "index.html").read_text(encoding="utf-8"))
    missing = {}
    for path in sorted(out.glob("*.md")):
        lacking = [h for h in dict.fromkeys(_markdown_tables(path.read_text())) if h not in page]
        if lacking:
            missing[path.name] = lacking
    return missing


def test_every_markdown_table_is_on_the_page(committed_reports):
    """Every section computes its tables once and both renderers draw them, so every distinct
    markdown table of every report has a table with the same columns on the page."""
    assert tables_missing_from_page(committed_reports) == {}


def test_the_pages_ids_are_unique(committed_reports):
    ids = _refs((committed_reports / "index.html").read_text(encoding="utf-8")).all_ids
    assert len(ids) > 100
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []


def test_a_markdown_table_missing_from_the_page_is_found(tmp_path):
    (tmp_path / "index.html").write_text("<table><thead><tr><th>A</th></tr></thead></table>")
    (tmp_path / "x.md").write_text("| A |\n|---|\n| 1 |\n\n| A | B |\n|:--|--:|\n| 1 | 2 |\n")
    assert tables_missing_from_page(tmp_path) == {"x.md": [("A", "B")]}
