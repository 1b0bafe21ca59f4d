"""A measure against the rounds or epochs of a run, one line per configuration: learning curves."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from labkit.analysis.frames import point_params
from labkit.common.errors import DataError, ParameterError

from .axes import new_figure, no_data

if TYPE_CHECKING:
    import pandas as pd
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
        raise DataError(f"columns {list(frame.columns)[:8]}…", "needs trials with a 'curve' metric")
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
