"""Figures for training runs: held-out accuracy against time or step, and time to target against workers or batch.

:func:`curve_figure` draws the ``curve`` metric a training (or federated) workload stores
with each trial, a list of ``{"t_s", "step", "accuracy"}``: one line per trial, coloured by
the value of a parameter, with the target dashed. :func:`time_to_target_figure` draws the
rows of :func:`labkit.studies.training.analysis.training_table`: the median time to target with its
95% interval (no whiskers: no interval; a cross at the top: not reached in any run), the
median time per epoch, and the epochs needed. :func:`efficiency_figure` draws the rows of
:func:`labkit.studies.training.frameworks.efficiency_table`: per framework, the time per step, the
time to target and the scaling efficiency T1/(N·TN) against the workers, with the anchor's figures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from labkit.common.errors import ParameterError
from labkit.plots.axes import errors, new_figure
from labkit.plots.curves import curve_figure  # noqa: F401  (the study's own figures)
from labkit.studies.training.analysis import training_table
from labkit.studies.training.frameworks import Frames, efficiency_table

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


ANCHOR_LINES = (
    (0.90, "Horovod, 128 GPUs: Inception V3, ResNet-101 (about 90%)"),
    (0.68, "Horovod, 128 GPUs: VGG-16 (68%)"),
)


def efficiency_figure(frames: Frames, batch: int | None = None, *, title: str = "") -> Figure:
    """Against the workers, one line per framework, at one global ``batch`` (default: each one's largest):
    left, the median time per step with its 95% interval; middle, the median time to target (a cross:
    not reached in any run); right, the scaling efficiency of a step, T1/(N·TN), with its interval,
    100% dotted and the anchor's figures dashed. ``frames``: as :func:`~labkit.studies.training.frameworks.efficiency_table`."""
    table = efficiency_table(frames, batch)
    fig, axes = new_figure(3, width=4.0)
    for label, g in table.groupby("framework", sort=False):
        _series(axes[0, 0], g, "workers", "step_s", label, True)
        _series(axes[0, 1], g, "workers", "ttt_s", label, True)
        mid = g["eff_step"].to_numpy(float)
        axes[0, 2].errorbar(
            g["workers"], mid, yerr=errors(mid, g["eff_step_lo"], g["eff_step_hi"]), marker="o", capsize=3, label=label
        )
    axes[0, 2].axhline(1.0, ls=":", color="grey", label="100%: N workers take 1/N of the time")
    for value, name in ANCHOR_LINES:
        axes[0, 2].axhline(value, ls="--", lw=0.8, color="grey")
        axes[0, 2].annotate(name, (0.02, value), xycoords=("axes fraction", "data"), fontsize="x-small", va="bottom")
    axes[0, 0].set(xlabel="workers (ranks)", ylabel="seconds", title="Time per step (median, 95% interval)")
    axes[0, 1].set(
        xlabel="workers (ranks)", ylabel="seconds", title=f"Time to accuracy {_target(frames)} (median, 95% interval)"
    )
    axes[0, 2].set(xlabel="workers (ranks)", ylabel="T1 / (N · TN)", title="Scaling efficiency of a step")
    axes[0, 2].yaxis.set_major_formatter("{x:.0%}")
    ticks = sorted(table["workers"].unique())
    for ax in axes[0]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(int(v)) for v in ticks])
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _target(frames: Frames) -> str:
    for frame in frames.values():
        if frame is not None and not isinstance(frame, str) and "target_accuracy" in frame and len(frame):
            return f"{frame['target_accuracy'].iloc[0]:g}"
    return "target"


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
