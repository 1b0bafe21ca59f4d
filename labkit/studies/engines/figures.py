"""The engines study's figures: start-up and cold against warm; warm time against scale factor; against N.

Error bars are 95% intervals, drawn only where one exists (warm repeats from 5 runs on;
start-ups and cold runs from 5 rounds on). One colour per engine throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.plots.axes import errors, new_figure, no_data

from .analysis import NAMES
from .sessions import ENGINES

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

COLOURS = {"spark": "tab:orange", "dask": "tab:blue", "duckdb": "tab:green"}


def _bars(ax, g: pd.DataFrame, x: float, width: float, colour: str, **kw) -> None:
    ax.bar(x, g["median_s"], width, yerr=errors(g["median_s"], g["lo_s"], g["hi_s"]), color=colour, capsize=3, **kw)


def phases_figure(table: pd.DataFrame) -> Figure:
    """Left: each engine's start-up against N. Right: at the smallest scale factor (where each query
    ran first in a session) and the most N, each query's cold run beside its median warm run, per
    engine (hatched: cold)."""
    fig, axes = new_figure(2, width=5.0)
    left, right = axes[0]
    start = table[table["phase"].eq("start")]
    for engine, g in start.groupby("engine", sort=False):
        g = g.sort_values("workers")
        yerr = errors(g["median_s"], g["lo_s"], g["hi_s"])
        left.errorbar(
            g["workers"], g["median_s"], yerr=yerr, marker="o", capsize=3, color=COLOURS[engine], label=NAMES[engine]
        )
    left.set(xlabel="N", ylabel="start-up (s)", title="Engine start-up")
    left.set_xticks(sorted(table["workers"].unique()))
    if start.empty:
        no_data(left, "start-ups")
    else:
        left.legend(fontsize="x-small")
    runs = table[table["phase"].isin(["cold", "warm"])]
    if runs.empty:
        no_data(right, "queries")
        return fig
    at = runs[runs["scale_factor"].eq(runs["scale_factor"].min()) & runs["workers"].eq(runs["workers"].max())]
    queries = sorted(at["query"].unique())
    width = 0.8 / (2 * len(ENGINES))
    for i, engine in enumerate(ENGINES):
        for j, phase in enumerate(("cold", "warm")):
            g = at[at["engine"].eq(engine) & at["phase"].eq(phase)].set_index("query").reindex(queries)
            x = np.arange(len(queries)) - 0.4 + (2 * i + j + 0.5) * width
            label = f"{NAMES[engine]} {phase}" if not g["median_s"].isna().all() else None
            _bars(right, g, x, width, COLOURS[engine], hatch="//" if phase == "cold" else None, label=label)
    right.set_xticks(np.arange(len(queries)), [q.upper() for q in queries])
    sf, n = at["scale_factor"].min(), at["workers"].max()
    right.set(ylabel="time (s)", yscale="log", title=f"Cold (hatched) and warm median, SF {sf:g}, N={n}")
    right.legend(fontsize="x-small")
    return fig


def _lines(ax, g: pd.DataFrame, x: str, engine: str, **kw) -> None:
    g = g.sort_values(x)
    yerr = errors(g["median_s"], g["lo_s"], g["hi_s"])
    ax.errorbar(g[x], g["median_s"], yerr=yerr, marker="o", capsize=3, color=COLOURS[engine], **kw)


def _factor_ticks(ax, factors: list[float]) -> None:
    """The scale factors themselves as the ticks of a log axis."""
    from matplotlib.ticker import NullLocator

    ax.set_xticks(factors, [f"{f:g}" for f in factors])
    ax.xaxis.set_minor_locator(NullLocator())


def scale_figure(table: pd.DataFrame) -> Figure:
    """One panel per query: the median warm time against the scale factor, one line per engine,
    at the most N (solid) and the fewest (dashed, where it differs)."""
    warm = table[table["phase"].eq("warm")]
    queries = sorted(warm["query"].unique()) or ["q1"]
    fig, axes = new_figure(len(queries), width=4.6)
    most, fewest = (warm["workers"].max(), warm["workers"].min()) if not warm.empty else (0, 0)
    for ax, query in zip(axes[0], queries):
        q = warm[warm["query"].eq(query)]
        for engine, g in q.groupby("engine", sort=False):
            _lines(ax, g[g["workers"].eq(most)], "scale_factor", engine, label=f"{NAMES[engine]}, N={most}")
            if fewest != most:
                _lines(ax, g[g["workers"].eq(fewest)], "scale_factor", engine, linestyle="--", alpha=0.6)
        ax.set(xlabel="TPC-H scale factor", ylabel="warm median (s)", xscale="log", yscale="log", title=query.upper())
        _factor_ticks(ax, sorted(warm["scale_factor"].unique()))
        if q.empty:
            no_data(ax, "warm runs")
        else:
            ax.legend(fontsize="x-small")
    fig.suptitle("Warm time against scale factor" + (f" (dashed: N={fewest})" if fewest != most else ""))
    return fig


def workers_figure(table: pd.DataFrame, cores: int) -> Figure:
    """One panel per query: the median warm time against N at the largest scale factor, one line per engine;
    the dotted line marks the cores."""
    warm = table[table["phase"].eq("warm")]
    queries = sorted(warm["query"].unique()) or ["q1"]
    fig, axes = new_figure(len(queries), width=4.6)
    sf = warm["scale_factor"].max() if not warm.empty else float("nan")
    for ax, query in zip(axes[0], queries):
        q = warm[warm["query"].eq(query) & warm["scale_factor"].eq(sf)]
        for engine, g in q.groupby("engine", sort=False):
            _lines(ax, g, "workers", engine, label=NAMES[engine])
        ax.axvline(cores, color="0.5", linestyle=":", label=f"cores ({cores})")
        ax.set(xlabel="N", ylabel="warm median (s)", yscale="log", title=f"{query.upper()}, SF {sf:g}")
        ax.set_xticks(sorted(warm["workers"].unique()))
        ax.legend(fontsize="x-small")
    return fig
