"""Figures of bursty load on fixed and adaptive clusters: workers against queued work over time, latency, worker-seconds.

Each function takes the frames of :func:`labkit.studies.autoscale.analysis.run_frames` or the tables
made from them, and returns a matplotlib Figure (shown inline in Jupyter). A figure with no
interval draws no whisker and says so in its legend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.plots.axes import errors, new_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

_NO_INTERVAL = " (no interval)"


def _colours(configs: list[str]) -> dict[str, str]:
    return {c: f"C{i}" for i, c in enumerate(configs)}


def timeline_figure(
    tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame, *, repeat: int = 0, title: str | None = None
) -> Figure:
    """One panel per configuration, on a shared time axis: the workers the scheduler had (solid
    steps) and those the cluster had asked for (dashed), against the load's tasks not yet
    finished (grey, right axis: queued on the scheduler plus processing on workers). Shaded
    bands mark each wave's arrivals; the time is seconds after the run's first arrival.

    Parameters
    ----------
    tasks, samples, runs : DataFrame
        As :func:`~labkit.studies.autoscale.analysis.run_frames` returns them.
    repeat : int, default 0
        Which round to draw.
    title : str, optional
    """
    chosen = runs[runs["repeat"] == repeat].sort_values("rank")
    configs = chosen["config"].tolist()
    fig, axes = new_figure(1, len(configs), width=9.0, height=2.2)
    colours = _colours(configs)
    top = max(float(samples["workers"].max()), float(np.nanmax(samples["asked"].to_numpy(float), initial=0)))
    for ax, config in zip(axes[:, 0], configs):
        s = samples[(samples["config"] == config) & (samples["repeat"] == repeat)]
        t = tasks[(tasks["config"] == config) & (tasks["repeat"] == repeat)]
        run = chosen[chosen["config"] == config].iloc[0]
        ax.sharex(axes[0, 0])
        for _, w in t.groupby("wave"):
            ax.axvspan(w["offset_s"].min(), w["offset_s"].max() + 0.05, color="0.85", lw=0)
        right = ax.twinx()
        right.fill_between(s["t_s"], s["queued"] + s["processing"], step="post", color="0.6", alpha=0.45, lw=0)
        right.step(s["t_s"], s["queued"], where="post", color="0.35", lw=0.8, ls=":")
        right.set_ylabel("tasks not finished", fontsize="small")
        right.set_ylim(0, max(1.0, float((samples["queued"] + samples["processing"]).max())) * 1.1)
        ax.step(s["t_s"], s["workers"], where="post", color=colours[config], lw=2, label="workers (scheduler)")
        if s["asked"].notna().any():
            ax.step(s["t_s"], s["asked"], where="post", color=colours[config], lw=1, ls="--", label="workers asked for")
        ax.axvline(run["duration_s"], color="0.3", lw=0.8)
        ax.set_zorder(right.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.set_ylim(0, top + 0.5)
        ax.set_ylabel("workers")
        ax.set_title(
            f"{config}: {run['worker_seconds']:.1f} worker-seconds until the last task ended (vertical line)",
            fontsize="small",
        )
        ax.legend(fontsize="x-small", loc="upper right")
    axes[-1, 0].set_xlabel(
        "seconds after the first arrival (shaded: arrivals of a wave; grey: tasks not finished, dotted: queued)"
    )
    fig.suptitle(title or f"Workers against queued work, round {repeat}")
    return fig


def latency_figure(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """p50, p95 and p99 latency per configuration, with 95% intervals (bootstrap over
    independent waves or runs; no whisker where there is none).

    Parameters
    ----------
    table : DataFrame
        :func:`~labkit.studies.autoscale.analysis.latency_table`.
    title : str, optional
    """
    fig, axes = new_figure(1, width=6.0)
    ax = axes[0, 0]
    configs = list(dict.fromkeys(table["config"]))
    quantiles = list(dict.fromkeys(table["quantile"]))
    colours = _colours(configs)
    width = 0.8 / len(configs)
    for i, config in enumerate(configs):
        g = table[table["config"] == config].set_index("quantile").loc[quantiles]
        mid = g["latency_s"].to_numpy(float)
        lo, hi = g["lo_s"].to_numpy(float), g["hi_s"].to_numpy(float)
        x = np.arange(len(quantiles)) + (i - (len(configs) - 1) / 2) * width
        label = config + (_NO_INTERVAL if np.isnan(lo).any() else "")
        ax.errorbar(x, mid, yerr=errors(mid, lo, hi), fmt="o", capsize=3, color=colours[config], label=label)
    ax.set_xticks(np.arange(len(quantiles)), quantiles)
    ax.set(ylabel="latency: end − submission (s)", ylim=(0, None))
    ax.legend(fontsize="small")
    ax.set_title(title or "Latency percentiles, 95% intervals")
    return fig


def worker_seconds_figure(
    table: pd.DataFrame, runs: pd.DataFrame, latency: pd.DataFrame, *, quantile: str = "p95", title: str | None = None
) -> Figure:
    """Left: worker-seconds per configuration, each run a dot, the median with its 95%
    interval (over runs). Right: the trade-off, ``quantile`` latency against median
    worker-seconds, both with their intervals; down and left is cheaper and faster.

    Parameters
    ----------
    table : DataFrame
        :func:`~labkit.studies.autoscale.analysis.worker_seconds_table`.
    runs : DataFrame
        One row per run, with ``worker_seconds``.
    latency : DataFrame
        :func:`~labkit.studies.autoscale.analysis.latency_table`.
    quantile : str, default "p95"
    title : str, optional
    """
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    configs = table["config"].tolist()
    colours = _colours(configs)
    for i, row in enumerate(table.itertuples()):
        per_run = runs.loc[runs["config"] == row.config, "worker_seconds"].to_numpy(float)
        jitter = np.linspace(-0.12, 0.12, per_run.size) if per_run.size > 1 else np.zeros(1)
        left.scatter(i + jitter, per_run, s=12, color=colours[row.config], alpha=0.5)
        err = errors(np.array([row.worker_seconds]), np.array([row.lo]), np.array([row.hi]))
        left.errorbar([i + 0.3], [row.worker_seconds], yerr=err, fmt="s", capsize=3, color=colours[row.config])
        lat = latency[(latency["config"] == row.config) & (latency["quantile"] == quantile)].iloc[0]
        lat_err = errors(np.array([lat.latency_s]), np.array([lat.lo_s]), np.array([lat.hi_s]))
        no_interval = np.isnan(lat.lo_s) or np.isnan(row.lo)
        right.errorbar(
            [row.worker_seconds],
            [lat.latency_s],
            xerr=err,
            yerr=lat_err,
            fmt="o",
            capsize=3,
            color=colours[row.config],
            label=row.config + (_NO_INTERVAL if no_interval else ""),
        )
    left.set_xticks(np.arange(len(configs)), configs, fontsize="small")
    left.set(ylabel="worker-seconds (sampled workers × time)", ylim=(0, None))
    left.set_title("Worker-seconds: runs (dots), median, 95% interval", fontsize="medium")
    right.set(xlabel="worker-seconds (median)", ylabel=f"{quantile} latency (s)", xlim=(0, None), ylim=(0, None))
    right.set_title(f"Cost against {quantile} latency")
    right.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
