"""The memory study's figure: the numbers of its table, drawn; a bar or band only where an interval exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.plots.axes import errors, new_figure, rate_axis

from . import analysis as data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def spill_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Left: throughput per working-set size (as a share of the memory limit). Right: the
    slowdown against the smallest, with 95% intervals; the dotted line is Dask's spill target."""
    table = data.spill_table(frame)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    ok = table[table["runs"] > 0]
    left.plot(ok["ratio"], ok["throughput"], marker="o")
    rate_axis(left, str(ok["unit"].iloc[0]))
    left.set(xlabel="working set / memory limit", ylabel="throughput")
    left.set_title("Throughput")
    mid = ok["slowdown"].to_numpy(float)
    right.errorbar(ok["ratio"], mid, yerr=errors(mid, ok["slowdown_lo"], ok["slowdown_hi"]), marker="o", capsize=3)
    right.axhline(1.0, color="0.5", ls="--", lw=1)
    right.set(xlabel="working set / memory limit", ylabel="slowdown (× the smallest's time per byte)")
    right.set_title("Slowdown")
    for ax in (left, right):
        ax.axvline(0.6, color="tab:red", ls=":", lw=1)
    if title:
        fig.suptitle(title)
    return fig
