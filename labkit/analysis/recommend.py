"""Advice from a sweep: the worker count and chunk size to use, and why, in words.

The rule, written once: a value is recommended only when **no other measured value could
beat it by more than the margin**. For a value ``v`` and every alternative ``a``, the ratio
``median(v) / median(a)`` gets a bootstrap interval; with ``k`` alternatives (every value
measured but ``v``) each interval is at confidence ``1 - 0.05 / k`` (Bonferroni), so that
all ``k`` hold together at least 95% of the time, and the sentence says so ("intervals
adjusted for 3 comparisons"). Values are tried from the cheapest (fewest workers; largest
chunk, so fewest tasks):

- ``v`` is **recommended** when every one of its intervals lies entirely above the floor
  ``1 / (1 + margin)`` of :func:`labkit.analysis.intervals.equivalence_band` (``margin=0.05``
  by default): no alternative, cheaper or dearer, could be faster by more than the margin;
- ``v`` is **ruled out** when some alternative's interval lies entirely below that floor:
  that alternative is faster by more than the margin, and the next value is tried;
- otherwise (an interval straddles the floor, or there is none: too few repeats) the runs
  **cannot tell**: ``value`` is None and the reason names the alternative that could still
  be better and what would decide.

The highest median is never ruled out, so the walk ends at a recommendation or at "cannot
tell". A wide interval therefore never makes a value look as good, and a value is never
recommended while an alternative it was not compared with (or whose interval is wide) might
beat it. Only the trials :func:`labkit.analysis.trust.admit` admits (ok, not degraded, not
under outside load) are compared; the reason says what was left out, and a value left with
no admitted trial is not measured, so nothing is recommended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_workers

from .frames import pick_configuration, point_params
from .intervals import Estimate, direction, equivalence_band, median_estimate, ratio_estimate, show_rate
from .models import UnavailableFit, USLFit, peak_words, percent_apart, show_apart, why_unresolved
from .trust import admit

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
    return percent_apart(r.value, r.lo, r.hi)


def adjusted(k: int) -> float:
    """Each interval's confidence with ``k`` comparisons (Bonferroni): ``1 - 0.05 / k``.

    >>> round(adjusted(3), 4), adjusted(1)
    (0.9833, 0.95)
    """
    return 1 - 0.05 / max(k, 1)


def adjusted_words(k: int) -> str:
    """``"95% interval"``, or ``"intervals adjusted for 3 comparisons: each at 98.3%"``."""
    return "95% interval" if k <= 1 else f"intervals adjusted for {k} comparisons: each at {adjusted(k):.1%}"


@dataclass(frozen=True)
class _Decision:
    """What the comparisons settled: the choice (None: cannot tell), the best by median,
    each value tried and its ratios to every alternative (``against[v][a]``: ``v`` over
    ``a``), the values ruled out (each with the alternative that beat it), and where no
    value was chosen the value that could not be settled and the alternative that could
    still beat it by more than the margin."""

    chosen: Any
    best: Any
    against: dict[Any, dict[Any, Estimate]]
    ruled_out: dict[Any, Any]
    stuck: Any = None
    rival: Any = None

    @property
    def comparisons(self) -> int:
        return len(next(iter(self.against.values()), {}))


def _decide(by_value: dict[Any, np.ndarray], order: list[Any], margin: float) -> _Decision:
    """Try ``order`` from the cheapest, against every alternative (see the module's docstring)."""
    floor = equivalence_band(margin)[0]
    confidence = adjusted(len(by_value) - 1)
    best = max(by_value, key=lambda v: float(np.median(by_value[v])))
    against: dict[Any, dict[Any, Estimate]] = {}
    ruled_out: dict[Any, Any] = {}
    for v in order:
        r = {a: ratio_estimate(by_value[v], x, confidence=confidence) for a, x in by_value.items() if a != v}
        against[v] = r
        if all(e.lo > floor for e in r.values()):
            return _Decision(v, best, against, ruled_out)
        beaten = [a for a, e in r.items() if e.hi < floor]
        if beaten:
            ruled_out[v] = best if best in beaten else min(beaten, key=lambda a: r[a].value)
            continue
        open_ = [a for a, e in r.items() if not e.lo > floor]
        rival = min(open_, key=lambda a: -math.inf if math.isnan(r[a].lo) else r[a].lo)
        return _Decision(None, best, against, ruled_out, v, rival)
    raise AssertionError("the highest median is never ruled out")


def _cannot_tell(d: _Decision, by_value: dict[Any, np.ndarray], words: dict[str, Any], margin: float, rate: str) -> str:
    name, label = words["name"], words["label"]
    r = d.against[d.stuck][d.rival]
    top = f"the {words['best']} was {name(d.best)} ({rate})"
    if r.note:  # too few repeats for any interval
        return (
            f"Cannot tell for {label}: {r.note}. {top[0].upper()}{top[1:]}; "
            f"{name(d.stuck)} ran at {r.value:.0%} of {name(d.rival)}"
        )
    return (
        f"Cannot tell for {label}: {name(d.stuck)} ran at {_ratio_text(r)} of {name(d.rival)} "
        f"({adjusted_words(d.comparisons)}); {top}. With a {margin:.0%} margin these runs cannot tell whether "
        f"{name(d.rival)} would be faster than {name(d.stuck)} by more than the margin. "
        f"More repeats of {name(d.stuck)} and {name(d.rival)} (or a quieter machine) would decide"
    )


def _explain(d: _Decision, by_value: dict[Any, np.ndarray], words: dict[str, Any], margin: float, unit: str) -> str:
    """The reason in words. ``words``: ``name`` (a value in words), ``label``, ``best``
    ("best measured", "fastest measured"), ``cheaper`` ("smaller count") and ``gain``
    ("fewer workers")."""
    name, label = words["name"], words["label"]
    rate = show_rate(*median_estimate(by_value[d.best])[:3], unit)
    edge = f"{equivalence_band(margin)[0]:.0%}"
    if d.stuck is not None:
        return _cannot_tell(d, by_value, words, margin, rate)
    ratios = d.against[d.chosen]
    if not ratios:
        return f"{name(d.best)} for {label}: {rate}, the {words['best']}, the only value measured"
    every = f"no other value could be faster by more than the {margin:.0%} margin ({adjusted_words(d.comparisons)})"
    if d.chosen != d.best:
        reason = (
            f"{name(d.chosen)} for {label}: {show_rate(*median_estimate(by_value[d.chosen])[:3], unit)}, "
            f"{_ratio_text(ratios[d.best])} of the {words['best']} ({name(d.best)}): its whole interval is above "
            f"{edge}, within the {margin:.0%} margin of practical equivalence, with {words['gain']}; {every}"
        )
    else:
        reason = f"{name(d.best)} for {label}: {rate}, the {words['best']}"
        runner = max(ratios, key=lambda u: float(np.median(by_value[u])))
        if runner not in d.ruled_out:
            r = ratios[runner]  # the best over the runner-up: said the other way round
            shown = _ratio_text(Estimate(1 / r.value, 1 / r.hi, 1 / r.lo, r.note))
            reason += f"; the next best, {name(runner)}, ran at {shown} of it"
    if d.ruled_out:
        shown = ", ".join(
            f"{name(v)} at {_ratio_text(d.against[v][by])}" + ("" if by == d.best else f" of {name(by)}")
            for v, by in d.ruled_out.items()
        )
        of = "it" if set(d.ruled_out.values()) == {d.best} else "a faster value"
        reason += f"; every {words['cheaper']} ran below {edge} of {of} ({shown})"
    return reason if d.chosen != d.best else f"{reason}; {every}"


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
    if math.isnan(lo):
        return f"; the USL fit puts the peak at an estimated N* ≈ {show_apart(usl.peak_workers, lo, hi)} workers"
    peak = f"the USL fit puts the peak at N* ≈ {show_apart(usl.peak_workers, lo, hi)} workers"
    if lo > measured:
        return (
            f"; {peak}, past the {measured} measured: more workers should help, but measure there before relying on it"
        )
    if hi < measured:
        return f"; {peak}, below the largest count measured: {peak_words(hi)}"
    return f"; {peak}: an estimate, whose interval reaches past the {measured} measured, so {peak_words(hi)}"


def _admitted(frame: pd.DataFrame, ok: pd.DataFrame, param: str) -> tuple[pd.DataFrame, str, list[Any]]:
    """The trials of ``ok``'s points that :func:`.trust.admit` admits, what it left out in
    words, and the values of ``param`` (a column of the point) left with no admitted trial."""
    adm = admit(frame[frame["point"].isin(set(ok["point"]))])
    kept = ok[ok.index.isin(adm.frame.index)]
    values = point_params(ok)[param]
    lost = sorted(set(values) - set(values[kept.index]))
    return kept, adm.note, lost


def _unmeasured(
    parameter: str, label: str, lost: list[Any], name: Any, note: str, unit: str, margin: float
) -> Recommendation:
    """Nothing recommended: ``lost`` values have no admitted trial, so they were not measured."""
    shown = ", ".join(name(v) for v in lost)
    reason = (
        f"Cannot tell for {label}: {shown} not measured ({note}), and an unmeasured value could be the better one; "
        "rerun on a quieter machine to decide."
    )
    return Recommendation(parameter, None, math.nan, math.nan, math.nan, unit, reason, margin, None)


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
    unit = str(ok["unit"].iloc[0])
    ok, note, lost = _admitted(frame, ok, "workers")
    if lost:
        return _unmeasured("workers", label, lost, format_workers, note, unit, margin)
    by_w = {int(w): g["throughput"].to_numpy(float) for w, g in ok.groupby("workers")}
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
    if note:
        reason += f"; {note}"
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
    if values.nunique() < 2:
        raise ParameterError(param, sorted(set(values)), "at least two measured values to choose between")
    unit = str(ok["unit"].iloc[0])
    label = f"{label} on {format_workers(int(ok['workers'].iloc[0]))}"
    ok, note, lost = _admitted(frame, ok, param)
    if lost:
        return _unmeasured(param, label, lost, lambda v: f"{param}={v:g}", note, unit, margin)
    by_c = {v: g["throughput"].to_numpy(float) for v, g in ok.groupby(point_params(ok)[param])}
    d = _decide(by_c, sorted(by_c, reverse=True), margin)
    words = {
        "name": lambda v: f"{param}={v:g}",
        "label": label,
        "best": "fastest measured",
        "cheaper": f"larger {param}",
        "gain": "fewer, larger tasks",
    }
    reason = _explain(d, by_c, words, margin, unit)
    smallest = min(by_c)
    if smallest not in (d.chosen, d.best, *d.ruled_out, d.stuck):
        r = ratio_estimate(by_c[smallest], by_c[d.best])
        shown = f"{r.value:.0%}" if r.note else _ratio_text(r)
        reason += f"; {param}={smallest:g} ran at {shown} of the fastest"
    if overhead is not None and not overhead.note:
        per_task = direction(*overhead.per_task_s_ci, null=0.0) == "up"
        if per_task and math.isfinite(overhead.bandwidth_ci[1]):
            reason += (
                "; the overhead fit says per-task overhead outweighs the data below "
                f"{show_apart(overhead.break_even_bytes, *overhead.break_even_bytes_ci, scale=1 / 2**20, suffix=' MiB')} per task"
            )
            if overhead.break_even_note:
                reason += f" ({overhead.break_even_note})"
    if note:
        reason += f"; {note}"
    return _recommendation(param, d.chosen, by_c, unit, reason + ".", margin, d.best)
