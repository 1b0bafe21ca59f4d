"""The what-if study's figure: each question's predicted wall time with the range of its
replays, the traced run's time as a line, and measured medians where runs were made."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labkit.plots.axes import errors, new_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def what_if_figure(table: pd.DataFrame, measured: pd.DataFrame | None = None, *, title: str | None = None) -> Figure:
    """Predicted wall time per question (hollow squares: estimates, with the 2.5–97.5% range of
    the replays), the traced run's wall time (dashed line) and, from
    :func:`~.analysis.against_measured`, the measured medians (filled dots, 95% intervals)."""
    fig, axes = new_figure(1, width=6.5)
    ax = axes[0][0]
    y = np.arange(len(table))
    ax.errorbar(
        table["predicted_s"], y, xerr=errors(table["predicted_s"], table["lo"], table["hi"]),
        fmt="s", mfc="none", capsize=3, label="predicted (estimate)",
    )  # fmt: skip
    if measured is not None and len(measured):
        m = measured.set_index("question").reindex(table["question"])
        ax.errorbar(
            m["measured_s"], y + 0.15, xerr=errors(m["measured_s"], m["measured_lo"], m["measured_hi"]),
            fmt="o", capsize=3, label="measured median",
        )  # fmt: skip
    traced = table["traced_s"].dropna()
    if len(traced):
        ax.axvline(float(traced.iloc[0]), ls="--", color="0.4", label="traced run")
    ax.set_yticks(y, table["question"])
    ax.invert_yaxis()
    ax.set(xlabel="wall time (s)", xlim=(0, None))
    ax.legend(fontsize="x-small")
    if title:
        ax.set_title(title)
    return fig
