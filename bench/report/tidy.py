"""The tidy table: one row per (model, device, configuration), timm's column names where timm
has them, built from the latest records (``Records.latest``). Pure pandas; no torch."""

from __future__ import annotations

import math

from bench.registry.lookup import natural_key
from bench.report.records import untrusted

# Harnesses whose records describe the model itself (one value per model and input size);
# every other harness's records are rows of their own, joined with these.
PROPERTY_HARNESSES = ("params", "flops", "depth")

# The table's first columns, in this order; the others follow sorted by name.
LEAD_COLUMNS = (
    "model",
    "source",
    "device",
    "device_name",
    "harness",
    "infer_img_size",
    "param_count",
    "params",
    "trainable_params",
    "depth",
    "infer_gmacs",
    "infer_macts",
    "flopcounter_gmacs",
)


# The provenance of a measurement's run, carried into its row (``bench.report.records``).
RUN_COLUMNS = (
    "run_id", "run_date", "machine", "machine_id", "machine_name", "cpu", "cpu_features",
    "commit", "torch",
)  # fmt: skip


def _scalar(v) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def _uncounted(ops: dict) -> str:
    return " ".join(f"{k.removeprefix('aten::')}x{v}" for k, v in sorted(ops.items()))


def _natural_places(models) -> list[int]:
    """Each model name's place in natural order (resnet18 before resnet101), for pandas to
    sort by; names with the same key share a place."""
    keys = [tuple(natural_key(m)) for m in models]
    place = {k: i for i, k in enumerate(sorted(set(keys)))}
    return [place[k] for k in keys]


def _run_of(rec) -> dict:
    return {k: getattr(rec, k, None) for k in RUN_COLUMNS}


def _properties(ok) -> tuple[dict, dict, dict]:
    """The property harnesses' metrics: per model (params), per (model, device, device name,
    input size) (flops, depth), and each model's source. A static row's provenance is that of
    the latest record it joins (``ok`` is oldest first)."""
    props: dict[tuple, dict] = {}
    model_props: dict[str, dict] = {}
    sources: dict[str, str] = {}
    for rec in ok.itertuples():
        sources[rec.model] = rec.source
        if rec.harness == "params":
            model_props.setdefault(rec.model, {}).update(
                {k: v for k, v in rec.metrics.items() if _scalar(v)}
            )
            model_props[rec.model]["_run"] = _run_of(rec)
        elif rec.harness in PROPERTY_HARNESSES:
            size = rec.config.get("img_size")
            row = props.setdefault((rec.model, rec.device, rec.device_name, size), {})
            row["_run"] = _run_of(rec)
            for k, v in rec.metrics.items():
                if k == "uncounted_ops":
                    row["uncounted_ops"] = _uncounted(v)
                elif _scalar(v):
                    row[k] = v
    return props, model_props, sources


def _plain(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "_run"}


def _static_rows(props: dict, model_props: dict, sources: dict) -> list[dict]:
    rows = []
    for (model, device, device_name, size), metrics in props.items():
        own = model_props.get(model, {})
        rows.append(
            {
                "model": model,
                "source": sources.get(model),
                "device": device,
                "device_name": device_name,
                "infer_img_size": size,
                **metrics["_run"],
                **_plain(own),
                **_plain(metrics),
            }
        )
    with_props = {r["model"] for r in rows}
    for model, metrics in model_props.items():
        if model not in with_props:
            rows.append(
                {
                    "model": model,
                    "source": sources.get(model),
                    "device": "cpu",
                    **metrics["_run"],
                    **_plain(metrics),
                }
            )
    return rows


def _trusted(metrics: dict):
    """True or False for a record with a timing (``records.untrusted``), None without one."""
    if not any(k in metrics for k in ("total_time_s", "cv_pct", "warmup_stable")):
        return None
    return not untrusted(metrics)


def _rows(ok) -> list[dict]:
    props, model_props, sources = _properties(ok)
    rows = _static_rows(props, model_props, sources)
    by_size = {(m, s): _plain(v) for (m, _d, _n, s), v in props.items()}
    for rec in ok[~ok["harness"].isin(PROPERTY_HARNESSES)].itertuples():
        size = rec.config.get("img_size")
        rows.append(
            {
                "model": rec.model,
                "source": rec.source,
                "device": rec.device,
                "device_name": rec.device_name,
                "harness": rec.harness,
                **_run_of(rec),
                **_plain(model_props.get(rec.model, {})),
                **{k: v for k, v in by_size.get((rec.model, size), {}).items()},
                **{k: v for k, v in rec.config.items() if _scalar(v)},
                **{k: v for k, v in rec.metrics.items() if _scalar(v)},
                "trusted": _trusted(rec.metrics),
            }
        )
    return rows


def tidy(frame):
    """One row per (model, device, configuration) of the latest records ``frame``."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame(columns=["model", "source", "device", "infer_img_size"])
    out = pd.DataFrame(_rows(frame[frame["status"] == "ok"]))
    out = out.dropna(axis=1, how="all")  # a column no row fills says nothing
    cols = [c for c in LEAD_COLUMNS if c in out.columns]
    out = out[cols + sorted(c for c in out.columns if c not in LEAD_COLUMNS)]
    sort = [c for c in ("model", "device", "harness", "infer_img_size") if c in out.columns]
    out = out.assign(_k=_natural_places(out["model"])).sort_values(
        ["_k", *sort[1:]], kind="stable", na_position="first"
    )
    return out.drop(columns="_k").reset_index(drop=True)


def failures(frame):
    """The latest records that failed: model, harness, device and error."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame(columns=["model", "harness", "device", "error"])
    bad = frame[~frame["status"].isin(["ok", "skipped"])]
    return (
        bad[["model", "harness", "device", "error"]]
        .sort_values(["model", "harness"])
        .reset_index(drop=True)
    )


def measured_for(card, table) -> dict:
    """The static harnesses' figures of a model card's model on the CPU, at its native size
    (a dict without the missing ones)."""
    if table.empty or "model" not in table.columns:
        return {}
    rows = table[(table["model"] == card.name) & (table["device"] == "cpu")]
    if "harness" in rows.columns:
        rows = rows[rows["harness"].isna()]
    if "infer_img_size" in rows.columns:
        native = rows[rows["infer_img_size"] == card.input_size[1]]
        rows = native if not native.empty else rows
    if rows.empty:
        return {}
    rec = rows.iloc[-1].to_dict()
    return {k: v for k, v in rec.items() if not (isinstance(v, float) and math.isnan(v))}
