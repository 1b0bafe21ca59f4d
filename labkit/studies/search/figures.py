"""Figures for hyperparameter searches: time to the best score and trials per second against
workers, and the best score found against time per pruner with the compute each spent.

Each takes a trials frame of ``optuna-search`` or ``sklearn-search`` and draws the tables of
:mod:`labkit.studies.search.analysis`, so a figure shows the numbers of the sentences printed beside
it. Whiskers are 95% intervals over the runs, drawn only where an interval exists; what a
search did not measure is written on its panel instead of drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.frames import pick_configuration, point_params
from labkit.plots.axes import errors, new_figure, rate_axis
from labkit.studies.search import analysis as search
from labkit.studies.search import pruners

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4", wrap=True)


def _interval_plot(ax: Axes, x: np.ndarray, table: pd.DataFrame, col: str, **kw: Any) -> bool:
    mid = table[col].to_numpy(float)
    if np.isnan(mid).all():
        return False
    err = errors(mid, table[f"{col}_lo"].to_numpy(float), table[f"{col}_hi"].to_numpy(float))
    ax.errorbar(x, mid, yerr=err, capsize=3, **kw)
    return True


def search_scaling_figure(
    frame: pd.DataFrame, where: dict[str, Any] | None = None, *, title: str | None = None
) -> Figure:
    """Left: seconds from the start of the search to its best score and to within 1% of it, per
    worker count (median of runs). Right: trials per second per worker count.

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of a search sweep over workers.
    where : dict, optional
        Fixes parameters, as for :func:`labkit.studies.search.analysis.search_scaling_table`.
    title : str, optional
        The figure's title (default: the configuration).

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = search.search_scaling_table(frame, where)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    x = table["workers"].to_numpy(int)
    drawn = [
        _interval_plot(left, x, table, "time_to_best_s", marker="o", label="best score"),
        _interval_plot(left, x - 0.04, table, "time_to_within_1pct_s", marker="s", label="within 1% of it"),
    ]
    if any(drawn):
        left.set_ylim(bottom=0)
        left.legend(fontsize="small")
    else:
        _note(left, "not measured: the search does not\nsay when each candidate finished")
    left.set(xlabel="workers", ylabel="seconds from the start of the search")
    left.set_title("Time to the best score")
    _interval_plot(right, x, table, "trials_per_s", marker="o")
    rate_axis(right, "trials")
    right.set_ylim(bottom=0)
    right.set(xlabel="workers", ylabel="trials per second")
    right.set_title("Trials per second")
    for ax in (left, right):
        ax.set_xticks(x)
    fig.suptitle(title or table.attrs["configuration"])
    return fig


def best_score_figure(
    frame: pd.DataFrame,
    by: str = "pruner",
    baseline: str = "none",
    where: dict[str, Any] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Left: the best score found so far against seconds from the start of the search, one line
    per run, one colour per ``by`` value (a pruner, or scikit-learn's ``method``); where the
    trials' times were not measured, each run's best score. Right: the compute each spent (sum
    of trial durations) against ``baseline``'s, below 1: saved.

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of a sweep over ``by``.
    by, baseline, where
        As for :func:`labkit.studies.search.pruners.pruner_table`.
    title : str, optional
        The figure's title (default: the configuration and workers).

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = pruners.pruner_table(frame, by, baseline, where)
    ok, _ = pick_configuration(frame, where, free=(by,))
    ok = ok[ok["workers"] == ok["workers"].max()]
    kinds = point_params(ok)[by].astype(str)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    drawn = False
    for i, name in enumerate(table[by]):
        runs = ok[(kinds == name).to_numpy()]
        curves = runs["curve"] if "curve" in runs.columns else []
        label = name
        for curve in curves:
            points = [(c["t_s"], c["best"]) for c in curve if c["best"] is not None] if isinstance(curve, list) else []
            if not points:
                continue
            t, best = np.array(points, float).T
            left.step(t, best, where="post", color=f"C{i}", alpha=0.6, lw=1.2, label=label)
            label, drawn = None, True
    if drawn:
        left.legend(fontsize="small", title=by)
        left.set(xlabel="seconds from the start of the search", ylabel="best score so far")
        left.set_title("Best score against time, per run")
    else:
        _best_per_run(left, ok, kinds, list(table[by]))
    x = np.arange(len(table))
    mid = table["compute_ratio"].to_numpy(float)
    right.bar(x, mid, color=[f"C{i}" for i in x], alpha=0.7)
    err = errors(mid, table["compute_ratio_lo"].to_numpy(float), table["compute_ratio_hi"].to_numpy(float))
    has = np.isfinite(table["compute_ratio_lo"].to_numpy(float))
    right.errorbar(x[has], mid[has], yerr=err[:, has], fmt="none", color="k", capsize=4)
    right.axhline(1.0, color="0.5", ls="--", lw=1)
    right.set_xticks(x, list(table[by]), rotation=15, fontsize="small")
    right.set(ylabel=f"trial-seconds / {baseline}'s (median)")
    right.set_title("Compute spent")
    fig.suptitle(title or f"{table.attrs['configuration']}, {int(table['workers'].iloc[0])} worker(s)")
    return fig


def _best_per_run(ax: Axes, ok: pd.DataFrame, kinds: pd.Series, names: list[str]) -> None:
    """Each run's best score per ``by`` value, where the times of the trials were not measured."""
    for i, name in enumerate(names):
        scores = search.values(ok[(kinds == name).to_numpy()], "best_score")
        ax.plot(np.full(scores.size, i), scores, "o", color=f"C{i}", alpha=0.6)
        if scores.size:
            ax.plot([i - 0.25, i + 0.25], [np.median(scores)] * 2, color="k", lw=1.5)
    ax.set_xticks(np.arange(len(names)), names, rotation=15, fontsize="small")
    ax.set(ylabel="best score of each run (bar: median)")
    ax.set_title("Best score per run (its time: not measured)")
