"""Figures for federated training: rounds, wall time and bytes to a target accuracy against one parameter.

The figure draws the table of :func:`labkit.studies.federated.analysis.federated_table`, so it shows
the same medians and 95% intervals as the sentences printed beside it. A point whose runs
did not all reach the target has no median: it is drawn as a cross at ``max_rounds`` in the
rounds panel, labelled "not reached", and left out of the other two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.common.errors import ParameterError
from labkit.plots.axes import errors, new_figure
from labkit.studies.federated import analysis as federated

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

_PANELS = (
    ("rounds", 1.0, "rounds to target"),
    ("time", 1.0, "wall time to target (s)"),
    ("bytes", 1e-6, "bytes communicated to target (MB)"),
)


def to_target_figure(frame: pd.DataFrame, factor: str, *, title: str | None = None) -> Figure:
    """Rounds, wall time and bytes to the target against the values of ``factor``.

    Parameters
    ----------
    frame : DataFrame
        ``fedavg`` trials (pick one setting of the parameters not drawn with
        :func:`labkit.analysis.pick_configuration`).
    factor : str
        The parameter on the x axis (``"clients"``, ``"local_epochs"``, ``"split"``).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, one series per setting of the other parameters that vary: medians
        of the runs with 95% intervals (no whiskers: no interval).
    """
    table = federated.federated_table(frame)
    if factor not in table.columns:
        have = list(table.columns[: table.columns.get_loc("workers")])
        raise ParameterError("factor", factor, f"a parameter that varies in these trials: {', '.join(have) or 'none'}")
    names = [c for c in table.columns[: table.columns.get_loc("workers")] if c != factor]
    values = sorted(table[factor].unique(), key=federated.value_order)
    where = {v: i for i, v in enumerate(values)}
    groups = list(table.groupby(names, sort=False)) if names else [((), table)]
    fig, axes = new_figure(3, width=4.0)
    width = 0.16 / (len(groups) - 1) if len(groups) > 1 else 0.0
    for k, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{n}={v}" for n, v in zip(names, key)) or "fedavg"
        x = np.array([where[v] for v in g[factor]], float) + (k - (len(groups) - 1) / 2) * width
        reached = (g["reached"] == g["runs"]).to_numpy()
        color = f"C{k % 10}"
        for ax, (short, scale, _) in zip(axes[0], _PANELS if reached.any() else ()):
            mid = g[short].to_numpy(float) * scale
            lo, hi = g[f"{short}_lo"].to_numpy(float) * scale, g[f"{short}_hi"].to_numpy(float) * scale
            err = errors(mid, lo, hi)[:, reached]
            ax.errorbar(x[reached], mid[reached], yerr=err, marker="o", capsize=3, color=color, label=label)
        if (~reached).any():
            tops = g["max_rounds"].to_numpy(float)[~reached]
            axes[0, 0].scatter(x[~reached], tops, marker="x", color=color, s=60, label=f"{label}: not reached")
            for xi, yi in zip(x[~reached], tops):
                axes[0, 0].annotate(
                    "not reached", (xi, yi), fontsize="x-small", textcoords="offset points", xytext=(4, 4)
                )
    target = table["target_accuracy"].iloc[0]
    for ax, (_, _, ylabel) in zip(axes[0], _PANELS):
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlim(-0.5, len(values) - 0.5)
        ax.set(xlabel=factor, ylabel=ylabel)
        ax.set_ylim(bottom=0)
    axes[0, 0].set_title(f"Rounds to {target * 100:g}% held-out accuracy")
    axes[0, 1].set_title("Wall time to target")
    axes[0, 2].set_title("Bytes communicated to target")
    axes[0, 0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
