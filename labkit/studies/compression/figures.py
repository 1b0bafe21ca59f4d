"""The compression study's figure: the numbers of its table, drawn; a bar or band only where an interval exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.plots.axes import new_figure

from . import analysis as data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def codec_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Compression ratio against throughput, one panel per operation, one colour per kind of data;
    up and right is better on both counts."""
    table = data.codec_table(frame)
    ops = sorted(table["op"].unique())
    fig, axes = new_figure(len(ops), width=5.0)
    for ax, op in zip(axes[0], ops):
        for kind, g in table[table["op"] == op].groupby("data"):
            ax.scatter(g["throughput"], g["compression_ratio"], label=kind)
            for r in g.itertuples():
                ax.annotate(r.codec, (r.throughput, r.compression_ratio), fontsize="x-small", alpha=0.8)
        ax.set(
            xscale="log", yscale="log", xlabel=f"{table['unit'].iloc[0]}/s (uncompressed)", ylabel="compression ratio"
        )
        ax.set_title(f"{op}: ratio vs throughput")
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
