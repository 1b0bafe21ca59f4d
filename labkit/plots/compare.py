"""Figures of a run-to-run comparison: both distributions per point, and B's time over A's with its interval."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .axes import new_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The colour of each verdict (slower and faster stand out; the rest is grey).
VERDICT_COLORS = {"slower": "tab:red", "faster": "tab:green", "same within margin": "tab:blue"}
_OTHER = "0.45"


def _margin_band(ax: Axes, margin: float, vertical: bool) -> None:
    """No change (a line at 1) and, with a margin, the band of practical equivalence."""
    line, span = (ax.axvline, ax.axvspan) if vertical else (ax.axhline, ax.axhspan)
    line(1.0, color="0.3", linewidth=1, linestyle="--")
    if margin:
        span(1 / (1 + margin), 1 + margin, color="0.85", alpha=0.6, linewidth=0, label=f"±{margin:.0%} margin")


def distributions_ax(ax: Axes, a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("A", "B")) -> None:
    """Both sides' wall times: a box per side and every run as a jittered dot."""
    data = [np.asarray(a, float), np.asarray(b, float)]
    ax.boxplot(data, positions=[1, 2], widths=0.5, showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # the jitter only spreads dots; it carries no information
    for x, values, color in zip((1, 2), data, ("tab:blue", "tab:orange")):
        ax.scatter(x + rng.uniform(-0.12, 0.12, values.size), values, s=16, color=color, alpha=0.8, zorder=3)
    ax.set_xticks([1, 2], [f"{n}\n({v.size} runs)" for n, v in zip(names, data)])
    ax.set_ylabel("wall time (s)")
    ax.set_title("runs", fontsize=10)


def ratio_ax(ax: Axes, row: pd.Series | dict[str, Any], margin: float) -> None:
    """B's median time over A's with its interval, against no change and the margin."""
    ratio, lo, hi = float(row["ratio"]), float(row["lo"]), float(row["hi"])
    color = VERDICT_COLORS.get(str(row["verdict"]), _OTHER)
    _margin_band(ax, margin, vertical=False)
    if math.isnan(lo) or math.isnan(hi):
        ax.plot([0], [ratio], "o", mfc="white", color=color, label="estimate (no interval)")
        ax.text(0, ratio, "  interval not available", va="center", fontsize=8, color="0.3")
    else:
        label = f"{float(row['confidence']):.2%} interval"
        ax.errorbar([0], [ratio], yerr=[[ratio - lo], [hi - ratio]], fmt="o", color=color, capsize=6, label=label)
    low = min(v for v in (ratio, lo, 1 / (1 + margin)) if math.isfinite(v))
    high = max(v for v in (ratio, hi, 1 + margin) if math.isfinite(v))
    pad = max(high - low, 0.02) * 0.25
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(-1, 1)
    ax.set_xticks([])
    ax.set_ylabel("median time B / median time A")
    ax.set_title(str(row["verdict"]), fontsize=10, color=color)
    ax.legend(loc="best", fontsize=7)


def point_figure(
    a: np.ndarray, b: np.ndarray, row: pd.Series | dict[str, Any], *, margin: float, title: str | None = None
) -> Figure:
    """One compared point: both distributions (left), the ratio and its interval (right).

    Parameters
    ----------
    a, b : array-like
        Wall times (s) of A's and B's runs at this point.
    row : pandas.Series or dict
        The point's row of :func:`labkit.analysis.compare.compare_samples` (``ratio``,
        ``lo``, ``hi``, ``verdict``, ``confidence``).
    margin : float
        The comparison's margin of practical equivalence (shaded).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(2, width=3.6, height=3.2)
    distributions_ax(axes[0, 0], a, b)
    ratio_ax(axes[0, 1], row, margin)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def ratios_figure(points: pd.DataFrame, *, margin: float, title: str | None = None) -> Figure:
    """Every compared point's ratio (B over A, median times) with its interval, one row each.

    Parameters
    ----------
    points : pandas.DataFrame
        :attr:`labkit.analysis.compare.Comparison.points` (``label``, ``ratio``, ``lo``,
        ``hi``, ``verdict``).
    margin : float
        The comparison's margin of practical equivalence (shaded).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(1, width=9.0, height=1.2 + 0.35 * len(points))
    ax = axes[0, 0]
    _margin_band(ax, margin, vertical=True)
    for y, (_, row) in enumerate(points.iterrows()):
        ratio, lo, hi = float(row["ratio"]), float(row["lo"]), float(row["hi"])
        color = VERDICT_COLORS.get(str(row["verdict"]), _OTHER)
        if math.isnan(lo) or math.isnan(hi):
            ax.plot([ratio], [y], "o", mfc="white", color=color)
        else:
            ax.errorbar([ratio], [y], xerr=[[ratio - lo], [hi - ratio]], fmt="o", color=color, capsize=3)
    ax.set_yticks(range(len(points)), [f"{lab} ({v})" for lab, v in zip(points["label"], points["verdict"])])
    ax.invert_yaxis()
    ax.set_xlabel("B / A, median times (hollow dot: no interval)")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def figure_uri(fig: Figure, dpi: int = 96) -> str:
    """A figure as a PNG ``data:`` URI, for a page that needs no other file."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
