"""The stream study's figure: the numbers of its table, drawn; a bar or band only where an interval exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.plots.axes import errors, new_figure, rate_axis

from . import analysis as data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def latency_figure(frame: pd.DataFrame, target_s: float, *, quantile: str = "p95", title: str | None = None) -> Figure:
    """Left: the latency ``quantile`` per batch size (median of runs, 95% interval) against the
    target. Right: records per second per batch size, with the arrival rate dashed."""
    table = data.latency_table(frame, quantile)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    for (rate, workers), g in table.groupby(["rate", "workers"]):
        label = f"{rate:g}/s, {workers} worker(s)"
        mid = g[f"{quantile}_s"].to_numpy(float)
        err = errors(mid, g[f"{quantile}_lo"].to_numpy(float), g[f"{quantile}_hi"].to_numpy(float))
        left.errorbar(g["batch"], mid, yerr=err, marker="o", capsize=3, label=label)
        line = right.plot(g["batch"], g["records_per_s"], marker="o", label=label)[0]
        right.axhline(rate, color=line.get_color(), ls="--", lw=1)
    left.axhline(target_s, color="tab:red", ls=":", label=f"target {target_s:g} s")
    left.set(xscale="log", yscale="log", xlabel="batch size (records)", ylabel=f"{quantile} latency (s)")
    left.set_title(f"{quantile} latency per batch size")
    left.legend(fontsize="small")
    right.set(xscale="log", xlabel="batch size (records)", ylabel="records/s (dashed: arrival rate)")
    right.set_title("Throughput")
    rate_axis(right, "records")
    if title:
        fig.suptitle(title)
    return fig
