"""Advice from a sweep: the worker count and chunk size to use, and why, in words.

Choices are tried from the cheapest (fewest workers; largest chunk, so fewest tasks). A
cheaper choice is recommended only when the 95% interval of its throughput ratio to the
best measured lies entirely above ``1 / (1 + margin)``: it is as fast as the best within the
stated margin of practical equivalence (``margin=0.05`` by default; the one convention of
:func:`labkit.analysis.intervals.equivalence_band`). One whose interval lies entirely below
``1 / (1 + margin)`` is ruled out, and the next is tried; the best measured
is recommended once every cheaper choice is ruled out and no other choice could be faster
than it by more than the margin. When neither holds (an interval straddles the margin, or
there is none: too few repeats), the runs cannot tell: the recommendation's ``value`` is
None and its reason names the best measured and what would decide. A wide interval
therefore never makes a cheaper choice look as good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_rate, format_workers

from .frames import pick_configuration, point_params
from .intervals import Estimate, direction, equivalence_band, median_estimate, percent, ratio_estimate, show, show_rate
from .models import UnavailableFit, USLFit, why_unresolved

if TYPE_CHECKING:
    import pandas as pd

    from .overhead import OverheadFit

MARGIN = 0.05
"""Default margin of practical equivalence: within 5% of the best counts as as fast."""


@dataclass(frozen=True)
class Recommendation:
    """A recommended value of one parameter (None when the runs cannot decide), the
    evidence (its median throughput and interval; NaN without a value), and the reason in words."""

    parameter: str
    value: Any
    throughput: float
    throughput_lo: float
    throughput_hi: float
    unit: str
    reason: str
    margin: float = MARGIN
    best: Any = None

    @property
    def decided(self) -> bool:
        return self.value is not None

    def describe(self) -> str:
        return self.reason


def _ratio_text(r: Estimate) -> str:
    if math.isnan(r.lo):
        return f"{r.value:.0%} ({r.note})"
    return percent(r.value, r.lo, r.hi)


@dataclass(frozen=True)
class _Decision:
    """What the comparisons settled: the choice (None: cannot tell), the best by median,
    each other value's ratio to it, the cheaper values ruled out, and the value whose
    comparison could not be settled (None when one was chosen): a cheaper candidate
    (``candidate`` True) or the runner-up to the best."""

    chosen: Any
    best: Any
    ratios: dict[Any, Estimate]
    ruled_out: list[Any]
    stuck: Any = None
    candidate: bool = False


def _decide(by_value: dict[Any, np.ndarray], order: list[Any], margin: float) -> _Decision:
    """Try ``order`` from the cheapest (see the module's docstring).

    A cheaper value is chosen when its ratio to the best (highest median) has an interval
    entirely above the equivalence band's floor ``1 / (1 + margin)``, ruled out when entirely
    below. The best is chosen when no other value could be faster than it by more than the
    margin: the runner-up's ratio stays below ``1 + margin``.
    """
    floor, ceiling = equivalence_band(margin)
    best = max(by_value, key=lambda v: float(np.median(by_value[v])))
    ratios = {v: ratio_estimate(tp, by_value[best]) for v, tp in by_value.items() if v != best}
    ruled_out: list[Any] = []
    for v in order:
        if v == best:
            runner = max(ratios, key=lambda u: ratios[u].value, default=None)
            if runner is None or ratios[runner].hi < ceiling:
                return _Decision(best, best, ratios, ruled_out)
            return _Decision(None, best, ratios, ruled_out, runner)
        r = ratios[v]
        if r.lo > floor:
            return _Decision(v, best, ratios, ruled_out)
        if not r.hi < floor:
            return _Decision(None, best, ratios, ruled_out, v, candidate=True)
        ruled_out.append(v)
    raise AssertionError("the best value is in the order")


def _explain(d: _Decision, by_value: dict[Any, np.ndarray], words: dict[str, Any], margin: float, unit: str) -> str:
    """The reason in words. ``words``: ``name`` (a value in words), ``label``, ``best``
    ("best measured", "fastest measured"), ``cheaper`` ("smaller count") and ``gain``
    ("fewer workers")."""
    name, label = words["name"], words["label"]
    rate = show_rate(*median_estimate(by_value[d.best])[:3], unit)
    edge = f"{equivalence_band(margin)[0]:.0%}"
    if d.stuck is not None:
        r = d.ratios[d.stuck]
        if r.note:  # too few repeats for any interval
            return (
                f"Cannot tell for {label}: {r.note}. The highest median measured was {name(d.best)} "
                f"({format_rate(float(np.median(by_value[d.best])), unit)}); {name(d.stuck)} ran at {r.value:.0%} of it"
            )
        if d.candidate:
            question = f"whether {name(d.stuck)} would do as well"
        else:
            question = f"which of {name(d.best)} and {name(d.stuck)} to use"
        return (
            f"Cannot tell for {label}: {name(d.stuck)} ran at {_ratio_text(r)} of the {words['best']} "
            f"({name(d.best)}, {rate}); with a {margin:.0%} margin these runs cannot tell {question}. "
            "More repeats (or a quieter machine) would decide"
        )
    if d.chosen != d.best:
        return (
            f"{name(d.chosen)} for {label}: {show_rate(*median_estimate(by_value[d.chosen])[:3], unit)}, "
            f"{_ratio_text(d.ratios[d.chosen])} of the {words['best']} ({name(d.best)}): its whole interval is above "
            f"{edge}, within the {margin:.0%} margin of practical equivalence, with {words['gain']}"
        )
    reason = f"{name(d.best)} for {label}: {rate}, the {words['best']}"
    if not d.ratios:
        return reason + ", the only value measured"
    runner = max(d.ratios, key=lambda u: d.ratios[u].value)
    if runner not in d.ruled_out:
        reason += f"; the next best, {name(runner)}, ran at {_ratio_text(d.ratios[runner])} of it"
    if d.ruled_out:
        shown = ", ".join(f"{name(v)} at {_ratio_text(d.ratios[v])}" for v in d.ruled_out)
        reason += f"; every {words['cheaper']} ran below {edge} of it ({shown})"
    return reason


def _check_margin(margin: float) -> None:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
        raise ParameterError("margin", margin, "a fraction between 0 and 1, e.g. 0.05 (within 5% of the best)")


def _recommendation(
    parameter: str, value: Any, tp: dict[Any, np.ndarray], unit: str, reason: str, margin: float, best: Any
) -> Recommendation:
    if value is None:
        return Recommendation(parameter, None, math.nan, math.nan, math.nan, unit, reason, margin, best)
    m = median_estimate(tp[value])
    return Recommendation(parameter, value, m.value, m.lo, m.hi, unit, reason, margin, best)


def _usl_clause(usl: USLFit | UnavailableFit, measured: int, unit: str) -> str:
    if isinstance(usl, UnavailableFit):
        return f"; no USL fit ({usl.reason})"
    if usl.note:
        return f"; the USL fit has no intervals ({usl.note}), so it puts no peak anywhere"
    if direction(*usl.kappa_ci, null=0.0) != "up":
        text = f"; the USL fit resolves no peak ({why_unresolved('κ', usl.kappa_ci)})"
        if direction(*usl.sigma_ci, null=0.0) == "up":
            text += f", and contention keeps throughput below {show_rate(usl.ceiling, *usl.ceiling_ci, unit)}"
        return text
    lo, hi = usl.peak_workers_ci
    peak = f"the USL fit puts the peak at N* ≈ {show(usl.peak_workers, lo, hi)} workers"
    if lo > measured:
        return (
            f"; {peak}, past the {measured} measured: more workers should help, but measure there before relying on it"
        )
    if hi < measured:
        return f"; {peak}, below the largest count measured: more workers than that make it slower"
    return f"; {peak}"


def recommend_workers(
    frame: pd.DataFrame,
    *,
    where: dict[str, Any] | None = None,
    usl: USLFit | UnavailableFit | None = None,
    margin: float = MARGIN,
) -> Recommendation:
    """The fewest workers whose throughput is as good as the best measured, within ``margin``.

    Parameters
    ----------
    frame : DataFrame
        Trials at several worker counts.
    where : dict, optional
        Picks the configuration (see :func:`labkit.analysis.pick_configuration`).
    usl : USLFit, optional
        A USL fit of the same trials: the reason then says where it puts the peak, if it
        resolves one.
    margin : float, default 0.05
        Margin of practical equivalence: fewer workers are recommended only when their
        throughput ratio to the best has an interval entirely above ``1 / (1 + margin)``.

    Returns
    -------
    Recommendation
        ``value`` None when the runs cannot tell (see the module's docstring).
    """
    _check_margin(margin)
    ok, label = pick_configuration(frame, where)
    by_w = {int(w): g["throughput"].to_numpy(float) for w, g in ok.groupby("workers")}
    unit = str(ok["unit"].iloc[0])
    d = _decide(by_w, sorted(by_w), margin)
    words = {
        "name": format_workers,
        "label": label,
        "best": "best measured",
        "cheaper": "smaller count",
        "gain": "fewer workers",
    }
    reason = _explain(d, by_w, words, margin, unit)
    if usl is not None:
        reason += _usl_clause(usl, max(by_w), unit)
    return _recommendation("workers", d.chosen, by_w, unit, reason + ".", margin, d.best)


def recommend_chunk(
    frame: pd.DataFrame,
    param: str = "chunk_mb",
    *,
    where: dict[str, Any] | None = None,
    overhead: OverheadFit | None = None,
    margin: float = MARGIN,
) -> Recommendation:
    """The largest ``param`` (chunk size) whose throughput is as good as the fastest, within ``margin``.

    Larger chunks are tried first: fewer tasks leave the scheduler headroom as workers are
    added.

    Parameters
    ----------
    frame : DataFrame
        Trials at several values of ``param``.
    param : str, default "chunk_mb"
    where : dict, optional
        Fixes parameters; by default the largest worker count and, for other varying
        parameters, their largest values.
    overhead : OverheadFit, optional
        With its costs resolved, the reason adds the chunk size below which per-task
        overhead dominates.
    margin : float, default 0.05
        As for :func:`recommend_workers`.

    Returns
    -------
    Recommendation
        ``value`` None when the runs cannot tell.
    """
    _check_margin(margin)
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
    unit = str(ok["unit"].iloc[0])
    d = _decide(by_c, sorted(by_c, reverse=True), margin)
    words = {
        "name": lambda v: f"{param}={v:g}",
        "label": f"{label} on {format_workers(int(ok['workers'].iloc[0]))}",
        "best": "fastest measured",
        "cheaper": f"larger {param}",
        "gain": "fewer, larger tasks",
    }
    reason = _explain(d, by_c, words, margin, unit)
    smallest = min(by_c)
    if smallest not in (d.chosen, d.best):
        r = d.ratios[smallest]
        shown = f"{r.value:.0%}" if r.note else _ratio_text(r)
        reason += f"; {param}={smallest:g} ran at {shown} of the fastest"
    if overhead is not None and not overhead.note:
        per_task = direction(*overhead.per_task_s_ci, null=0.0) == "up"
        if per_task and math.isfinite(overhead.bandwidth_ci[1]):
            reason += (
                "; the overhead fit says per-task overhead outweighs the data below "
                f"{show(overhead.break_even_bytes, *overhead.break_even_bytes_ci, scale=1 / 2**20, suffix=' MiB')} per task"
            )
    return _recommendation(param, d.chosen, by_c, unit, reason + ".", margin, d.best)
