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
    order = slots(rows)
    labelled: set[int] = set()
    for worker, g in sorted(rows.groupby("worker"), key=lambda item: (order[item[0]], item[1]["time"].min())):
        marker = "o" if len(g) == 1 else None
        slot = order[worker]
        label = None if slot in labelled else f"worker {slot}"
        labelled.add(slot)
        line = ax.plot(
            g["time"] - start, g["value"] / scale, lw=1.2, marker=marker, label=label, color=f"C{(slot - 1) % 10}"
        )
        lim = limits[limits["worker"] == worker]["value"] / scale if limits is not None else []
        # A limit far above the use would flatten the lines: draw it only when it is near.
        if len(lim) and lim.iloc[-1] <= 2 * top:
            ax.axhline(lim.iloc[-1], color=line[0].get_color(), ls=":", lw=1)
            top = max(top, float(lim.iloc[-1]))
    ax.set(xlabel="seconds", ylabel=ylabel, title=title)
    ax.set_ylim(0, top * 1.15 if top > 0 else 1)
    if len(labelled) <= 8:
        ax.legend(fontsize="x-small", loc="upper left")


def slots(rows: pd.DataFrame) -> dict[str, int]:
    """Each worker's slot, numbered from 1: a worker takes the lowest slot whose last worker
    stopped reporting before it first reported (a worker its nanny restarted, or one started
    after a scale-down, comes back under a new address into the same slot), so a 2-worker
    cluster reads as workers 1 and 2 however often its processes were replaced.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"worker": ["a", "b", "a", "c", "c"], "time": [0, 0, 1, 3, 4]})
    >>> slots(rows)
    {'a': 1, 'b': 2, 'c': 1}
    """
    by_time = rows.sort_values("time", kind="stable")
    spans = by_time.groupby("worker", sort=False)["time"].agg(["min", "max"])
    ends: list[float] = []  # per slot, when its latest worker last reported
    out: dict[str, int] = {}
    for worker, (first, last) in spans.iterrows():
        free = [i for i, end in enumerate(ends) if end < first]
        slot = free[0] if free else len(ends)
        if slot == len(ends):
            ends.append(last)
        ends[slot] = last
        out[str(worker)] = slot + 1
    return out


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
