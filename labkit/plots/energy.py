"""Energy per unit of work, drawn so its method shows: measured bars filled, estimates hollow and dashed.

A point no method gave a value for has no bar: its place says "not measured" or "below
resolution" (a bar at 0 would read as no energy). Error bars are drawn only where repeats
give an interval (:func:`labkit.plots.axes.errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.analysis.energy import energy_per_unit, per_unit_scale
from labkit.common.errors import ParameterError
from labkit.common.format import format_workers
from labkit.measure.energy import BELOW_RESOLUTION, ESTIMATE

from .axes import errors, new_figure, no_data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MEASURED_STYLE = {"color": "C0", "edgecolor": "C0"}
ESTIMATE_STYLE = {"facecolor": "none", "edgecolor": "C1", "linestyle": "--", "linewidth": 1.5, "hatch": "//"}


def _labels(table: pd.DataFrame) -> list[str]:
    """A bar's label: the workers and the parameters that vary."""
    fixed = {"point", "workload", "workers", "unit", "energy_method", "j_per_unit", "lo", "hi", "trials"}
    fixed |= {"energy_assumption", "note"}
    names = [c for c in table.columns if c not in fixed]
    multi = table["workload"].nunique() > 1
    return [
        "\n".join(
            [*([str(r["workload"])] if multi else []), format_workers(r["workers"]), *(f"{n}={r[n]}" for n in names)]
        )
        for _, r in table.iterrows()
    ]


def _no_value(ax: Axes, table: pd.DataFrame, x: np.ndarray, mid: np.ndarray, top: float) -> None:
    """Where a point has no value, say why in the bar's place."""
    for i in np.flatnonzero(~np.isfinite(mid)):
        why = "below\nresolution" if table["energy_method"].iloc[i] == BELOW_RESOLUTION else "not\nmeasured"
        ax.text(x[i], 0.05 * top, why, ha="center", va="bottom", fontsize="small", color="0.35")


def energy_ax(ax: Axes, table: pd.DataFrame) -> None:
    """Joules per unit of work per grid point (a table from :func:`energy_per_unit`).

    Measured values are filled bars, estimates hollow dashed bars labelled "estimate" in the
    legend; where there is no value the bar's place says why, with no bar.
    """
    if table.empty:
        no_data(ax, "energy")
        return
    units = sorted(table["unit"].astype(str).unique())
    if len(units) > 1:
        raise ParameterError("table", units, "the points of one unit of work (one workload's trials)")
    scale, per = per_unit_scale(units[0], table["j_per_unit"])
    x = np.arange(len(table))
    mid, lo, hi = (table[c].to_numpy(float) * scale for c in ("j_per_unit", "lo", "hi"))
    estimate = table["energy_method"].eq(ESTIMATE).to_numpy()
    for keep, style in ((~estimate, MEASURED_STYLE), (estimate, ESTIMATE_STYLE)):
        keep = keep & np.isfinite(mid)
        if not keep.any():
            continue
        if style is ESTIMATE_STYLE:
            assumed = table["energy_assumption"][keep].dropna()
            label = f"estimate ({assumed.iloc[0].split(' × ')[0]}, declared)" if len(assumed) else "estimate"
        else:
            label = f"measured ({', '.join(sorted(set(table['energy_method'][keep])))})"
        ax.bar(x[keep], mid[keep], width=0.6, label=label, **style)
        sized = keep & np.isfinite(lo) & np.isfinite(hi)  # no interval: no error bar (not a zero-width one)
        if sized.any():
            ax.errorbar(x[sized], mid[sized], yerr=errors(mid, lo, hi)[:, sized], fmt="none", ecolor="0.2", capsize=3)
    top = float(np.nanmax(mid)) if np.isfinite(mid).any() else 1.0
    _no_value(ax, table, x, mid, top)
    ax.set_xticks(x, _labels(table), fontsize="small")
    ax.set_ylim(0, 1.2 * top)
    ax.set(ylabel=f"energy (J per {per})", title="Energy per unit of work")
    if np.isfinite(mid).any():
        ax.legend(fontsize="small", loc="upper right")


def energy_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Joules per unit of work of a sweep's trials (after :func:`estimate_energy` where wanted),
    one bar per grid point, the method shown (see :func:`energy_ax`)."""
    table = energy_per_unit(frame)
    fig, axes = new_figure(width=max(4.2, 1.1 * len(table) + 1.5))
    energy_ax(axes[0, 0], table)
    if title:
        fig.suptitle(title)
    return fig
