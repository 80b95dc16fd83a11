"""``reports/throughput_vs_gmacs.png`` (and the page's copy): the best trusted inference
samples/s of each model and workload (``bench.report.best``) against its GMACs, one panel per
input size, so that no panel sets a 64 px figure beside a 224 px one. One series per machine
and precision; a lossy precision's points are hollow. Untrusted timings are never drawn.
Matplotlib's Agg backend; no timestamp or version in the file."""

from __future__ import annotations

from typing import NamedTuple

from bench.report.best import best_rows, metrics_of
from bench.report.fmt import is_number
from bench.report.plot import png_bytes
from bench.report.workload import LOSSY, precision_text, workload_key

PLOT = "throughput_vs_gmacs.png"
MARKERS = "os^Dv<>p"
# where a point's name may go (offset in points), in order of preference
PLACES = (
    (5, 3),
    (-5, -3),
    (5, -3),
    (-5, 3),
    (0, 8),
    (0, -8),
    (8, 12),
    (-8, -12),
    (8, -12),
    (-8, 12),
)


class Point(NamedTuple):
    series: tuple[str, str]  # (machine, precision)
    model: str
    gmacs: float
    samples_per_sec: float


def plot_points(rows: list[dict]) -> dict[int, list[Point]]:
    """{input size (px): its points}, sizes ascending: each model's best trusted figure per
    machine and workload (``best.best_rows``) with a GMACs figure."""
    out: dict[int, list[Point]] = {}
    for machines in best_rows(rows).values():
        for machine, models in machines.items():
            for model, r in models.items():
                m, w = metrics_of(r), workload_key(r)
                gmacs = m.get("infer_gmacs")
                if is_number(gmacs) and gmacs > 0 and w.img_size:
                    point = Point((machine, w.precision), model, gmacs, m["infer_samples_per_sec"])
                    out.setdefault(w.img_size, []).append(point)
    return {px: sorted(out[px]) for px in sorted(out)}


def _chapter_labels() -> dict[str, str]:
    from bench.registry.cards import load_cards

    return {
        name: card.display_name
        for name, card in load_cards().items()
        if card.in_chapter_table or card.source == "chapter"
    }


def _colors(points: list[Point]) -> dict[tuple[str, str], str]:
    """Each series' colour: its markers', and its points' names'."""
    return {series: f"C{i % 10}" for i, series in enumerate(sorted({p.series for p in points}))}


def _series(ax, points: list[Point]) -> None:
    colors = _colors(points)
    for i, (machine, precision) in enumerate(colors):
        mine = [p for p in points if p.series == (machine, precision)]
        color = colors[(machine, precision)]
        ax.scatter(
            [p.gmacs for p in mine],
            [p.samples_per_sec for p in mine],
            marker=MARKERS[i % len(MARKERS)],
            facecolors="none" if precision in LOSSY else color,
            edgecolors=color,
            label=f"{machine}, {precision_text(precision)}",
        )


def _annotate(ax, p: Point, text: str, place: tuple[int, int], color: str):
    """The name in its series' colour, with a thin line to its point: where points crowd, a
    name placed a little off is still read against the right one."""
    dx, dy = place
    return ax.annotate(text, (p.gmacs, p.samples_per_sec), fontsize=7, textcoords="offset points",
                       xytext=place, ha="left" if dx >= 0 else "right",
                       va="bottom" if dy >= 0 else "top", color=color,
                       arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5,
                                   "shrinkA": 0, "shrinkB": 3})  # fmt: skip


def _name_box(note, renderer):
    """Where an annotation's text lies, without its line to the point (which reaches the
    point, and so would 'cover' it at every place)."""
    from matplotlib.text import Text

    note.update_positions(renderer)
    return Text.get_window_extent(note, renderer)


def _place_labels(ax, points: list[Point], labels: dict[str, str], renderer) -> None:
    """Each chapter model's name beside its point, at the first of ``PLACES`` where it covers
    no other name or point and stays inside the panel (else at the first place)."""
    from matplotlib.transforms import Bbox

    colors = _colors(points)
    inside = ax.get_window_extent(renderer)
    taken = []
    for p in points:
        x, y = ax.transData.transform((p.gmacs, p.samples_per_sec))
        taken.append(Bbox.from_extents(x - 4, y - 4, x + 4, y + 4))
    for p in sorted((p for p in points if p.model in labels), key=lambda p: (p.gmacs, p.model)):
        for place in PLACES:
            note = _annotate(ax, p, labels[p.model], place, colors[p.series])
            box = _name_box(note, renderer)
            fits = inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
            if fits and not any(box.overlaps(t) for t in taken):
                break
            note.remove()
        else:
            note = _annotate(ax, p, labels[p.model], PLACES[0], colors[p.series])
            box = _name_box(note, renderer)
        taken.append(box)


def gmacs_figure(plt, panels: dict[int, list[Point]]):
    """One panel per input size (two a row), GMACs on each x axis; the figure."""
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, 0.6 + 4.2 * rows), squeeze=False,
                             layout="constrained")  # fmt: skip
    flat = list(axes.flat)
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (px, points) in zip(flat, panels.items(), strict=False):
        _series(ax, points)
        ax.set(xscale="log", yscale="log", title=f"{px} px input")
        ax.set_xlabel(f"GMACs per sample at {px} px (fvcore, batch 1)")
        ax.set_ylabel("inference samples/s")
        ax.margins(0.15)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False)
    fig.suptitle(
        "Throughput against compute: the best trusted figure of each model, machine and "
        "workload, one panel per input size (hollow: a lossy precision)",
        fontsize=9,
    )
    fig.get_layout_engine().execute(fig)
    renderer = fig.canvas.get_renderer()
    labels = _chapter_labels()
    for ax, points in zip(flat, panels.values(), strict=False):
        _place_labels(ax, points, labels, renderer)
    return fig


def plot_png(rows: list[dict]) -> bytes | None:
    """The plot of throughput rows (the tidy table's); PNG bytes, None when nothing to draw."""
    panels = plot_points(rows)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = gmacs_figure(plt, panels)
    try:
        return png_bytes(fig, dpi=100)
    finally:
        plt.close(fig)
