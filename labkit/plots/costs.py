"""Where the time goes and how close to the hardware: the overhead model and roofline figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.analysis import (
    task_counts,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from labkit.analysis import OverheadFit
from .axes import band_plot, new_figure, side_by_side
from .scaling import throughput_vs_ax


def overhead_ax(ax: Axes, frame: pd.DataFrame, fit: OverheadFit) -> None:
    """Wall time against tasks per run, one colour per data size, with the overhead model."""

    ok = frame[frame["status"] == "ok"]
    ok = ok[ok["workers"] == ok["workers"].max()]
    tasks = ok["tasks"] if "tasks" in ok.columns else task_counts(ok)
    nbytes = ok["bytes"] if "bytes" in ok.columns else ok["amount"]
    for i, (b, g) in enumerate(ok.groupby(nbytes)):
        stats = g.groupby(tasks.loc[g.index])["wall_s"].agg(["median", "min", "max"])
        t = stats.index.to_numpy(float)
        color = f"C{i}"
        ax.errorbar(
            t,
            stats["median"],
            yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]],
            fmt="o",
            capsize=3,
            color=color,
            label=f"{b / 2**20:.3g} MiB measured",
        )
        grid = np.geomspace(t.min(), t.max(), 100)
        band_plot(ax, grid, *fit.predict(grid, b), "", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="tasks per run", ylabel="wall time (s)", title="Overhead model: a + b·tasks + bytes/bandwidth")
    ax.legend(fontsize="small")


def chunk_figure(frame: pd.DataFrame, fit: OverheadFit, param: str = "chunk_mb", *, title: str | None = None) -> Figure:
    """Throughput against chunk size, and the fitted overhead model against the runs."""
    return side_by_side(lambda ax: throughput_vs_ax(ax, frame, param), lambda ax: overhead_ax(ax, frame, fit), title)


def roofline_ax(ax: Axes, table: pd.DataFrame) -> None:
    """Fraction of the hardware limit per configuration (a table from roofline_fraction), with its
    interval; a configuration whose limit was not measured is labelled so, with no bar."""
    from matplotlib.ticker import PercentFormatter

    labels = [f"{r.workload} {r.config}, {r.workers}w".replace("  ", " ") for r in table.itertuples()]
    y = np.arange(len(table))
    colors = [f"C{sorted(table['workload'].unique()).index(w)}" for w in table["workload"]]
    ax.barh(
        y,
        table["fraction"],
        xerr=[table["fraction"] - table["fraction_lo"], table["fraction_hi"] - table["fraction"]],
        color=colors,
        capsize=3,
    )
    for i, fraction in enumerate(table["fraction"]):
        if not np.isfinite(fraction):  # the limit of this configuration was not measured
            ax.text(0.01, y[i], "limit not measured", va="center", fontsize="small", transform=ax.get_yaxis_transform())
    ax.set_yticks(y, labels, fontsize="small")
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="fraction of the probed limit", title="Roofline fraction")


def roofline_figure(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """One bar per configuration: how close each came to its hardware limit."""
    fig, axes = new_figure(1, width=6.5, height=max(2.5, 0.28 * len(table) + 1.2))
    roofline_ax(axes[0, 0], table)
    if title:
        fig.suptitle(title)
    return fig
