"""Figures of what losing a worker cost: each run's time with the moment of the kill, and what Dask recomputed.

The figure draws the table of :func:`labkit.studies.recovery.analysis.recovery_runs`, so it shows
the same runs and numbers as the sentences of
:func:`~labkit.studies.recovery.analysis.describe_recovery` printed beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.plots.axes import new_figure
from labkit.studies.recovery.analysis import recovery_runs

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

_COLORS = {"clean": "C0", "faulty": "C3", "faulty, kill missed": "0.6"}
_PANELS = (
    ("recomputed_tasks", 1.0, "tasks recomputed"),
    ("recomputed_bytes", 2.0**-20, "bytes recomputed (MiB)"),
)


def recovery_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Each run's wall time with the moment of its kill; the tasks and bytes recomputed in it.

    Parameters
    ----------
    frame : DataFrame
        The trials of :func:`labkit.studies.recovery.run.recomputation`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Three panels over the runs in the order they ran: wall time (a bar per run,
        coloured by kind, hatched where other processes loaded the machine during it, a black
        tick where the worker was killed, a dashed line at each kind's median), tasks
        recomputed and MiB recomputed (each number written on its bar, so that a clean run's
        0 shows).
    """
    runs = recovery_runs(frame)
    x = runs["run"].to_numpy()
    colors = [_COLORS[k] for k in runs["kind"]]
    fig, axes = new_figure(3, width=4.0)
    ax = axes[0, 0]
    loaded = ["//" if u is True else None for u in runs["under_load"]]
    ax.bar(x, runs["wall_s"].to_numpy(float), color=colors, hatch=loaded, edgecolor="white")
    if any(loaded):
        ax.bar([x[0]], [0.0], color="white", edgecolor="0.3", hatch="//", label="under outside load")
    kills = runs["kill_s"].to_numpy(float)
    hit = ~np.isnan(kills)
    ax.scatter(x[hit], kills[hit], marker="_", s=400, color="black", zorder=3, label="worker killed")
    for kind, color in _COLORS.items():
        times = runs.loc[runs["kind"].eq(kind), "wall_s"]
        if len(times):
            ax.axhline(times.median(), color=color, linestyle="--", linewidth=1, label=f"{kind}: median")
    ax.set(xlabel="run (in the order they ran)", ylabel="wall time (s)", title="Time of each run")
    ax.set_ylim(0, 1.35 * np.nanmax(runs["wall_s"].to_numpy(float)))  # room for the legend
    ax.legend(fontsize="small", loc="upper left", ncols=2)
    for ax, (column, scale, label) in zip(axes[0, 1:], _PANELS):
        values = runs[column].to_numpy(float) * scale
        bars = ax.bar(x, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize="x-small")
        ax.set_ylim(0, max(1.0, 1.15 * np.nanmax(values, initial=0.0)))
        ax.set(xlabel="run (in the order they ran)", ylabel=label, title=label.split(" (")[0].capitalize())
    for ax in axes[0]:
        ax.set_xticks(x)
    if title:
        fig.suptitle(title)
    return fig
