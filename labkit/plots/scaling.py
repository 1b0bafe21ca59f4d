"""Strong and weak scaling figures: throughput, speedup, efficiency, fitted models, Karp–Flatt.

Each ``*_ax`` function draws on a Matplotlib axes it is given and takes the tidy trials
DataFrame (and, for the models, the fit objects of :mod:`labkit.analysis.fits`); the ``*_figure``
functions put them together: ``scaling_figure`` (throughput, speedup, efficiency),
``fit_figure`` (speedup and efficiency with the Amdahl and USL fits and their bands, the
USL's predictions beyond the counts measured, Karp–Flatt), ``weak_scaling_figure``
(throughput vs data size, weak-scaling efficiency), ``chunk_figure`` (throughput vs chunk
size, the overhead model) and ``roofline_figure``. Figures are ``matplotlib.figure.Figure``
objects not tracked by pyplot, so making many does not leak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis import (
    describe_config,
    karp_flatt,
    pick_configuration,
    point_params,
    ratio_estimate,
    strong_scaling,
    varying,
    weak_scaling,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from labkit.analysis import AmdahlFit, USLFit
from .axes import band_plot, config_series, new_figure, no_data, rate_axis, side_by_side, worker_ticks


def throughput_ax(ax: Axes, frame: pd.DataFrame) -> None:
    """Median throughput vs workers per configuration; bars span min..max of the repeats."""
    series = config_series(frame)
    if not series:
        no_data(ax, "throughput")
        return
    for label, g in series:
        stats = g.groupby("workers")["throughput"].agg(["median", "min", "max"])
        w = stats.index.to_numpy()
        line = ax.errorbar(
            w,
            stats["median"],
            yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]],
            marker="o",
            capsize=3,
            label=label,
        )
        ax.scatter(g["workers"], g["throughput"], s=10, alpha=0.35, color=line[0].get_color())
    mark_loaded(ax, frame, "workers", "throughput")
    rate_axis(ax, series[0][1]["unit"].iloc[0])
    ax.set(xlabel="workers", ylabel="throughput", title="Throughput (median, min–max)")
    ax.set_ylim(bottom=0)
    worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def mark_loaded(ax: Axes, frame: pd.DataFrame, x: str, y: str) -> None:
    """Circle the ok trials that ran under outside load (answers leave them out where enough
    others remain), with one legend entry; nothing where none did."""
    if "under_load" not in frame:
        return
    loaded = frame[frame["status"].eq("ok") & frame["under_load"].eq(True)]
    if len(loaded):
        ax.scatter(
            loaded[x], loaded[y], s=60, facecolors="none", edgecolors="C3", lw=1.2, label="ran under outside load"
        )


def speedup_ax(ax: Axes, frame: pd.DataFrame, *, efficiency: bool = False) -> None:
    """Speedup (or efficiency) vs workers with 95% intervals, against the ideal line."""
    from matplotlib.ticker import PercentFormatter

    what = "efficiency" if efficiency else "speedup"
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        no_data(ax, what)
        return
    table = strong_scaling(frame)
    names = varying(frame)
    for config, g in table.groupby("config", sort=False):
        ax.errorbar(
            g["workers"],
            g[what],
            yerr=[g[what] - g[f"{what}_lo"], g[f"{what}_hi"] - g[what]],
            marker="o",
            capsize=3,
            label=describe_config(config, names) or "measured",
        )
    w = np.array(sorted(table["workers"].unique()), float)
    w0 = table["baseline_workers"].min()
    if efficiency:
        ax.axhline(1.0, color="0.5", ls="--", label="ideal")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set(title="Parallel efficiency")
        top = max(1.1, 1.3 * float(table["efficiency"].max()))
    else:
        ax.plot(w, w / w0, color="0.5", ls="--", label="ideal (linear)")
        ax.set(title=f"Speedup over {int(w0)} worker{'s' if w0 > 1 else ''}")
        top = 1.3 * max(float(w.max() / w0), float(table["speedup"].max()))
    # The axes follow the estimates and the ideal line: an interval wider than that (few or
    # noisy runs) runs off the top, said on the figure, rather than squashing the data.
    highest = float(np.nanmax(table[f"{what}_hi"])) if table[f"{what}_hi"].notna().any() else 0.0
    ax.set_ylim(0, top)
    if highest > top:
        ax.text(0.02, 0.97, "some intervals run past the top", transform=ax.transAxes, fontsize="x-small", va="top")
    ax.set(xlabel="workers", ylabel=what)
    worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def scaling_figure(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Throughput, speedup and efficiency against workers, side by side."""
    fig, axes = new_figure(3)
    throughput_ax(axes[0, 0], frame)
    speedup_ax(axes[0, 1], frame)
    speedup_ax(axes[0, 2], frame, efficiency=True)
    if title:
        fig.suptitle(title)
    return fig


