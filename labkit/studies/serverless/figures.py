"""The serverless study's figures: each tier's call times, and the replay's queries over time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.plots.axes import new_figure

from .function import TIERS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def tiers_figure(calls: pd.DataFrame) -> Figure:
    """Every call's time (log scale), one column per tier; the bar is the tier's median."""
    fig, axes = new_figure(1, width=5.0)
    ax = axes[0, 0]
    for i, tier in enumerate(TIERS):
        x = calls.loc[calls["tier"] == tier, "seconds"].to_numpy(float)
        if len(x):
            ax.plot(np.full(len(x), i) + np.linspace(-0.15, 0.15, len(x)), x, "o", alpha=0.7)
            ax.hlines(np.median(x), i - 0.3, i + 0.3, color="k")
    ax.set(
        xticks=range(len(TIERS)),
        xticklabels=list(TIERS),
        yscale="log",
        ylabel="seconds to the answer",
        title="Tiers of start (bar: median)",
    )
    return fig


def replay_figure(replay: dict[str, Any]) -> Figure:
    """Each query's latency against its arrival time; measured cold queries filled red, the offline
    replay's cold ones ringed."""
    fig, axes = new_figure(1, width=7.0)
    ax = axes[0, 0]
    t, lat = np.asarray(replay["arrival_s"]), np.asarray(replay["latency_s"])
    cold, predicted = np.asarray(replay["cold"], bool), np.asarray(replay["predicted_cold"], bool)
    ax.plot(t[~cold], lat[~cold], "o", color="tab:blue", label="warm (measured)")
    ax.plot(t[cold], lat[cold], "o", color="tab:red", label="cold (measured)")
    ax.plot(
        t[predicted],
        lat[predicted],
        "o",
        markerfacecolor="none",
        markeredgecolor="k",
        markersize=11,
        label="cold (offline replay)",
    )
    ax.set(
        xlabel="arrival (s)",
        ylabel="latency (s)",
        yscale="log",
        title=f"Scale to zero, keep-alive {replay['keep_alive_s']:.3g} s",
    )
    ax.legend(fontsize="x-small")
    return fig
