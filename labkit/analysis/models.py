"""The Amdahl and USL curves, and the fits' results: parameters, intervals, predictions, words.

- **Amdahl**: ``X(N) = λN / (1 + σ(N-1))``; ``σ`` is the serial fraction, and no number of
  workers gets more than ``1/σ`` times one worker's throughput.
- **Universal Scalability Law** (Gunther): ``X(N) = λN / (1 + σ(N-1) + κN(N-1))``; ``σ`` is
  contention (queueing for something shared), ``κ`` coherency (each worker paying for every
  other one). With ``κ > 0`` throughput peaks at ``N* = sqrt((1-σ)/κ)`` workers, then falls.

A description claims a peak only when κ's interval excludes 0, and a ceiling only when σ's
does; otherwise it says that the runs did not resolve one. A fit that could not be made
(too few worker counts) is an :class:`UnavailableFit`, which says why.

>>> round(float(usl_throughput(4, 100.0, 0.1, 0.0)), 1)
307.7
>>> round(peak_workers(0.05, 0.002), 1)
21.8
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from labkit.common.format import format_number, format_workers

from .intervals import CONFIDENCE, band, direction, figures, show, show_rate

NAN2 = (math.nan, math.nan)


def usl_throughput(workers: np.ndarray | float, lambda_: float, sigma: float, kappa: float) -> np.ndarray:
    """The USL: throughput of ``workers`` workers, ``λN / (1 + σ(N-1) + κN(N-1))``."""
    n = np.asarray(workers, float)
    return lambda_ * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def amdahl_throughput(workers: np.ndarray | float, lambda_: float, sigma: float) -> np.ndarray:
    """Amdahl's law as a throughput: the USL with ``κ = 0``."""
    return usl_throughput(workers, lambda_, sigma, 0.0)


def peak_workers(sigma: float, kappa: float) -> float:
    """``N* = sqrt((1-σ)/κ)``, the worker count of peak USL throughput.

    Inf when ``κ = 0`` (no peak); at least 1, since below that the peak is one worker.
    """
    return max(1.0, float(np.sqrt((1 - sigma) / kappa))) if kappa > 0 else float("inf")


def span(workers: tuple[int, ...]) -> str:
    """``'1–8 workers'`` for the worker counts a fit saw."""
    lo, hi = min(workers), max(workers)
    return f"{lo}–{hi} workers" if lo != hi else format_workers(lo)


def show_bounded(value: float, ci: tuple[float, float]) -> str:
    """A parameter bounded below by 0 and its interval; at its bound with no interval, says so.

    >>> show_bounded(0.0, (float("nan"), float("nan")))
    '0 (held at its bound: these runs would put it below 0, so it has no interval)'
    """
    if value == 0 and math.isnan(ci[0]):
        return "0 (held at its bound: these runs would put it below 0, so it has no interval)"
    return show(value, *ci)


def show_apart(value: float, lo: float, hi: float, scale: float = 1.0, suffix: str = "") -> str:
    """:func:`.intervals.show`, with as many digits as it takes for the interval's ends to differ.

    >>> show_apart(1.0, 0.99991, 1.00004)
    '1 (0.9999–1)'
    """
    if math.isnan(lo) or math.isnan(hi):
        return show(value, lo, hi, scale, suffix)
    v, a, b = figures(value * scale, lo * scale, hi * scale, "")
    return f"{v}{suffix} ({a}–{b}{suffix})"


def percent_apart(value: float, lo: float, hi: float) -> str:
    """``'81% (77–85%)'``; more digits where the ends would read alike; ``'81% (interval not available)'``.

    >>> percent_apart(0.81, 0.77, 0.85), percent_apart(0.95, 0.9501, 0.9504)
    ('81% (77–85%)', '95% (95.01–95.04%)')
    """
    if math.isnan(lo) or math.isnan(hi):
        return f"{value:.0%} (interval not available)"
    if f"{lo:.0%}" != f"{hi:.0%}":
        return f"{value:.0%} ({lo * 100:.0f}–{hi:.0%})"
    v, a, b = figures(value * 100, lo * 100, hi * 100, "")
    return f"{v}% ({a}–{b}%)"


def why_unresolved(name: str, ci: tuple[float, float]) -> str:
    """``"κ's interval includes 0"``, or that it is held at its bound with no interval."""
    return f"{name} is held at its bound 0" if math.isnan(ci[0]) else f"{name}'s interval includes 0"


def peak_words(hi: float) -> str:
    """What the peak's interval supports: slower past its upper end ``hi``; where that is
    unbounded, only an estimate of where throughput turns down."""
    if math.isnan(hi):
        return "where throughput turns down is an estimate: the peak has no interval"
    if math.isfinite(hi):
        return f"more workers than {format_number(hi)} (the interval's upper end) make it slower"
    return "where throughput turns down is an estimate: the interval's upper end is unbounded"


