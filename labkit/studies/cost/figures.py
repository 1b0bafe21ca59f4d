"""The cost study's figures: cloud cost per unit of work against workers, and energy with its method.

Each figure keeps the price snapshot it drew (``fig.labkit_prices``) and prints its source
and date under the panels; a table without a snapshot is refused. Error bars are the 95%
intervals of the medians, drawn only where one exists. Electricity has its own figure: it
is never stacked on, or added to, the cloud price.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.cost import snapshot_of
from labkit.plots.axes import errors, new_figure, no_data, worker_ticks

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def _caption(fig: Figure, table: pd.DataFrame, what: str) -> None:
    snapshot = snapshot_of(table, what)
    fig.labkit_prices = snapshot
    fig.text(0.01, -0.02, snapshot.describe(), fontsize="x-small", color="0.35", ha="left", va="top", wrap=True)


def cost_figure(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Cost per 10⁹ units of work against workers, one panel per workload, one line per device
    and instance type; lower is cheaper."""
    snapshot_of(table, "a cost figure")
    workloads = sorted(table["workload"].unique())
    fig, axes = new_figure(len(workloads), width=5.0)
    for ax, name in zip(axes[0], workloads):
        mine = table[table["workload"] == name]
        for (device, instance), g in mine.groupby(["device", "instance"], sort=True):
            g = g.sort_values("workers")
            ax.errorbar(
                g["workers"],
                g["cost"],
                yerr=errors(g["cost"], g["cost_lo"], g["cost_hi"]),
                marker="o" if device == "cpu" else "s",
                capsize=3,
                label=f"{device}: {instance}",
            )
        ax.set(xlabel="workers", ylabel=mine["unit"].iloc[0], yscale="log", title=f"{name}: cloud cost per unit")
        worker_ticks(ax, mine)
        ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    _caption(fig, table, "a cost figure")
    return fig


def energy_figure(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Energy per 10⁹ units of work against workers (left) and its electricity cost (right), one row
    of panels per workload, one line per device; an estimate is drawn hollow and dashed, and named one
    in the legend."""
    snapshot = snapshot_of(table, "an energy figure")
    workloads = sorted(table["workload"].unique())
    fig, axes = new_figure(2, len(workloads), width=5.0)
    for (left, right), name in zip(axes, workloads):
        mine = table[table["workload"] == name]
        unit = mine["unit"].iloc[0]
        for (device, basis), g in mine[mine["basis"] != "not measured"].groupby(["device", "basis"], sort=True):
            _energy_lines(left, right, g.sort_values("workers"), device, basis)
        left.set(xlabel="workers", ylabel=f"J {unit}", title=f"{name}: energy per unit of work")
        right.set(
            xlabel="workers",
            ylabel=f"{snapshot.electricity_currency} {unit}",
            title=f"{name}: electricity (not added to the cloud price)",
        )
        for ax, what in ((left, "energy"), (right, "electricity")):
            worker_ticks(ax, mine)
            if ax.lines:
                ax.set_yscale("log")
                ax.legend(fontsize="x-small")
            else:
                no_data(ax, what)
    if title:
        fig.suptitle(title)
    _caption(fig, table, "an energy figure")
    return fig


def _energy_lines(left: Any, right: Any, g: pd.DataFrame, device: str, basis: str) -> None:
    """One device's energy (left) and electricity (right) per unit of work; hollow and dashed when estimated."""
    estimate = basis == "estimate"
    style: dict[str, Any] = {"marker": "o", "capsize": 3, "linestyle": "--" if estimate else "-"}
    if estimate:
        style["markerfacecolor"] = "none"
    methods = ", ".join(sorted(set(g["energy_method"])))
    label = f"{device}: an estimate" if estimate else f"{device}: measured ({methods})"
    left.errorbar(g["workers"], g["j_per"], yerr=errors(g["j_per"], g["j_lo"], g["j_hi"]), label=label, **style)
    priced = g[np.isfinite(g["electricity"].to_numpy(float))]
    if not priced.empty:
        yerr = errors(priced["electricity"], priced["electricity_lo"], priced["electricity_hi"])
        right.errorbar(priced["workers"], priced["electricity"], yerr=yerr, label=label, **style)
