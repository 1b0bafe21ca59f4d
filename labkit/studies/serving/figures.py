"""The serving study's figures: the percentile against the arrival rate, and the peak rate against replicas.

Error bars are 95% intervals, drawn only where one exists; the dashed lines are M/M/c built
from the measured time at a replica, a model to compare with, not a measurement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.plots.axes import errors, new_figure

from . import queueing

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def curve_figure(runs: pd.DataFrame, peaks: pd.DataFrame, percentile: float = 0.99) -> Figure:
    """One panel per model and server: each run's percentile latency (ms) against its arrival rate,
    one colour per replica count, M/M/c dashed in the same colour, the bound in grey."""
    groups = list(runs.groupby(["model", "server"], sort=True))
    fig, axes = new_figure(max(1, len(groups)), width=4.6)
    for ax, ((model, server), g) in zip(axes[0], groups):
        bound = g["bound_s"].iloc[0]
        for n, one in g.groupby("replicas", sort=True):
            one = one.sort_values("rate")
            line = ax.errorbar(
                one["rate"],
                1000 * one["pq_s"],
                yerr=1000 * errors(one["pq_s"], one["pq_lo"], one["pq_hi"]),
                marker="o",
                capsize=3,
                linestyle="-",
                label=f"{n} replicas",
            )
            _mmc_line(ax, peaks, model, server, int(n), one["rate"].max(), percentile, line.lines[0].get_color())
        ax.axhline(1000 * bound, color="0.5", linewidth=1, label="bound")
        ax.set(
            xlabel="arrival rate (queries/s)",
            ylabel=f"p{100 * percentile:g} latency (ms)",
            yscale="log",
            title=f"{model} behind {server}",
        )
        ax.legend(fontsize="x-small")
    fig.suptitle("Latency against arrival rate (dashed: M/M/c from the measured time at a replica)")
    return fig


def _mmc_line(ax: Any, peaks: pd.DataFrame, model: str, server: str, n: int, top: float, q: float, colour: str) -> None:
    row = peaks[(peaks["model"] == model) & (peaks["server"] == server) & (peaks["replicas"] == n)]
    if row.empty or not np.isfinite(row["service_s"].iloc[0]):
        return
    service = float(row["service_s"].iloc[0])
    rates = np.linspace(0.02, min(top * 1.2, 0.98 * n / service), 60)
    ax.plot(
        rates,
        [1000 * queueing.response_quantile(q, n, rate=r, service_s=service) for r in rates],
        linestyle="--",
        color=colour,
        linewidth=1,
    )


def peak_figure(peaks: pd.DataFrame, cores: int) -> Figure:
    """The peak rate under the bound against replicas, one line per model and server, M/M/c dashed,
    M/G/c dash-dotted;
    the dotted line marks the cores."""
    fig, axes = new_figure(1, width=5.5)
    ax = axes[0, 0]
    for (model, server), g in peaks.groupby(["model", "server"], sort=True):
        g = g.sort_values("replicas")
        line = ax.errorbar(
            g["replicas"],
            g["peak"],
            yerr=errors(g["peak"], g["peak_lo"], g["peak_hi"]),
            marker="o",
            capsize=3,
            label=f"{model} / {server}",
        )
        colour = line.lines[0].get_color()
        ax.plot(g["replicas"], g["mmc_peak"], linestyle="--", color=colour, linewidth=1)
        ax.plot(g["replicas"], g["mgc_peak"], linestyle="-.", color=colour, linewidth=1)
    ax.axvline(cores, color="0.5", linestyle=":", label=f"cores ({cores})")
    ax.set(
        xlabel="replicas",
        ylabel="peak arrival rate under the bound (queries/s)",
        title="Peak rate against replicas (dashed: M/M/c, dash-dot: M/G/c)",
    )
    ax.set_xticks(sorted(peaks["replicas"].unique()))
    ax.legend(fontsize="x-small")
    return fig
