"""Figures for model optimisation: accuracy lost and throughput against sparsity, exact against
approximate algorithms as sizes grow, and transfer learning's accuracy curves and costs.

Each takes a trials frame and draws the tables of :mod:`labkit.studies.optimize.analysis`, so a figure shows
the numbers its sentences print. Whiskers are 95% intervals; a point or bar without whiskers has
none (too few runs, or repeats that do not vary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.analysis.frames import point_params
from labkit.analysis.intervals import median_estimate
from labkit.plots.axes import errors, new_figure, rate_axis
from labkit.plots.curves import curve_figure
from labkit.studies.optimize import analysis as optimize

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def pruning_figure(frame: pd.DataFrame, max_loss: float = 0.01, *, title: str | None = None) -> Figure:
    """Left: held-out accuracy lost (points) against sparsity, with its 95% interval over the
    held-out images and the ``max_loss`` line dotted. Right: inference throughput against
    sparsity, dense and sparse (CSR), median of runs with its interval."""
    table = optimize.pruning_table(frame)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    models = table.drop_duplicates(["sparsity", *optimize.MODEL_KEYS]).groupby(list(optimize.MODEL_KEYS))
    for key, g in models:
        label = None if models.ngroups == 1 else ", ".join(f"{k}={v}" for k, v in zip(optimize.MODEL_KEYS, key))
        err = errors(g["loss"], g["loss_lo"], g["loss_hi"]) * 100
        left.errorbar(g["sparsity"], g["loss"] * 100, yerr=err, marker="o", capsize=3, label=label)
    left.axhline(max_loss * 100, color="tab:red", ls=":", label=f"{max_loss * 100:g}-point loss")
    left.axhline(0.0, color="0.6", lw=1)
    left.set(xlabel="sparsity (share of weights pruned)", ylabel="held-out accuracy lost (points)")
    left.set_title("Accuracy lost")
    left.legend(fontsize="small")
    for (fmt, workers), g in table.groupby(["format", "workers"]):
        mid = g["throughput"].to_numpy(float)
        err = errors(mid, g["throughput_lo"], g["throughput_hi"])
        right.errorbar(g["sparsity"], mid, yerr=err, marker="o", capsize=3, label=f"{fmt}, {workers} worker(s)")
    rate_axis(right, str(table["unit"].iloc[0]))
    right.set(xlabel="sparsity (share of weights pruned)", ylabel="inference throughput")
    right.set_title("Inference: dense against sparse (CSR)")
    right.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def approx_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Left: median time of a run per algorithm against the number of rows (exact solid, approximate
    dashed), with 95% intervals. Right: the error the approximate algorithm adds over the exact one
    (relative reconstruction error for SVD, 1 − recall@k for k-NN) against rows, on a log scale
    (an error added of 0 or below is not drawn)."""
    ok = frame[frame["status"] == "ok"]
    params = point_params(ok)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    colours = {"svd": "tab:blue", "knn": "tab:orange"}
    for algorithm, g in ok.groupby(params["algorithm"], sort=True):
        sizes = params.loc[g.index, "size"]
        stats = [median_estimate(gs["wall_s"].to_numpy(float)) for _, gs in g.groupby(sizes, sort=True)]
        mid = np.array([s.value for s in stats])
        err = errors(mid, [s.lo for s in stats], [s.hi for s in stats])
        task = algorithm.split("-")[0]
        style = "-" if algorithm.endswith("exact") else "--"
        left.errorbar(
            sorted(sizes.unique()), mid, yerr=err, ls=style, marker="o", capsize=3, label=algorithm, color=colours[task]
        )
    left.set(xscale="log", yscale="log", xlabel="rows", ylabel="seconds per run (median)")
    _size_ticks(left, params["size"])
    left.set_title("Time")
    left.legend(fontsize="small")
    table = optimize.approx_table(frame)
    if not table.empty:
        for task, g in table[table["error_added"] > 0].groupby("task"):
            right.plot(g["size"], g["error_added"], marker="o", color=colours[task], label=task)
    right.set(xscale="log", yscale="log", xlabel="rows", ylabel="error added by the approximation")
    _size_ticks(right, params["size"])
    right.set_title("Error added (approximate − exact)")
    if right.lines:
        right.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _size_ticks(ax: Axes, sizes: pd.Series) -> None:
    """Ticks at the sizes measured, written in full."""
    values = sorted(int(v) for v in sizes.unique())
    ax.set_xticks(values, [f"{v:,}" for v in values])
    ax.set_xticks([], minor=True)


def transfer_curves(frame: pd.DataFrame, x: str = "t_s", *, title: str = "") -> Figure:
    """Held-out accuracy of every ``transfer`` run against time (or epoch, ``x="step"``), coloured by
    mode, with the target dashed (:func:`labkit.studies.training.figures.curve_figure`)."""
    target = float(frame["target_accuracy"].dropna().iloc[0]) if "target_accuracy" in frame else None
    return curve_figure(frame, hue="mode", target=target, x=x, title=title or "Held-out accuracy per run, by mode")


def transfer_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Left: median time to target per mode with its 95% interval (a cross: not reached in any run).
    Middle: FLOPs per run (an estimate). Right: trainable parameters."""
    table = optimize.transfer_table(frame)
    fig, axes = new_figure(3, width=3.6)
    x = np.arange(len(table))
    labels = [f"{m}\n{w}w" if table["workers"].nunique() > 1 else m for m, w in zip(table["mode"], table["workers"])]
    ttt = table["ttt"].to_numpy(float)
    axes[0, 0].bar(x, np.nan_to_num(ttt), color="tab:blue", alpha=0.7)
    axes[0, 0].errorbar(x, ttt, yerr=errors(ttt, table["ttt_lo"], table["ttt_hi"]), fmt="none", color="k", capsize=4)
    for i in np.flatnonzero(np.isnan(ttt)):
        axes[0, 0].scatter([x[i]], [0], marker="x", s=60, color="tab:red")
        axes[0, 0].annotate("not reached", (x[i], 0), fontsize="x-small", ha="center", va="bottom")
    axes[0, 0].set(ylabel="seconds to target (median)", title="Time to target")
    axes[0, 1].bar(x, table["flops_estimate"], color="tab:green", alpha=0.7)
    axes[0, 1].set(ylabel="FLOPs per run (median; an estimate)", title="Compute (an estimate)")
    axes[0, 2].bar(x, table["trainable_params"], color="tab:purple", alpha=0.7)
    axes[0, 2].set(ylabel="trainable parameters", title="Parameters trained")
    for ax in axes[0]:
        ax.set_xticks(x, labels)
    if title:
        fig.suptitle(title)
    return fig
