"""The CPU-against-GPU figures, in bytes of input per second: the numbers of the study's tables, drawn.

A bar is drawn only where an interval exists (:func:`labkit.plots.axes.errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.common.format import format_rate
from labkit.plots.axes import errors, new_figure, rate_axis

from . import analysis

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _size_axis(ax: Axes, sizes: Any) -> None:
    """n on a log axis, ticked at the sizes measured, as plain numbers."""
    from matplotlib.ticker import NullFormatter

    ticks = sorted({int(n) for n in sizes})
    ax.set_xscale("log")
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _rate_axis(ax: Axes) -> None:
    """Bytes/s on a log axis, its minor ticks labelled too (a narrow range may hold no decade)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    rate_axis(ax, "bytes")
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: format_rate(v, "bytes") if v > 0 else "0"))
    ax.set_ylabel("bytes of input/s")


def throughput_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Throughput (bytes of input/s) against the side n, one panel per operation, one line per
    device; the host↔device copies get a panel of their own where they ran."""
    table = analysis.throughput_table(frame)
    ops = [*analysis.compute_ops(frame), *(["copies"] if table["op"].isin(list(analysis.COPIES)).any() else [])]
    fig, axes = new_figure(min(4, len(ops)), -(-len(ops) // 4), width=4.0)
    panels = list(axes.flat)
    for ax, op in zip(panels, ops):
        shown = table[table["op"].isin(list(analysis.COPIES))] if op == "copies" else table[table["op"] == op]
        for label, g in shown.groupby("op" if op == "copies" else "device"):
            g = g.sort_values("n")
            name = analysis.COPIES.get(label, label)
            ax.errorbar(
                g["n"],
                g["throughput"],
                yerr=errors(g["throughput"], g["throughput_lo"], g["throughput_hi"]),
                marker="o",
                capsize=3,
                label=name,
            )
        ax.set(xlabel="n (input n × n)", title=op if op != "copies" else "host↔device copies")
        _size_axis(ax, shown["n"])
        _rate_axis(ax)
        ax.legend(fontsize="small")
    for ax in panels[len(ops) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def ratio_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """GPU throughput over CPU throughput against n, one line per operation; the dotted line is
    1 (no difference), above it the GPU is faster. Empty, with a note, where no GPU ran."""
    from matplotlib.ticker import FuncFormatter

    table = analysis.ratio_table(frame)
    fig, axes = new_figure(1, width=5.5)
    ax = axes[0, 0]
    if table.empty:
        ax.text(
            0.5,
            0.5,
            "GPU/CPU ratio not measured:\nno size ran on both devices",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="0.4",
        )
    for op, g in table.groupby("op", sort=False):
        g = g.sort_values("n")
        ax.errorbar(
            g["n"], g["ratio"], yerr=errors(g["ratio"], g["ratio_lo"], g["ratio_hi"]), marker="o", capsize=3, label=op
        )
    ax.axhline(1.0, color="0.5", linestyle=":")
    ax.set(yscale="log", xlabel="n (input n × n)", ylabel="GPU / CPU throughput")
    times = FuncFormatter(lambda v, _: f"{v:g}×")
    ax.yaxis.set_major_formatter(times)
    ax.yaxis.set_minor_formatter(times)
    if not table.empty:
        _size_axis(ax, table["n"])
    if not table.empty:
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
