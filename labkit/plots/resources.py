"""Resource figures: per-worker timelines from monitor samples, where each trial's time went.

``samples`` is the monitor's long format (``time, worker, metric, value``, as the store's
``samples`` table and ``Monitor.to_pandas()`` give it); ``frame`` is the trials DataFrame,
whose ``time_<bucket>_s`` columns hold each trial's time split. Anything not measured is
drawn as a "not measured" note, never as zeros.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

SPLIT_ORDER = ("compute_cpu", "compute_other", "transfer", "spill", "serialization", "idle", "other")
SPLIT_COLORS = {
    "compute_cpu": "#1f77b4",
    "compute_other": "#9ecae1",
    "transfer": "#ff7f0e",
    "spill": "#d62728",
    "serialization": "#9467bd",
    "idle": "#c7c7c7",
    "other": "#8c564b",
}


def _not_measured(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}:\nnot measured", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _worker_rows(samples: pd.DataFrame | None, metric: str) -> pd.DataFrame | None:
    if samples is None or samples.empty:
        return None
    rows = samples[
        (samples["metric"] == metric) & samples["worker"].str.startswith(("tcp://", "tls://", "ucx://", "inproc://"))
    ]
    return None if rows.empty else rows


def timeline_ax(
    ax: Axes,
    samples: pd.DataFrame | None,
    metric: str,
    *,
    scale: float = 1.0,
    ylabel: str,
    title: str,
    t0: float | None = None,
    limit_metric: str | None = None,
) -> None:
    """One line per worker of ``metric`` over time (seconds since ``t0``)."""
    rows = _worker_rows(samples, metric)
    if rows is None:
        _not_measured(ax, title)
        return
    start = rows["time"].min() if t0 is None else t0
    top = float(rows["value"].max()) / scale
    limits = _worker_rows(samples, limit_metric) if limit_metric else None
    rows = rows.dropna(subset=["value"])
    if rows.empty:
        _not_measured(ax, title)
        return
    # Workers are named by the order they first reported ("worker 1" ...), not by address.
    order = {w: i + 1 for i, w in enumerate(rows.sort_values("time")["worker"].drop_duplicates())}
    for worker, g in sorted(rows.groupby("worker"), key=lambda item: order[item[0]]):
        marker = "o" if len(g) == 1 else None
        line = ax.plot(g["time"] - start, g["value"] / scale, lw=1.2, marker=marker, label=f"worker {order[worker]}")
        lim = limits[limits["worker"] == worker]["value"] / scale if limits is not None else []
        # A limit far above the use would flatten the lines: draw it only when it is near.
        if len(lim) and lim.iloc[-1] <= 2 * top:
            ax.axhline(lim.iloc[-1], color=line[0].get_color(), ls=":", lw=1)
            top = max(top, float(lim.iloc[-1]))
    ax.set(xlabel="seconds", ylabel=ylabel, title=title)
    ax.set_ylim(0, top * 1.15 if top > 0 else 1)
    if rows["worker"].nunique() <= 8:
        ax.legend(fontsize="x-small", loc="upper left")


def cpu_ax(ax: Axes, samples: pd.DataFrame | None, t0: float | None = None) -> None:
    timeline_ax(ax, samples, "cpu_percent", ylabel="CPU % (100 = one core)", title="Worker CPU", t0=t0)


def memory_ax(ax: Axes, samples: pd.DataFrame | None, t0: float | None = None) -> None:
    timeline_ax(
        ax,
        samples,
        "memory_bytes",
        scale=2**30,
        ylabel="GiB RSS (dotted: limit, when near)",
        title="Worker memory",
        t0=t0,
        limit_metric="memory_limit_bytes",
    )


def split_columns(frame: pd.DataFrame) -> list[str]:
    """The time-split buckets present (and measured) in a trials frame, in display order."""
    return [b for b in SPLIT_ORDER if f"time_{b}_s" in frame.columns and frame[f"time_{b}_s"].notna().any()]


def time_split_ax(ax: Axes, frame: pd.DataFrame, *, max_bars: int = 24) -> None:
    """Stacked bars: the share of worker thread time per bucket, one bar per trial (latest)."""
    from matplotlib.ticker import PercentFormatter

    buckets = split_columns(frame) if len(frame) else []
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    if not buckets or ok.empty:
        _not_measured(ax, "Where the time went")
        return
    rows = ok.dropna(subset=[f"time_{b}_s" for b in buckets], how="all").tail(max_bars)
    if rows.empty:
        _not_measured(ax, "Where the time went")
        return
    seconds = rows[[f"time_{b}_s" for b in buckets]].fillna(0.0).to_numpy(float)
    totals = seconds.sum(axis=1, keepdims=True)
    shares = np.divide(seconds, totals, out=np.zeros_like(seconds), where=totals > 0)
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for j, b in enumerate(buckets):
        ax.bar(x, shares[:, j], bottom=bottom, color=SPLIT_COLORS[b], label=b.replace("_", " "), width=0.8)
        bottom += shares[:, j]
    labels = [f"{int(w)}w" for w in rows["workers"]]
    ax.set_xticks(x, labels, fontsize="x-small", rotation=90 if len(rows) > 12 else 0)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(title="Where the worker time went (per trial)", ylabel="share of thread time")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