def fit_ax(
    ax: Axes,
    frame: pd.DataFrame,
    *,
    usl: USLFit | None = None,
    amdahl: AmdahlFit | None = None,
    where: dict[str, Any] | None = None,
    predict_to: int | None = None,
    efficiency: bool = False,
) -> None:
    """Measured speedup (or efficiency) with the fitted Amdahl and USL curves and bands.

    The measured points are the configuration the fits used (``where``, as in
    :func:`labkit.analysis.fit_usl`); beyond the largest count measured, up to
    ``predict_to`` (default twice it), the USL's predictions are drawn as open markers.
    """
    from matplotlib.ticker import PercentFormatter

    what = "efficiency" if efficiency else "speedup"
    ok, label = pick_configuration(frame, where)
    table = strong_scaling(ok)
    w0 = int(table["baseline_workers"].min())
    top = int(predict_to or 2 * table["workers"].max())
    grid = np.linspace(w0, top, 200)
    scale = (lambda n: n / w0) if efficiency else (lambda n: np.ones_like(n))
    ax.errorbar(
        table["workers"],
        table[what],
        yerr=[table[what] - table[f"{what}_lo"], table[f"{what}_hi"] - table[what]],
        fmt="o",
        color="k",
        capsize=3,
        label=f"measured ({label})",
        zorder=3,
    )
    for fit, name, style in ((amdahl, "Amdahl", "--"), (usl, "USL", "-")):
        if fit is None:
            continue
        mid, lo, hi = fit.speedup(grid, baseline=w0)
        band_plot(ax, grid, mid / scale(grid), lo / scale(grid), hi / scale(grid), f"{name} fit", ls=style)
    if usl is not None and top > max(usl.workers):
        beyond = np.unique(np.geomspace(max(usl.workers) * 1.5, top, 3).round())
        mid, lo, hi = usl.speedup(beyond, baseline=w0)
        ax.errorbar(
            beyond,
            mid / scale(beyond),
            yerr=[(mid - lo) / scale(beyond), (hi - mid) / scale(beyond)],
            fmt="o",
            mfc="white",
            capsize=3,
            color="C1",
            label="USL prediction",
        )
    ideal = np.ones_like(grid) if efficiency else grid / w0
    ax.plot(grid, ideal, color="0.5", ls=":", label="ideal")
    if efficiency:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, max(1.15, float(table["efficiency_hi"].max()) * 1.05))
    else:
        ax.set_ylim(bottom=0)
    ax.set(xlabel="workers", ylabel=what, title=f"{what.capitalize()} and fitted models")
    ax.legend(fontsize="small")


def karp_flatt_ax(ax: Axes, frame: pd.DataFrame) -> None:
    """The Karp–Flatt serial fraction per worker count: flat is Amdahl, rising is overhead."""

    table = karp_flatt(frame)
    names = varying(frame)
    for config, g in table.groupby("config", sort=False):
        ax.errorbar(
            g["workers"],
            g["serial_fraction"],
            yerr=[g["serial_fraction"] - g["serial_fraction_lo"], g["serial_fraction_hi"] - g["serial_fraction"]],
            marker="o",
            capsize=3,
            label=describe_config(config, names) or "measured",
        )
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xlabel="workers", ylabel="serial fraction e", title="Karp–Flatt serial fraction")
    worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def fit_figure(
    frame: pd.DataFrame,
    *,
    usl: USLFit | None = None,
    amdahl: AmdahlFit | None = None,
    where: dict[str, Any] | None = None,
    predict_to: int | None = None,
    title: str | None = None,
) -> Figure:
    """Speedup and efficiency with the fitted models, and the Karp–Flatt serial fraction."""

    fig, axes = new_figure(3)
    fit_ax(axes[0, 0], frame, usl=usl, amdahl=amdahl, where=where, predict_to=predict_to)
    fit_ax(axes[0, 1], frame, usl=usl, amdahl=amdahl, where=where, predict_to=predict_to, efficiency=True)
    karp_flatt_ax(axes[0, 2], pick_configuration(frame, where)[0])
    if title:
        fig.suptitle(title)
    return fig


def throughput_vs_ax(ax: Axes, frame: pd.DataFrame, param: str) -> None:
    """Median throughput against a parameter (data size, chunk size), one line per worker
    count and other configuration; bars are 95% bootstrap intervals of the median."""

    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        no_data(ax, "throughput")
        return
    params = point_params(ok)
    others = [n for n in varying(ok) if n != param]
    for key, g in ok.groupby([params["workers"], *(params[n] for n in others)], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(
            [
                f"{int(key[0])} worker{'' if key[0] == 1 else 's'}",
                *(f"{n}={v:g}" if isinstance(v, float) else f"{n}={v}" for n, v in zip(others, key[1:])),
            ]
        )
        stats = [
            (x, *ratio_estimate(gg["throughput"].to_numpy(float), 1.0)[:3])
            for x, gg in g.groupby(params.loc[g.index, param])
        ]
        x, mid, lo, hi = (np.array(v, float) for v in zip(*stats))
        ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], marker="o", capsize=3, label=label)
    values = params[param].astype(float)
    if values.max() / max(values.min(), 1e-300) > 10:
        ax.set_xscale("log")
    rate_axis(ax, ok["unit"].iloc[0])
    ax.set_ylim(bottom=0)
    ax.set(xlabel=param, ylabel="throughput", title=f"Throughput vs {param}")
    ax.legend(fontsize="small")


def weak_scaling_ax(ax: Axes, frame: pd.DataFrame, size: str) -> None:
    """Weak-scaling efficiency (problem grown with the workers) with 95% intervals."""
    from matplotlib.ticker import PercentFormatter

    table = weak_scaling(frame, size)
    for workload, g in table.groupby("workload", sort=False):
        ax.errorbar(
            g["workers"],
            g["efficiency"],
            yerr=[g["efficiency"] - g["efficiency_lo"], g["efficiency_hi"] - g["efficiency"]],
            marker="o",
            capsize=3,
            label=workload,
        )
    ax.axhline(1.0, color="0.5", ls="--", label="ideal")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, max(1.15, float(table["efficiency_hi"].max()) * 1.05))
    ax.set(xlabel=f"workers ({size} grown with them)", ylabel="weak-scaling efficiency", title="Weak scaling")
    worker_ticks(ax, table)
    ax.legend(fontsize="small")


def weak_scaling_figure(frame: pd.DataFrame, size: str, *, title: str | None = None) -> Figure:
    """Throughput against data size per worker count, and weak-scaling efficiency."""
    return side_by_side(
        lambda ax: throughput_vs_ax(ax, frame, size), lambda ax: weak_scaling_ax(ax, frame, size), title
    )
