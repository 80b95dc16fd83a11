"""The page's plots as PNG bytes (matplotlib's Agg backend, a fixed size and dpi, no timestamp
or version in the file): the same records give the same bytes. At most eight series a panel,
legends outside the axes."""

from __future__ import annotations

import contextlib

from bench.registry.cards import chapter_table
from bench.report.chapter import best_speed
from bench.report.html.chapter import ok_records
from bench.report.plot import png_bytes
from bench.report.speedplot import gmacs_figure, plot_points

DPI = 90
MAX_SERIES = 8
MARKERS = "os^Dv<>p"


@contextlib.contextmanager
def _pyplot():
    """pyplot on the Agg backend with the page's settings for the block only: a setting left
    behind would change the other reports' plots (their bytes) when generated next."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    with plt.rc_context({"font.size": 9, "svg.hashsalt": "cnn-bench"}):
        yield plt


def _png(plt, fig) -> bytes:
    try:
        return png_bytes(fig, dpi=DPI)
    finally:
        plt.close(fig)


def speed_vs_gmacs(frame) -> bytes | None:
    """The best trusted inference samples/s of each model, machine and workload against its
    GMACs, one panel per input size, a lossy precision's points hollow (the markdown report's
    plot: ``bench.report.speedplot``)."""
    panels = plot_points(ok_records(frame, "throughput"))
    if not panels:
        return None
    with _pyplot() as plt:
        return _png(plt, gmacs_figure(plt, panels))


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats on both speed and accuracy, fastest first."""
    front, best = [], float("-inf")
    for p in sorted(points, key=lambda p: (-p[0], -p[1], p[2])):
        if p[1] > best:
            front.append(p)
            best = p[1]
    return front


def accuracy_vs_speed(frame) -> bytes | None:
    """The shipped weights' ImageNet top-1 against the best inference samples/s that answers
    the chapter's question (native size, exact precision), one panel per device kind, the
    Pareto front drawn and its points filled."""
    panels = []
    for kind, label in (("cpu", "CPU"), ("cuda", "GPU")):
        pts, names = [], set()
        for card in chapter_table():
            rec = best_speed(frame, card, kind)
            if rec is not None and card.published.top1 is not None:
                pts.append(
                    (
                        rec["metrics"]["infer_samples_per_sec"],
                        card.published.top1,
                        card.display_name,
                    )
                )
                names.add(str(rec.get("device_name") or kind))
        if pts:
            panels.append((f"{label} ({', '.join(sorted(names))})", pts))
    if not panels:
        return None
    with _pyplot() as plt:
        fig, axes = plt.subplots(
            1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False, layout="constrained"
        )
        for ax, (title, pts) in zip(axes[0], panels, strict=True):
            front = pareto_front(pts)
            rest = [p for p in pts if p not in front]
            ax.scatter(
                [p[0] for p in rest],
                [p[1] for p in rest],
                facecolors="none",
                edgecolors="C0",
                label="dominated",
            )
            ax.scatter(
                [p[0] for p in front], [p[1] for p in front], color="C3", label="Pareto front"
            )
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="C3", lw=1)
            for x, y, name in sorted(pts):
                ax.annotate(name, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
            ax.set(
                xscale="log",
                xlabel="inference samples/s (best, native size, fp32/tf32)",
                ylabel="ImageNet top-1 of the shipped weights (%)",
                title=title,
            )
            ax.grid(True, which="both", alpha=0.3)
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
        return _png(plt, fig)


def _curve_label(r: dict) -> str:
    c = r["config"]
    size = c.get("train_limit") or r["metrics"].get("train_samples")
    return (
        f"{c.get('init')} {c.get('protocol')} {c.get('augment')}, {size} imgs, "
        f"{c.get('finetune_img_size')}px, lr {c.get('lr'):g}, bs {c.get('batch_size')}, "
        f"seed {c.get('seed')}, {r.get('device_name') or r['device']}"
    )


def finetune_curves(recs: list[dict], model: str) -> bytes | None:
    """Held-out top-1 per epoch of one model's fine-tune records, eight a panel."""
    recs = [r for r in recs if r["model"] == model and isinstance(r["metrics"].get("curve"), list)]
    if not recs:
        return None
    lines = [
        (_curve_label(r), [(p["epoch"], p["top1"]) for p in r["metrics"]["curve"]]) for r in recs
    ]
    plt, fig, axes = _panels(lines)
    for ax in axes:
        ax.set_ylabel("held-out top-1 (%)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[-1].set_xlabel("epoch")
    axes[0].set_title(f"{model}: learning curves")
    return _png(plt, fig)


def _panels(lines: list[tuple[str, list[tuple[float, float]]]]):
    """One panel per eight lines, stacked, each with its legend outside on the right."""
    chunks = [lines[i : i + MAX_SERIES] for i in range(0, len(lines), MAX_SERIES)]
    with _pyplot() as plt:
        fig, axes = plt.subplots(
            len(chunks),
            1,
            figsize=(10, 0.5 + 2.5 * len(chunks)),
            squeeze=False,
            layout="constrained",
        )
        for ax, chunk in zip(axes[:, 0], chunks, strict=True):
            for i, (label, pts) in enumerate(chunk):
                ax.plot(
                    [x for x, _ in pts],
                    [y for _, y in pts],
                    marker=MARKERS[i],
                    markersize=4,
                    color=f"C{i}",
                    label=label,
                )
            ax.grid(True, alpha=0.3)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
        return plt, fig, list(axes[:, 0])
