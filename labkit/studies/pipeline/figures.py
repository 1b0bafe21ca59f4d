"""Figures for model parallelism: throughput and the pipeline bubble against micro-batches, one line per stage count.

The figure takes the table of :mod:`labkit.studies.pipeline.analysis` (computed here from the
trials), so it shows the same numbers as the sentences printed beside it. Error bars are
95% intervals over the repeats, drawn only where one exists; GPipe's estimate of the
bubble is dashed, in the colour of its stage count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.plots.axes import errors, new_figure, rate_axis
from labkit.studies.pipeline.analysis import pipeline_table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def pipeline_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Left: samples per second against micro-batches; right: the measured bubble against
    micro-batches, with GPipe's estimate dashed. One line per stage count (and per worker
    count, mode, network or batch where those vary).

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of the ``pipeline-mlp`` workload.
    title : str, optional
        A title above both panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    table = pipeline_table(frame)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    keys = ["mode", "hidden", "depth", "batch", "workers", "stages"]
    varying = [k for k in keys[:-1] if table[k].astype(str).nunique() > 1]
    for key, g in table.groupby(keys, sort=True, dropna=False):
        g = g.sort_values("microbatches")
        named = dict(zip(keys, key))
        label = ", ".join([f"{named['stages']} stage(s)", *(f"{k}={named[k]}" for k in varying)])
        x = g["microbatches"].to_numpy(float)
        tp = g["throughput"].to_numpy(float)
        err = errors(tp, g["throughput_lo"].to_numpy(float), g["throughput_hi"].to_numpy(float))
        line = left.errorbar(x, tp, yerr=err, marker="o", capsize=3, label=label)
        color = line.lines[0].get_color()
        bubble = g["bubble"].to_numpy(float)
        err = errors(bubble, g["bubble_lo"].to_numpy(float), g["bubble_hi"].to_numpy(float))
        right.errorbar(x, bubble, yerr=err, marker="o", capsize=3, color=color)
        right.plot(x, g["bubble_estimate"], ls="--", color=color, alpha=0.8)
    ticks = sorted(int(m) for m in table["microbatches"].unique())
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(m) for m in ticks])
        ax.minorticks_off()
        ax.set_xlabel("micro-batches per global batch")
    left.legend(fontsize="x-small")
    right.legend(
        [Line2D([], [], color="0.3", marker="o"), Line2D([], [], color="0.3", ls="--")],
        ["measured (median, 95% interval)", "GPipe's estimate"],
        fontsize="x-small",
    )
    left.set_ylabel("samples/s (median, 95% interval)")
    left.set_title("Throughput")
    rate_axis(left, "samples")
    right.set_ylim(0, 1)
    right.set_ylabel("bubble: idle share of the stages' time")
    right.set_title("Bubble (dashed: GPipe's estimate)")
    if title:
        fig.suptitle(title)
    return fig