class ScalingFit:
    """What the Amdahl and USL fits share: prediction bands from the bootstrap samples.

    Subclasses are dataclasses with ``workers`` (counts measured), ``confidence`` and
    ``samples`` (one row of parameters per bootstrap refit; none when the intervals are
    not available, and then the bands are NaN).
    """

    available: ClassVar[bool] = True
    workers: tuple[int, ...]
    confidence: float
    samples: np.ndarray

    def _curve(self, workers: np.ndarray, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _estimate(self) -> np.ndarray:
        raise NotImplementedError

    def predict(self, workers: np.ndarray | list[int] | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Throughput at ``workers`` (measured or not): ``(mid, lo, hi)`` arrays.

        ``lo``–``hi`` is the bootstrap band of the fitted curve: where the curve lies, not
        where a single run will land.
        """
        n = np.atleast_1d(np.asarray(workers, float))
        return band(self._curve(n, self._estimate()), self._curves(n), self.confidence)

    def speedup(
        self, workers: np.ndarray | list[int] | float, baseline: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predicted speedup over ``baseline`` workers (default: fewest measured), with band.

        The band is NaN at the baseline itself, whose speedup is 1 by definition.
        """
        n = np.atleast_1d(np.asarray(workers, float))
        b = float(baseline if baseline is not None else min(self.workers))
        mid = self._curve(n, self._estimate()) / self._curve(np.array([b]), self._estimate())
        # λ cancels in a speedup: curves with λ = 1 keep extreme refits (λ near 0 or inf) finite.
        unit = self.samples.copy()
        unit[:, 0] = 1.0
        return band(mid, self._curves(n, unit) / self._curves(np.array([b]), unit), self.confidence)

    def _curves(self, workers: np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
        """The curve of every bootstrap sample: shape (samples, workers)."""
        rows = self.samples if samples is None else samples
        with np.errstate(over="ignore", invalid="ignore"):
            return self._curve(workers[None, :], rows.T[..., None])

    @property
    def span(self) -> str:
        return span(self.workers)


@dataclass(frozen=True)
class USLFit(ScalingFit):
    """A Universal Scalability Law fit: ``X(N) = λN / (1 + σ(N-1) + κN(N-1))``.

    ``lambda_`` is the fitted throughput of one worker, ``peak_workers`` is
    ``N* = sqrt((1-σ)/κ)`` (inf when ``κ = 0``) and ``peak_throughput`` is ``X(N*)`` (or
    ``λ/σ``, the ceiling approached as N grows, when ``κ = 0``). ``*_ci`` are bootstrap
    intervals at ``confidence`` (NaN where not available, and ``note`` says why);
    ``config`` says which trials were fitted.
    """

    sigma: float
    kappa: float
    lambda_: float
    sigma_ci: tuple[float, float]
    kappa_ci: tuple[float, float]
    lambda_ci: tuple[float, float]
    peak_workers: float
    peak_workers_ci: tuple[float, float]
    peak_throughput: float
    unit: str
    workers: tuple[int, ...]
    confidence: float = CONFIDENCE
    config: str = ""
    samples: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False, compare=False)
    peak_throughput_ci: tuple[float, float] = NAN2
    ceiling: float = math.inf
    ceiling_ci: tuple[float, float] = NAN2
    note: str = ""

    def _curve(self, workers: np.ndarray, params: np.ndarray) -> np.ndarray:
        return usl_throughput(workers, *params)

    def _estimate(self) -> np.ndarray:
        return np.array([self.lambda_, self.sigma, self.kappa])

    def describe(self) -> str:
        """The fit in words, with its intervals; a peak or a ceiling only where the intervals resolve one."""
        where = f" ({self.config})" if self.config else ""
        head = (
            f"USL fit over {self.span}{where}: contention σ = {show_bounded(self.sigma, self.sigma_ci)}, "
            f"coherency κ = {show_bounded(self.kappa, self.kappa_ci)}, one worker "
            f"{show_rate(self.lambda_, *self.lambda_ci, self.unit)}."
        )
        if self.note:
            return head + f" Intervals not available: {self.note}; no peak or ceiling is claimed."
        if direction(*self.kappa_ci, null=0.0) == "up":
            return head + " " + self._peak()
        if direction(*self.sigma_ci, null=0.0) == "up":
            return head + (
                f" No coherency cost was resolved ({why_unresolved('κ', self.kappa_ci)}), so no peak was resolved: these runs "
                "cannot tell whether adding workers ever makes it slower. Contention keeps throughput below "
                f"λ/σ = {show_rate(self.ceiling, *self.ceiling_ci, self.unit)}."
            )
        return head + (
            f" Neither contention nor coherency was resolved on its own ({why_unresolved('σ', self.sigma_ci)}, "
            f"{why_unresolved('κ', self.kappa_ci)}; over these counts the two can trade off against each other), "
            "so no peak or ceiling is claimed; more worker counts, repeats or a quieter machine would tell more."
        )

    def _peak(self) -> str:
        lo, hi = self.peak_workers_ci
        if self.peak_workers <= 1 and not hi > 1:
            return "Throughput peaks at one worker: every worker added makes it slower."
        measured = max(self.workers)
        peak = (
            f"Throughput peaks at N* ≈ {show_apart(self.peak_workers, lo, hi)} workers, at "
            f"{show_rate(self.peak_throughput, *self.peak_throughput_ci, self.unit)}"
        )
        past = peak_words(hi)
        if lo > measured:
            return f"{peak}; {past}. The peak lies past the {measured} workers measured: measure there before relying on it."
        if hi < measured:
            return f"{peak}; the largest counts measured are already past it: fewer workers would be faster."
        return f"{peak}; {past}."

    def compare(self, sigma: float, kappa: float) -> str:
        """Fitted against known ``σ`` and ``κ`` (a calibration run), in words."""

        def one(name: str, fitted: float, ci: tuple[float, float], true: float) -> str:
            if math.isnan(ci[0]):
                return f"{name} fitted {format_number(fitted)} vs {format_number(true)} configured (interval not available)"
            inside = "inside" if ci[0] <= true <= ci[1] else "outside"
            return f"{name} fitted {format_number(fitted)} vs {format_number(true)} configured ({inside} the interval {format_number(ci[0])}–{format_number(ci[1])})"

        return one("σ", self.sigma, self.sigma_ci, sigma) + "; " + one("κ", self.kappa, self.kappa_ci, kappa) + "."


@dataclass(frozen=True)
class AmdahlFit(ScalingFit):
    """An Amdahl fit: ``X(N) = λN / (1 + σ(N-1))``, ``σ`` the serial fraction.

    ``max_speedup = 1/σ`` is the most any number of workers can gain over one.
    """

    serial_fraction: float
    lambda_: float
    serial_fraction_ci: tuple[float, float]
    lambda_ci: tuple[float, float]
    max_speedup: float
    max_speedup_ci: tuple[float, float]
    unit: str
    workers: tuple[int, ...]
    confidence: float = CONFIDENCE
    config: str = ""
    samples: np.ndarray = field(default_factory=lambda: np.empty((0, 2)), repr=False, compare=False)
    note: str = ""

    def _curve(self, workers: np.ndarray, params: np.ndarray) -> np.ndarray:
        return amdahl_throughput(workers, *params)

    def _estimate(self) -> np.ndarray:
        return np.array([self.lambda_, self.serial_fraction])

    def describe(self) -> str:
        """The fit in words: the serial fraction, and the ceiling it sets where its interval excludes 0."""
        where = f" ({self.config})" if self.config else ""
        head = f"Amdahl fit over {self.span}{where}: serial fraction {show_bounded(self.serial_fraction, self.serial_fraction_ci)}"
        if self.note:
            return head + f". Intervals not available: {self.note}; no ceiling is claimed."
        if direction(*self.serial_fraction_ci, null=0.0) != "up":
            why = "it is held at its bound 0" if math.isnan(self.serial_fraction_ci[0]) else "its interval includes 0"
            return head + f": {why}, so these runs set no ceiling on the speedup."
        return (
            head
            + f": no number of workers can make it more than {show(self.max_speedup, *self.max_speedup_ci)} times faster than one."
        )


@dataclass(frozen=True)
class UnavailableFit:
    """A model that could not be fitted to these trials, and why: what ``fit_usl`` and
    ``fit_amdahl`` return for too few worker counts, so a notebook runs on and says so.

    ``describe()`` says why; ``predict`` and ``speedup`` give NaN, as nothing was fitted.
    """

    available: ClassVar[bool] = False
    model: str
    reason: str
    workers: tuple[int, ...]
    unit: str = ""
    config: str = ""
    confidence: float = CONFIDENCE

    @property
    def span(self) -> str:
        return span(self.workers)

    def describe(self) -> str:
        where = f" ({self.config})" if self.config else ""
        return f"{self.model} fit over {self.span}{where}: not available: {self.reason}."

    def predict(self, workers: np.ndarray | list[int] | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """NaN throughputs (and bands) at ``workers``: there is no fit."""
        n = np.atleast_1d(np.asarray(workers, float))
        return np.full_like(n, np.nan), np.full_like(n, np.nan), np.full_like(n, np.nan)

    def speedup(
        self, workers: np.ndarray | list[int] | float, baseline: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """NaN speedups (and bands) at ``workers``: there is no fit."""
        return self.predict(workers)

    def compare(self, sigma: float, kappa: float) -> str:
        return f"{self.model} fit not available ({self.reason}): nothing to compare with σ = {format_number(sigma)}, κ = {format_number(kappa)}."
