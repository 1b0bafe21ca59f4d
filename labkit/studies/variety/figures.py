"""The variety study's figure: the numbers of its table, drawn; a bar or band only where an interval exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from labkit.plots.axes import errors, new_figure
from labkit.plots.resources import SPLIT_COLORS, SPLIT_ORDER

from . import analysis as data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def variety_figure(frames: Mapping[str, pd.DataFrame], *, title: str | None = None) -> Figure:
    """Left: parallel efficiency at the most workers per kind of data, with 95% intervals.
    Right: where each kind's worker time went at its fewest and most workers."""
    table = data.kind_scaling(frames)
    fig, axes = new_figure(2, width=5.0)
    ax = axes[0, 0]
    x = np.arange(len(table))
    eff = table["efficiency"].to_numpy(float)
    ax.bar(x, eff, color="tab:blue", alpha=0.7)
    err = errors(eff, table["efficiency_lo"].to_numpy(float), table["efficiency_hi"].to_numpy(float))
    ax.errorbar(x, eff, yerr=err, fmt="none", color="k", capsize=4)
    ax.axhline(1.0, color="0.5", ls="--", lw=1)
    ax.set_xticks(
        x, [f"{k}\n{int(w)} vs {int(b)}w" for k, w, b in table[["kind", "workers", "baseline_workers"]].values]
    )
    ax.set_ylabel("parallel efficiency")
    ax.set_title("Efficiency at the most workers")
    ax = axes[0, 1]
    labels, bottom = [], np.zeros(2 * len(table))
    for prefix in ("base_share_", "share_"):
        labels += [
            f"{k}\n{int(w)}w"
            for k, w in table[["kind", "baseline_workers" if prefix == "base_share_" else "workers"]].values
        ]
    order = np.argsort(np.tile(np.arange(len(table)), 2), kind="stable")
    for b in SPLIT_ORDER:
        shares = np.concatenate([table[f"base_share_{b}"], table[f"share_{b}"]]).astype(float)[order]
        ax.bar(np.arange(len(shares)), np.nan_to_num(shares), bottom=bottom, color=SPLIT_COLORS[b], label=b)
        bottom += np.nan_to_num(shares)
    ax.set_xticks(np.arange(len(labels)), np.array(labels)[order], fontsize="small")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of worker time (blank: not measured)")
    ax.set_title("Where the time went")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1, 1))
    if title:
        fig.suptitle(title)
    return fig
