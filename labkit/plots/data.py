"""Figures for the data notebooks: efficiency and time split per kind of data, latency per batch size,
compression ratio against throughput, and slowdown against the working set.

Each takes the tables of :mod:`labkit.analysis.data` (computed here from the trials), so a
figure shows the same numbers as the sentences printed beside it. A bar or band is drawn
only where an interval exists; a point without one is drawn alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from labkit.analysis import data

from .axes import new_figure, rate_axis
from .resources import SPLIT_COLORS, SPLIT_ORDER

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def _errors(mid: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Error-bar lengths below and above; 0 where no interval exists."""
    return np.nan_to_num(np.vstack([mid - lo, hi - mid]), nan=0.0)


def variety_figure(frames: Mapping[str, pd.DataFrame], *, title: str | None = None) -> Figure:
    """Left: parallel efficiency at the most workers per kind of data, with 95% intervals.
    Right: where each kind's worker time went at its fewest and most workers."""
    table = data.kind_scaling(frames)
    fig, axes = new_figure(2, width=5.0)
    ax = axes[0, 0]
    x = np.arange(len(table))
    eff = table["efficiency"].to_numpy(float)
    ax.bar(x, eff, color="tab:blue", alpha=0.7)
    err = _errors(eff, table["efficiency_lo"].to_numpy(float), table["efficiency_hi"].to_numpy(float))
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


def latency_figure(frame: pd.DataFrame, target_s: float, *, quantile: str = "p95", title: str | None = None) -> Figure:
    """Left: the latency ``quantile`` per batch size (median of runs, 95% interval) against the
    target. Right: records per second per batch size, with the arrival rate dashed."""
    table = data.latency_table(frame, quantile)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    for (rate, workers), g in table.groupby(["rate", "workers"]):
        label = f"{rate:g}/s, {workers} worker(s)"
        mid = g[f"{quantile}_s"].to_numpy(float)
        err = _errors(mid, g[f"{quantile}_lo"].to_numpy(float), g[f"{quantile}_hi"].to_numpy(float))
        left.errorbar(g["batch"], mid, yerr=err, marker="o", capsize=3, label=label)
        line = right.plot(g["batch"], g["records_per_s"], marker="o", label=label)[0]
        right.axhline(rate, color=line.get_color(), ls="--", lw=1)
    left.axhline(target_s, color="tab:red", ls=":", label=f"target {target_s:g} s")
    left.set(xscale="log", yscale="log", xlabel="batch size (records)", ylabel=f"{quantile} latency (s)")
    left.set_title(f"{quantile} latency per batch size")
    left.legend(fontsize="small")
    right.set(xscale="log", xlabel="batch size (records)", ylabel="records/s (dashed: arrival rate)")
    right.set_title("Throughput")
    rate_axis(right, "records")
    if title:
        fig.suptitle(title)
    return fig


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


def spill_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Left: throughput per working-set size (as a share of the memory limit). Right: the
    slowdown against the smallest, with 95% intervals; the dotted line is Dask's spill target."""
    table = data.spill_table(frame)
    fig, axes = new_figure(2)
    left, right = axes[0, 0], axes[0, 1]
    ok = table[table["runs"] > 0]
    left.plot(ok["ratio"], ok["throughput"], marker="o")
    rate_axis(left, str(ok["unit"].iloc[0]))
    left.set(xlabel="working set / memory limit", ylabel="throughput")
    left.set_title("Throughput")
    mid = ok["slowdown"].to_numpy(float)
    right.errorbar(ok["ratio"], mid, yerr=_errors(mid, ok["slowdown_lo"], ok["slowdown_hi"]), marker="o", capsize=3)
    right.axhline(1.0, color="0.5", ls="--", lw=1)
    right.set(xlabel="working set / memory limit", ylabel="slowdown (× the smallest's time per byte)")
    right.set_title("Slowdown")
    for ax in (left, right):
        ax.axvline(0.6, color="tab:red", ls=":", lw=1)
    if title:
        fig.suptitle(title)
    return fig
