"""The figures of a whole sweep: scaling on top, resources and time split below."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .axes import new_figure
from .resources import cpu_ax, memory_ax, time_split_ax
from .scaling import speedup_ax, throughput_ax

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def live_figure(frame: pd.DataFrame, samples: pd.DataFrame | None, *, t0: float | None = None) -> Figure:
    """What the live view redraws: worker CPU and memory, throughput so far, time split."""
    fig, axes = new_figure(2, 2, width=4.6, height=2.9)
    cpu_ax(axes[0, 0], samples, t0)
    memory_ax(axes[0, 1], samples, t0)
    throughput_ax(axes[1, 0], frame)
    time_split_ax(axes[1, 1], frame)
    return fig


def sweep_figure(frame: pd.DataFrame, samples: pd.DataFrame | None = None, *, title: str | None = None) -> Figure:
    """Throughput, speedup, efficiency; worker CPU, memory, and where the time went."""
    fig, axes = new_figure(3, 2, width=4.2, height=3.2)
    throughput_ax(axes[0, 0], frame)
    speedup_ax(axes[0, 1], frame)
    speedup_ax(axes[0, 2], frame, efficiency=True)
    cpu_ax(axes[1, 0], samples)
    memory_ax(axes[1, 1], samples)
    time_split_ax(axes[1, 2], frame)
    if title:
        fig.suptitle(title)
    return fig
