"""The edge study's figure: p90 latency and bytes moved against input size, on the device and offloaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.plots.axes import new_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def edge_figure(table: pd.DataFrame, bandwidth_mbit: float) -> Figure:
    """Left: p90 latency (measured, points) and the time model (dashed) against size; right: bytes moved per input."""
    fig, axes = new_figure(2, width=5.0)
    left, right = axes[0]
    for col, model, label in (
        ("edge_p90_s", "model_edge_s", "on the device"),
        ("offload_p90_s", "model_offload_s", "offloaded"),
    ):
        line = left.plot(table["size_kb"], table[col], "o-", label=f"{label} (p90, measured)")[0]
        left.plot(table["size_kb"], table[model], "--", color=line.get_color(), label=f"{label} (time model)")
    left.set(
        xscale="log",
        yscale="log",
        xlabel="input size (KiB)",
        ylabel="latency (s)",
        title=f"Latency against input size ({bandwidth_mbit:g} Mbit/s link)",
    )
    left.legend(fontsize="x-small")
    right.plot(table["size_kb"], table["offload_bytes"].clip(lower=1), "o-", label="offloaded (bytes on the link)")
    right.plot(table["size_kb"], table["edge_bytes"].clip(lower=1), "o-", label="on the device (none)")
    right.set(
        xscale="log", yscale="log", xlabel="input size (KiB)", ylabel="bytes moved per input", title="Bytes moved"
    )
    right.legend(fontsize="x-small")
    return fig
