"""What every figure shares: a new Figure shown inline, series per configuration, empty-panel notes, axes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis import (
    describe_config,
    varying,
)
from labkit.analysis.frames import config_keys
from labkit.common.format import format_rate
from labkit.common.jupyter import show_figures_inline

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def errors(mid: Any, lo: Any, hi: Any) -> np.ndarray:
    """Error-bar lengths below and above ``mid`` for ``errorbar(yerr=...)``; 0 where no interval exists.

    >>> errors([2.0, 3.0], [1.5, float("nan")], [2.5, float("nan")]).tolist()
    [[0.5, 0.0], [0.5, 0.0]]
    """
    mid, lo, hi = (np.asarray(v, float) for v in (mid, lo, hi))
    return np.nan_to_num(np.vstack([mid - lo, hi - mid]), nan=0.0)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.4) -> tuple[Figure, Any]:
    """A Figure with a grid of axes, shown inline by Jupyter as a PNG."""
    from matplotlib.figure import Figure

    show_figures_inline()
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def config_series(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per configuration, labelled by the parameters that vary."""

    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return []
    names = varying(frame)
    keys = config_keys(ok)
    return [(describe_config(k, names) or "all", g) for k, g in ok.groupby(keys, sort=False)]


def rate_axis(ax: Axes, unit: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_rate(v, unit) if v > 0 else "0"))


def no_data(ax: Axes, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no successful trials:\n{what} not measured",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.4",
    )


def worker_ticks(ax: Axes, frame: pd.DataFrame) -> None:
    ws = sorted(frame["workers"].dropna().unique())
    if ws and len(ws) <= 12:
        ax.set_xticks([int(w) for w in ws])


def band_plot(ax: Axes, x: np.ndarray, mid: np.ndarray, lo: np.ndarray, hi: np.ndarray, label: str, **kw: Any) -> None:
    line = ax.plot(x, mid, label=label, **kw)[0]
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)


def side_by_side(left: Any, right: Any, title: str | None) -> Figure:
    """A two-panel figure: ``left(ax)`` and ``right(ax)`` draw the panels."""
    fig, axes = new_figure(2)
    left(axes[0, 0])
    right(axes[0, 1])
    if title:
        fig.suptitle(title)
    return fig
