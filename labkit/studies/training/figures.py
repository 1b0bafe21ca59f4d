"""Figures for training runs: held-out accuracy against time or step, and time to target against workers or batch.

:func:`curve_figure` draws the ``curve`` metric a training (or federated) workload stores
with each trial, a list of ``{"t_s", "step", "accuracy"}``: one line per trial, coloured by
the value of a parameter, with the target dashed. :func:`time_to_target_figure` draws the
rows of :func:`labkit.studies.training.analysis.training_table`: the median time to target with its
95% interval (no whiskers: no interval; a cross at the top: not reached in any run), the
median time per epoch, and the epochs needed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from labkit.common.errors import ParameterError
from labkit.plots.axes import errors, new_figure
from labkit.plots.curves import curve_figure  # noqa: F401  (the study's own figures)
from labkit.studies.training.analysis import training_table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _series(ax: Axes, table: pd.DataFrame, x: str, y: str, label: str, bounds: bool) -> None:
    mid = table[y].to_numpy(float)
    err = errors(mid, table[f"{y[:-2]}_lo"].to_numpy(float), table[f"{y[:-2]}_hi"].to_numpy(float)) if bounds else None
    line = ax.errorbar(table[x], mid, yerr=err, marker="o", capsize=3, label=label)
    if y == "ttt_s":
        never = table[table["reached"] == 0]
        if not never.empty:
            top = np.nanmax(mid) if np.isfinite(mid).any() else 1.0
            ax.scatter(never[x], [top * 1.15] * len(never), marker="x", s=60, color=line[0].get_color())
            for v in never[x]:
                ax.annotate("not reached", (v, top * 1.15), fontsize="x-small", ha="center", va="bottom")


def time_to_target_figure(frame: pd.DataFrame, x: str = "workers", *, title: str = "") -> Figure:
    """Left: median time to target with its 95% interval; middle: median time per epoch with
    its interval; right: epochs needed (median of the runs that reached the target); one line per
    workload (and per value of the other of workers/batch), against ``x`` (``"workers"`` or ``"batch"``)."""
    if x not in ("workers", "batch"):
        raise ParameterError("x", x, "'workers' or 'batch'")
    table = training_table(frame)
    other = "batch" if x == "workers" else "workers"
    fig, axes = new_figure(3, width=4.0)
    groups = list(table.groupby(["workload", other], sort=True))
    for (workload, value), g in groups:
        g = g.sort_values(x)
        named = f"{value} worker(s)" if other == "workers" else f"batch {value}"
        label = f"{workload}, {named}" if table[other].nunique() > 1 else str(workload)
        _series(axes[0, 0], g, x, "ttt_s", label, True)
        _series(axes[0, 1], g, x, "epoch_s", label, True)
        axes[0, 2].plot(g[x], g["epochs"], marker="o", label=label)
    target = table["target_accuracy"].iloc[0]
    names = {"workers": "workers (ranks)", "batch": "global batch (images)"}
    axes[0, 0].set(xlabel=names[x], ylabel="seconds", title=f"Time to accuracy {target:g} (median, 95% interval)")
    axes[0, 1].set(xlabel=names[x], ylabel="seconds", title="Time per epoch (steps only)")
    axes[0, 2].set(xlabel=names[x], ylabel="epochs", title="Epochs to the target (median)")
    for ax in axes[0]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(table[x].unique()), [str(int(v)) for v in sorted(table[x].unique())])
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(fontsize="small")
    if all(math.isnan(v) for v in table["ttt_s"]):
        axes[0, 0].text(0.5, 0.5, "target not reached:\nnot measured", ha="center", transform=axes[0, 0].transAxes)
    if title:
        fig.suptitle(title)
    return fig
