"""The page's validate section: pretrained weights scored on labelled images (``--harness
validate``), one row per (model, data) with its run."""

from __future__ import annotations

from bench.report.html.cells import by_model, device, num, row, text
from bench.report.html.chapter import ok_records
from bench.report.html.render import Table, Text


def validate_blocks(frame) -> list:
    out = []
    for r in by_model(ok_records(frame, "validate")):
        c, m = r["config"], r["metrics"]
        cells = (
            text(r["model"]),
            text(c.get("val_data")),
            num(m.get("val_images"), "count"),
            num(m.get("val_top1"), "top1", "not measured"),
            num(m.get("val_top5"), "top1", "not measured"),
            text(m.get("init_source"), "no weights recorded"),
            text(c.get("transforms")),
            text(device(r)),
        )
        out.append(row(cells, r))
    columns = (
        "Model",
        "Data",
        "Images",
        "Top-1",
        "Top-5",
        "Weights",
        "Transforms",
        "Device",
        "Run",
    )
    return [
        Text("Pretrained weights scored on labelled images (--harness validate --pretrained)."),
        Table("validate", columns, tuple(out), empty="No validate records yet."),
    ]
