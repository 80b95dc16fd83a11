"""Report blocks drawn twice: the markdown (``bench.report.blocks.markdown``) and the page
(``bench.report.html.blocks.page_blocks``) show the same table from the same rows."""

from __future__ import annotations

from bench.report.blocks import Heading, Notes, Para, Tbl, markdown
from bench.report.fmt import Footnotes
from bench.report.html.blocks import page_blocks
from bench.report.html.render import Table

REC = {"run_id": "r0000001", "started_utc": "2026-01-01T00:00:00Z", "device_name": "Test CPU"}


def _tables(blocks: list) -> list[Table]:
    return [b for b in blocks if isinstance(b, Table)]


def test_a_footnote_is_written_under_its_table_and_hovers_on_the_page():
    notes = Footnotes()
    first = Tbl("a", ({"Model": "x", "Note": notes.numbered("n", "first note")},))
    later = Tbl("b", ({"Model": "y", "Note": notes.numbered("n", "later note")},))
    blocks = [Heading("A"), first, Notes(), Heading("B"), later, Notes()]
    lines = markdown(blocks, notes)
    assert lines.index("[^n1]: first note") < lines.index("## B") < lines.index("[^n2]: later note")
    (table, _) = _tables(page_blocks(blocks, "t", Footnotes()))
    assert table.rows[0].cells[1].text == ""  # no marker on the page without its notes
    (table, _) = _tables(page_blocks(blocks, "t", notes))
    assert (table.rows[0].cells[1].text, table.rows[0].cells[1].title) == ("", "first note")


def test_a_table_clipped_in_the_markdown_is_whole_on_the_page_with_its_run():
    long = "int8 (lossy) nchw eager OpenVINO BN folded, reparameterised"
    blocks = [Tbl("c", ({"Candidate": long},), (REC,), clipped=(("Candidate", 20),))]
    md = "\n".join(markdown(blocks, Footnotes()))
    assert "| int8 (lossy) nchw... | [^r0000001] |" in md
    (table,) = _tables(page_blocks(blocks, "t"))
    assert table.columns == ("Candidate", "Run")
    assert table.rows[0].cells[0].text == long
    assert table.rows[0].cells[1].href == "#run-r0000001"


def test_table_ids_on_the_page_are_unique():
    blocks = [Tbl("m", ({"A": "1"},)), Para("between"), Tbl("m", ({"A": "2"},))]
    assert [t.table_id for t in _tables(page_blocks(blocks, "t"))] == ["m", "m-2"]


def test_a_sha256_prefix_is_text_and_a_number_with_a_unit_a_number():
    rows = ({"Checkpoint": "7d430091e283", "Speed-up": "1.12x", "Diff": "2.2e-06"},
            {"Checkpoint": "a027a143d7cc", "Speed-up": "0.75x", "Diff": "0.017"})  # fmt: skip
    (table,) = _tables(page_blocks([Tbl("q", rows)], "t"))
    sha, speedup, diff = table.rows[0].cells
    assert (sha.numeric, sha.sort) == (False, None)
    assert (speedup.numeric, speedup.sort) == (True, 1.12)
    assert diff.sort == 2.2e-06


def test_prose_on_the_page_has_no_markdown_marks():
    blocks = [Para("The plot is [runtimes.png](runtimes.png); `--optimize` *chose* it[^n1].")]
    (text,) = page_blocks(blocks, "t")
    assert text.text == "The plot is runtimes.png; --optimize chose it."
