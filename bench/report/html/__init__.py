"""``reports/index.html``: one self-contained, offline page of every report section, sortable
and filterable, with each row's provenance. No torch here."""

from bench.report.html.page import write_page

__all__ = ["write_page"]
