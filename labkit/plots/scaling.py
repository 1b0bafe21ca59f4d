"""Static figures of a sweep; the live view redraws the same functions.

Each ``*_ax`` function draws on a Matplotlib axes it is given and takes the tidy trials
DataFrame (and, for the models, the fit objects of :mod:`labkit.fits`); the ``*_figure``
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

from ..analysis import describe_config, format_rate, scaling, varying

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..fits import AmdahlFit, OverheadFit, USLFit


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.4) -> tuple[Figure, Any]:
    """A Figure with a grid of axes, shown inline by Jupyter as a PNG."""
    from matplotlib.figure import Figure

    _show_figures_inline()
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _show_figures_inline() -> None:
    """In Jupyter, display Figure objects as PNG, as ``%matplotlib inline`` does.

    Our figures are not pyplot's, so without this a Figure shows as its text repr, and
    an executed notebook's HTML report would hold no image.
    """
    from ..live import in_jupyter

    if in_jupyter():
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(get_ipython(), {"png"}, dpi=100)


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per configuration, labelled by the parameters that vary."""
    from ..analysis import _config_keys

    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return []
    names = varying(frame)
    keys = _config_keys(ok)
    return [(describe_config(k, names) or "all", g) for k, g in ok.groupby(keys, sort=False)]


def _rate_axis(ax: Axes, unit: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_rate(v, unit) if v > 0 else "0"))


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no successful trials:\n{what} not measured", ha="center", va="center", transform=ax.transAxes, color="0.4")


def throughput_ax(ax: Axes, frame: pd.DataFrame) -> None:
    """Median throughput vs workers per configuration; bars span min..max of the repeats."""
    groups = _groups(frame)
    if not groups:
        _no_data(ax, "throughput")
        return
    for label, g in groups:
        stats = g.groupby("workers")["throughput"].agg(["median", "min", "max"])
        w = stats.index.to_numpy()
        line = ax.errorbar(w, stats["median"], yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]], marker="o", capsize=3, label=label)
        ax.scatter(g["workers"], g["throughput"], s=10, alpha=0.35, color=line[0].get_color())
    _rate_axis(ax, groups[0][1]["unit"].iloc[0])
    ax.set(xlabel="workers", ylabel="throughput", title="Throughput (median, min–max)")
    ax.set_ylim(bottom=0)
    _worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def _worker_ticks(ax: Axes, frame: pd.DataFrame) -> None:
    ws = sorted(frame["workers"].dropna().unique())
    if ws and len(ws) <= 12:
        ax.set_xticks([int(w) for w in ws])


def speedup_ax(ax: Axes, frame: pd.DataFrame, *, efficiency: bool = False) -> None:
    """Speedup (or efficiency) vs workers with 95% intervals, against the ideal line."""
    from matplotlib.ticker import PercentFormatter

    what = "efficiency" if efficiency else "speedup"
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        _no_data(ax, what)
        return
    table = scaling(frame)
    names = varying(frame)
    for config, g in table.groupby("config", sort=False):
        ax.errorbar(g["workers"], g[what], yerr=[g[what] - g[f"{what}_lo"], g[f"{what}_hi"] - g[what]], marker="o", capsize=3, label=describe_config(config, names) or "measured")
    w = np.array(sorted(table["workers"].unique()), float)
    w0 = table["baseline_workers"].min()
    if efficiency:
        ax.axhline(1.0, color="0.5", ls="--", label="ideal")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, max(1.1, float(table["efficiency_hi"].max()) * 1.05))
        ax.set(title="Parallel efficiency")
    else:
        ax.plot(w, w / w0, color="0.5", ls="--", label="ideal (linear)")
        ax.set_ylim(bottom=0)
        ax.set(title=f"Speedup over {int(w0)} worker{'s' if w0 > 1 else ''}")
    ax.set(xlabel="workers", ylabel=what)
    _worker_ticks(ax, frame)
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


# ------------------------------------------------------------------ fits and models


def _band_plot(ax: Axes, x: np.ndarray, mid: np.ndarray, lo: np.ndarray, hi: np.ndarray, label: str, **kw: Any) -> None:
    line = ax.plot(x, mid, label=label, **kw)[0]
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)


