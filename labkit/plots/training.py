"""Figures for training runs: held-out accuracy against time or step, and time to target against workers or batch.

:func:`curve_figure` draws the ``curve`` metric a training (or federated) workload stores
with each trial, a list of ``{"t_s", "step", "accuracy"}``: one line per trial, coloured by
the value of a parameter, with the target dashed. :func:`time_to_target_figure` draws the
rows of :func:`labkit.analysis.training.training_table`: the median time to target with its
95% interval (no whiskers: no interval; a cross at the top: not reached in any run), the
median time per epoch, and the epochs needed.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.frames import point_params
from labkit.analysis.training import training_table
from labkit.common.errors import ParameterError

from .axes import new_figure, no_data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

X_LABELS = {"t_s": "seconds since the first step", "step": "epoch (or round)"}


def _hue_values(frame: pd.DataFrame, hue: str | None) -> list[Any]:
    if hue is None:
        return list(frame["point"])
    if hue in frame.columns:
        return list(frame[hue])
    params = point_params(frame)
    if hue not in params.columns:
        raise ParameterError("hue", hue, f"a column or parameter of these trials: {', '.join(params.columns)}")
    return list(params[hue])


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, then anything else by its text."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def curve_figure(
    frame: pd.DataFrame, hue: str | None, target: float | None = None, x: str = "t_s", title: str = ""
) -> Figure:
    """Held-out accuracy against time (``x="t_s"``) or epoch/round (``x="step"``), one line per trial.

    Parameters
    ----------
    frame : DataFrame
        Trials with a ``curve`` metric (a list of ``{"t_s", "step", "accuracy"}`` per trial).
    hue : str or None
        The column or parameter whose value colours the lines (``"batch"``, ``"workers"``);
        None: one colour per grid point.
    target : float, optional
        A target accuracy, drawn dashed.
    x : "t_s" or "step"
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    if x not in X_LABELS:
        raise ParameterError("x", x, "'t_s' (seconds) or 'step' (epoch or round)")
    if "curve" not in frame.columns or "status" not in frame.columns:
        raise ParameterError("frame", f"columns {list(frame.columns)[:8]}…", "trials with a 'curve' metric")
    ok = frame[(frame["status"] == "ok") & frame["curve"].map(lambda c: isinstance(c, list) and len(c) > 0)]
    fig, axes = new_figure(1, width=6.0, height=3.8)
    ax = axes[0, 0]
    if ok.empty:
        no_data(ax, "accuracy curves")
        return fig
    values = _hue_values(ok, hue)
    order = list(dict.fromkeys(sorted(values, key=_sort_key)))
    colours = {v: f"C{i % 10}" for i, v in enumerate(order)}
    seen: set[Any] = set()
    for value, curve in sorted(zip(values, ok["curve"]), key=lambda vc: order.index(vc[0])):
        xs = [float(p[x]) for p in curve]
        ys = [float(p["accuracy"]) for p in curve]
        label = None if value in seen else (f"{hue}={value}" if hue else "point")
        ax.plot(xs, ys, color=colours[value], alpha=0.6, lw=1.2, marker="." if len(xs) < 30 else None, label=label)
        seen.add(value)
    if target is not None:
        ax.axhline(target, color="0.3", ls="--", lw=1, label=f"target {target:g}")
    ax.set(xlabel=X_LABELS[x], ylabel="held-out accuracy", ylim=(0, 1.02))
    ax.set_title(title or "Held-out accuracy, one line per run")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def _errors(mid: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.vstack([mid - lo, hi - mid]), nan=0.0)


def _series(ax: Axes, table: pd.DataFrame, x: str, y: str, label: str, bounds: bool) -> None:
    mid = table[y].to_numpy(float)
    err = _errors(mid, table[f"{y[:-2]}_lo"].to_numpy(float), table[f"{y[:-2]}_hi"].to_numpy(float)) if bounds else None
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
