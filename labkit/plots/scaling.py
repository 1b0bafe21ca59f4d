"""Static figures of a sweep; the live view redraws the same functions.

Each ``*_ax`` function draws on a Matplotlib axes it is given and takes the tidy trials
DataFrame; ``scaling_figure`` puts them together. Figures are ``matplotlib.figure.Figure``
objects not tracked by pyplot, so making many does not leak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import describe_config, format_rate, scaling, varying

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.4) -> tuple[Figure, Any]:
    """A Figure with a grid of axes, shown inline by Jupyter as a PNG."""
    from matplotlib.figure import Figure

    _show_figures_inline()
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _show_figures_inline() -> None:
    """In Jupyter, display Figure objects as PNG, as ``%matplotlib inline`` does.

    Our figures are not pyplot's, so without this a Figure shows as its text repr, and
    an executed notebook's HTML report would hold no image.
    """
    from ..live import in_jupyter

    if in_jupyter():
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(get_ipython(), {"png"}, dpi=100)


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per configuration, labelled by the parameters that vary."""
    from ..analysis import _config_keys

    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return []
    names = varying(frame)
    keys = _config_keys(ok)
    return [(describe_config(k, names) or "all", g) for k, g in ok.groupby(keys, sort=False)]


def _rate_axis(ax: Axes, unit: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_rate(v, unit) if v > 0 else "0"))


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no successful trials:\n{what} not measured", ha="center", va="center", transform=ax.transAxes, color="0.4")


def throughput_ax(ax: Axes, frame: pd.DataFrame) -> None:
    """Median throughput vs workers per configuration; bars span min..max of the repeats."""
    groups = _groups(frame)
    if not groups:
        _no_data(ax, "throughput")
        return
    for label, g in groups:
        stats = g.groupby("workers")["throughput"].agg(["median", "min", "max"])
        w = stats.index.to_numpy()
        line = ax.errorbar(w, stats["median"], yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]], marker="o", capsize=3, label=label)
        ax.scatter(g["workers"], g["throughput"], s=10, alpha=0.35, color=line[0].get_color())
    _rate_axis(ax, groups[0][1]["unit"].iloc[0])
    ax.set(xlabel="workers", ylabel="throughput", title="Throughput (median, min–max)")
    ax.set_ylim(bottom=0)
    _worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def _worker_ticks(ax: Axes, frame: pd.DataFrame) -> None:
    ws = sorted(frame["workers"].dropna().unique())
    if ws and len(ws) <= 12:
        ax.set_xticks([int(w) for w in ws])


def speedup_ax(ax: Axes, frame: pd.DataFrame, *, efficiency: bool = False) -> None:
    """Speedup (or efficiency) vs workers with 95% intervals, against the ideal line."""
    from matplotlib.ticker import PercentFormatter

    what = "efficiency" if efficiency else "speedup"
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        _no_data(ax, what)
        return
    table = scaling(frame)
    names = varying(frame)
    for config, g in table.groupby("config", sort=False):
        ax.errorbar(g["workers"], g[what], yerr=[g[what] - g[f"{what}_lo"], g[f"{what}_hi"] - g[what]], marker="o", capsize=3, label=describe_config(config, names) or "measured")
    w = np.array(sorted(table["workers"].unique()), float)
    w0 = table["baseline_workers"].min()
    if efficiency:
        ax.axhline(1.0, color="0.5", ls="--", label="ideal")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, max(1.1, float(table["efficiency_hi"].max()) * 1.05))
        ax.set(title="Parallel efficiency")
    else:
        ax.plot(w, w / w0, color="0.5", ls="--", label="ideal (linear)")
        ax.set_ylim(bottom=0)
        ax.set(title=f"Speedup over {int(w0)} worker{'s' if w0 > 1 else ''}")
    ax.set(xlabel="workers", ylabel=what)
    _worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def scaling_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Throughput, speedup and efficiency against workers, side by side."""
    fig, axes = new_figure(3)
    throughput_ax(axes[0, 0], frame)
    speedup_ax(axes[0, 1], frame)
    speedup_ax(axes[0, 2], frame, efficiency=True)
    if title:
        fig.suptitle(title)
    return fig