def fit_ax(ax: Axes, frame: pd.DataFrame, *, usl: USLFit | None = None, amdahl: AmdahlFit | None = None, where: dict[str, Any] | None = None, predict_to: int | None = None, efficiency: bool = False) -> None:
    """Measured speedup (or efficiency) with the fitted Amdahl and USL curves and bands.

    The measured points are the configuration the fits used (``where``, as in
    :func:`labkit.analysis.fit_usl`); beyond the largest count measured, up to
    ``predict_to`` (default twice it), the USL's predictions are drawn as open markers.
    """
    from matplotlib.ticker import PercentFormatter

    from ..analysis import pick_configuration

    what = "efficiency" if efficiency else "speedup"
    ok, label = pick_configuration(frame, where)
    table = scaling(ok)
    w0 = int(table["baseline_workers"].min())
    top = int(predict_to or 2 * table["workers"].max())
    grid = np.linspace(w0, top, 200)
    scale = (lambda n: n / w0) if efficiency else (lambda n: np.ones_like(n))
    ax.errorbar(table["workers"], table[what], yerr=[table[what] - table[f"{what}_lo"], table[f"{what}_hi"] - table[what]], fmt="o", color="k", capsize=3, label=f"measured ({label})", zorder=3)
    for fit, name, style in ((amdahl, "Amdahl", "--"), (usl, "USL", "-")):
        if fit is None:
            continue
        mid, lo, hi = fit.speedup(grid, baseline=w0)
        _band_plot(ax, grid, mid / scale(grid), lo / scale(grid), hi / scale(grid), f"{name} fit", ls=style)
    if usl is not None and top > max(usl.workers):
        beyond = np.unique(np.geomspace(max(usl.workers) * 1.5, top, 3).round())
        mid, lo, hi = usl.speedup(beyond, baseline=w0)
        ax.errorbar(beyond, mid / scale(beyond), yerr=[(mid - lo) / scale(beyond), (hi - mid) / scale(beyond)], fmt="o", mfc="white", capsize=3, color="C1", label="USL prediction")
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
    from ..analysis import karp_flatt

    table = karp_flatt(frame)
    names = varying(frame)
    for config, g in table.groupby("config", sort=False):
        ax.errorbar(g["workers"], g["serial_fraction"], yerr=[g["serial_fraction"] - g["serial_fraction_lo"], g["serial_fraction_hi"] - g["serial_fraction"]], marker="o", capsize=3, label=describe_config(config, names) or "measured")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xlabel="workers", ylabel="serial fraction e", title="Karp–Flatt serial fraction")
    _worker_ticks(ax, frame)
    ax.legend(fontsize="small")


def fit_figure(frame: pd.DataFrame, *, usl: USLFit | None = None, amdahl: AmdahlFit | None = None, where: dict[str, Any] | None = None, predict_to: int | None = None, title: str | None = None) -> Figure:
    """Speedup and efficiency with the fitted models, and the Karp–Flatt serial fraction."""
    from ..analysis import pick_configuration

    fig, axes = new_figure(3)
    fit_ax(axes[0, 0], frame, usl=usl, amdahl=amdahl, where=where, predict_to=predict_to)
    fit_ax(axes[0, 1], frame, usl=usl, amdahl=amdahl, where=where, predict_to=predict_to, efficiency=True)
    karp_flatt_ax(axes[0, 2], pick_configuration(frame, where)[0])
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------- data size, weak scaling


def throughput_vs_ax(ax: Axes, frame: pd.DataFrame, param: str) -> None:
    """Median throughput against a parameter (data size, chunk size), one line per worker
    count and other configuration; bars are 95% bootstrap intervals of the median."""
    from ..analysis import bootstrap_ratio, point_params

    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        _no_data(ax, "throughput")
        return
    params = point_params(ok)
    others = [n for n in varying(ok) if n != param]
    for key, g in ok.groupby([params["workers"], *(params[n] for n in others)], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join([f"{int(key[0])} worker{'' if key[0] == 1 else 's'}", *(f"{n}={v:g}" if isinstance(v, float) else f"{n}={v}" for n, v in zip(others, key[1:]))])
        stats = [(x, *bootstrap_ratio(gg["throughput"].to_numpy(float), np.array([1.0]))) for x, gg in g.groupby(params.loc[g.index, param])]
        x, mid, lo, hi = (np.array(v, float) for v in zip(*stats))
        ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], marker="o", capsize=3, label=label)
    values = params[param].astype(float)
    if values.max() / max(values.min(), 1e-300) > 10:
        ax.set_xscale("log")
    _rate_axis(ax, ok["unit"].iloc[0])
    ax.set_ylim(bottom=0)
    ax.set(xlabel=param, ylabel="throughput", title=f"Throughput vs {param}")
    ax.legend(fontsize="small")


