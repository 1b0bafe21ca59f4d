"""Advice from a sweep: the worker count and chunk size to use, and why, in words.

"Best" means within noise of the fastest: the 95% bootstrap interval of the throughput
ratio to the best reaches 1. Among those, the cheapest choice wins (fewest workers,
largest chunk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_rate, format_workers

from .frames import pick_configuration, point_params
from .intervals import bootstrap_ratio

if TYPE_CHECKING:
    import pandas as pd

    from .fits import USLFit
    from .overhead import OverheadFit


@dataclass(frozen=True)
class Recommendation:
    """A recommended value of one parameter, the evidence, and the reason in words."""

    parameter: str
    value: Any
    throughput: float
    throughput_lo: float
    throughput_hi: float
    unit: str
    reason: str

    def describe(self) -> str:
        return self.reason


def _within_noise(by_value: dict[Any, np.ndarray]) -> tuple[Any, dict[Any, tuple[float, float, float]]]:
    """The value of best median throughput, and each value's ratio to it with its interval."""
    best = max(by_value, key=lambda v: float(np.median(by_value[v])))
    return best, {v: bootstrap_ratio(tp, by_value[best]) for v, tp in by_value.items()}


def _median_interval(tp: np.ndarray) -> tuple[float, float, float]:
    return bootstrap_ratio(tp, np.array([1.0]))


def recommend_workers(
    frame: pd.DataFrame, *, where: dict[str, Any] | None = None, usl: USLFit | None = None
) -> Recommendation:
    """The fewest workers whose throughput is within run-to-run noise of the best measured.

    Within noise: the 95% bootstrap interval of its throughput ratio to the best reaches 1.
    With a USL fit, the reason also says whether more workers than measured should help.
    """
    ok, label = pick_configuration(frame, where)
    by_w = {int(w): g["throughput"].to_numpy(float) for w, g in ok.groupby("workers")}
    best, ratios = _within_noise(by_w)
    chosen = min(w for w, (_, _, hi) in ratios.items() if hi >= 1)
    unit = ok["unit"].iloc[0]
    mid, lo, hi = _median_interval(by_w[chosen])
    if chosen == best:
        reason = f"{format_workers(chosen)} for {label}: the highest throughput measured, {format_rate(mid, unit)}"
    else:
        r = ratios[chosen]
        reason = (
            f"{format_workers(chosen)} for {label}: {format_rate(mid, unit)}, {r[0]:.0%} of the best measured "
            f"({format_workers(best)}) and within run-to-run noise of it (interval {r[1]:.0%}–{r[2]:.0%}), with fewer workers"
        )
    if usl is not None and np.isfinite(usl.peak_workers):
        if usl.peak_workers > max(by_w) and best == max(by_w):
            reason += f"; throughput was still rising at {format_workers(max(by_w))} and the USL fit puts the peak near {format_workers(round(usl.peak_workers, 1))}: measure there before relying on it"
        elif usl.peak_workers <= max(by_w):
            reason += f"; the USL fit puts the peak at {format_workers(round(usl.peak_workers, 1))}, past which more workers make it slower"
    elif usl is not None:
        reason += f"; the USL fit finds no coherency cost, so more workers keep helping, less each time (ceiling {format_rate(usl.peak_throughput, unit)})"
    return Recommendation("workers", chosen, mid, lo, hi, unit, reason + ".")


def recommend_chunk(
    frame: pd.DataFrame,
    param: str = "chunk_mb",
    *,
    where: dict[str, Any] | None = None,
    overhead: OverheadFit | None = None,
) -> Recommendation:
    """The largest ``param`` (chunk size) whose throughput is within noise of the fastest.

    Trials are taken at the largest worker count (unless ``where`` names one) and, for
    other varying parameters, at their largest values. Among the chunk sizes as fast as the
    fastest within run-to-run noise, the largest is recommended: fewer tasks leave the
    scheduler headroom as workers are added. With an overhead fit, the reason adds the
    chunk size below which per-task overhead dominates.
    """
    ok, label = pick_configuration(frame, where, free=(param,))
    if param not in point_params(ok).columns:
        raise ParameterError(
            "param",
            param,
            f"a parameter of these trials: {', '.join(c for c in point_params(ok).columns if c not in ('workload', 'workers'))}",
        )
    if where is None or "workers" not in where:
        ok = ok[ok["workers"] == ok["workers"].max()]
    values = point_params(ok)[param]
    by_c = {v: g["throughput"].to_numpy(float) for v, g in ok.groupby(values)}
    if len(by_c) < 2:
        raise ParameterError(param, sorted(by_c), "at least two measured values to choose between")
    best, ratios = _within_noise(by_c)
    chosen = max(v for v, (_, _, hi) in ratios.items() if hi >= 1)
    unit = ok["unit"].iloc[0]
    mid, lo, hi = _median_interval(by_c[chosen])
    workers = int(ok["workers"].iloc[0])
    reason = f"{param}={chosen:g} for {label} on {format_workers(workers)}: {format_rate(mid, unit)}"
    reason += (
        ", the fastest measured"
        if chosen == best
        else f", within run-to-run noise of the fastest ({param}={best:g}, interval {ratios[chosen][1]:.0%}–{ratios[chosen][2]:.0%}) with fewer, larger tasks"
    )
    smallest = min(by_c)
    if smallest != chosen:
        reason += f"; {param}={smallest:g} ran at {ratios[smallest][0]:.0%} of the fastest"
    if overhead is not None and np.isfinite(overhead.break_even_bytes):
        reason += f"; the overhead fit says per-task overhead outweighs the data below {overhead.break_even_bytes / 2**20:.3g} MiB per task"
    return Recommendation(param, chosen, mid, lo, hi, unit, reason + ".")