def weak_scaling_ax(ax: Axes, frame: pd.DataFrame, size: str) -> None:
    """Weak-scaling efficiency (problem grown with the workers) with 95% intervals."""
    from matplotlib.ticker import PercentFormatter

    from ..analysis import weak_scaling

    table = weak_scaling(frame, size)
    for workload, g in table.groupby("workload", sort=False):
        ax.errorbar(g["workers"], g["efficiency"], yerr=[g["efficiency"] - g["efficiency_lo"], g["efficiency_hi"] - g["efficiency"]], marker="o", capsize=3, label=workload)
    ax.axhline(1.0, color="0.5", ls="--", label="ideal")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, max(1.15, float(table["efficiency_hi"].max()) * 1.05))
    ax.set(xlabel=f"workers ({size} grown with them)", ylabel="weak-scaling efficiency", title="Weak scaling")
    _worker_ticks(ax, table)
    ax.legend(fontsize="small")


def _side_by_side(left: Any, right: Any, title: str | None) -> Figure:
    """A two-panel figure: ``left(ax)`` and ``right(ax)`` draw the panels."""
    fig, axes = new_figure(2)
    left(axes[0, 0])
    right(axes[0, 1])
    if title:
        fig.suptitle(title)
    return fig


def weak_scaling_figure(frame: pd.DataFrame, size: str, *, title: str | None = None) -> Figure:
    """Throughput against data size per worker count, and weak-scaling efficiency."""
    return _side_by_side(lambda ax: throughput_vs_ax(ax, frame, size), lambda ax: weak_scaling_ax(ax, frame, size), title)


# ------------------------------------------------------------ overhead and roofline


def overhead_ax(ax: Axes, frame: pd.DataFrame, fit: OverheadFit) -> None:
    """Wall time against tasks per run, one colour per data size, with the overhead model."""
    from ..analysis import task_counts

    ok = frame[frame["status"] == "ok"]
    ok = ok[ok["workers"] == ok["workers"].max()]
    tasks = ok["tasks"] if "tasks" in ok.columns else task_counts(ok)
    nbytes = ok["bytes"] if "bytes" in ok.columns else ok["amount"]
    for i, (b, g) in enumerate(ok.groupby(nbytes)):
        stats = g.groupby(tasks.loc[g.index])["wall_s"].agg(["median", "min", "max"])
        t = stats.index.to_numpy(float)
        color = f"C{i}"
        ax.errorbar(t, stats["median"], yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]], fmt="o", capsize=3, color=color, label=f"{b / 2**20:.3g} MiB measured")
        grid = np.geomspace(t.min(), t.max(), 100)
        _band_plot(ax, grid, *fit.predict(grid, b), "", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="tasks per run", ylabel="wall time (s)", title="Overhead model: a + b·tasks + bytes/bandwidth")
    ax.legend(fontsize="small")


def chunk_figure(frame: pd.DataFrame, fit: OverheadFit, param: str = "chunk_mb", *, title: str | None = None) -> Figure:
    """Throughput against chunk size, and the fitted overhead model against the runs."""
    return _side_by_side(lambda ax: throughput_vs_ax(ax, frame, param), lambda ax: overhead_ax(ax, frame, fit), title)


def roofline_ax(ax: Axes, table: pd.DataFrame) -> None:
    """Fraction of the hardware limit per configuration (a table from roofline_fraction)."""
    from matplotlib.ticker import PercentFormatter

    labels = [f"{r.workload} {r.config}, {r.workers}w".replace("  ", " ") for r in table.itertuples()]
    y = np.arange(len(table))
    colors = [f"C{sorted(table['workload'].unique()).index(w)}" for w in table["workload"]]
    ax.barh(y, table["fraction"], xerr=[table["fraction"] - table["fraction_lo"], table["fraction_hi"] - table["fraction"]], color=colors, capsize=3)
    ax.set_yticks(y, labels, fontsize="small")
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="fraction of the probed limit", title="Roofline fraction")


def roofline_figure(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """One bar per configuration: how close each came to its hardware limit."""
    fig, axes = new_figure(1, width=6.5, height=max(2.5, 0.28 * len(table) + 1.2))
    roofline_ax(axes[0, 0], table)
    if title:
        fig.suptitle(title)
    return fig
