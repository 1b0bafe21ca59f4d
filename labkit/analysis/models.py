"""The Amdahl and USL curves, and the fits' results: parameters, intervals, predictions, words.

- **Amdahl**: ``X(N) = λN / (1 + σ(N-1))``; ``σ`` is the serial fraction, and no number of
  workers gets more than ``1/σ`` times one worker's throughput.
- **Universal Scalability Law** (Gunther): ``X(N) = λN / (1 + σ(N-1) + κN(N-1))``; ``σ`` is
  contention (queueing for something shared), ``κ`` coherency (each worker paying for every
  other one). With ``κ > 0`` throughput peaks at ``N* = sqrt((1-σ)/κ)`` workers, then falls.

>>> round(float(usl_throughput(4, 100.0, 0.1, 0.0)), 1)
307.7
>>> round(peak_workers(0.05, 0.002), 1)
21.8
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labkit.common.format import format_interval, format_number, format_rate, format_workers

from .intervals import CONFIDENCE, band


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


class ScalingFit:
    """What the Amdahl and USL fits share: prediction bands from the bootstrap samples.

    Subclasses are dataclasses with ``workers`` (counts measured), ``confidence`` and
    ``samples`` (one row of parameters per bootstrap refit).
    """

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
        """Predicted speedup over ``baseline`` workers (default: fewest measured), with band."""
        n = np.atleast_1d(np.asarray(workers, float))
        b = float(baseline if baseline is not None else min(self.workers))
        mid = self._curve(n, self._estimate()) / self._curve(np.array([b]), self._estimate())
        return band(mid, self._curves(n) / self._curves(np.array([b])), self.confidence)

    def _curves(self, workers: np.ndarray) -> np.ndarray:
        """The curve of every bootstrap sample: shape (samples, workers)."""
        return self._curve(workers[None, :], self.samples.T[..., None])

    @property
    def span(self) -> str:
        lo, hi = min(self.workers), max(self.workers)
        return f"{lo}–{hi} workers" if lo != hi else format_workers(lo)


@dataclass(frozen=True)
class USLFit(ScalingFit):
    """A Universal Scalability Law fit: ``X(N) = λN / (1 + σ(N-1) + κN(N-1))``.

    ``lambda_`` is the fitted throughput of one worker, ``peak_workers`` is
    ``N* = sqrt((1-σ)/κ)`` (inf when ``κ = 0``) and ``peak_throughput`` is ``X(N*)`` (or
    ``λ/σ``, the ceiling approached as N grows, when ``κ = 0``). ``*_ci`` are bootstrap
    intervals at ``confidence``; ``config`` says which trials were fitted.
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

    def _curve(self, workers: np.ndarray, params: np.ndarray) -> np.ndarray:
        return usl_throughput(workers, *params)

    def _estimate(self) -> np.ndarray:
        return np.array([self.lambda_, self.sigma, self.kappa])

    def describe(self) -> str:
        """The fit in words, with its intervals and what it implies."""

        where = f" ({self.config})" if self.config else ""
        head = (
            f"USL fit over {self.span}{where}: contention σ = {format_interval(self.sigma, *self.sigma_ci)}, "
            f"coherency κ = {format_interval(self.kappa, *self.kappa_ci)}, one worker "
            f"{format_rate(self.lambda_, self.unit)}."
        )
        if self.sigma == 0 and self.kappa == 0:
            return (
                head
                + " Neither contention nor coherency cost was measured: throughput grows in proportion to the workers."
            )
        if not np.isfinite(self.peak_workers):
            return head + (
                f" No coherency cost was measured, so throughput keeps rising toward "
                f"{format_rate(self.peak_throughput, self.unit)} (λ/σ) as workers are added."
            )
        if self.peak_workers <= 1:
            return head + " Throughput peaks at one worker: every worker added makes it slower."
        after = (
            "more workers than that make it slower"
            if self.peak_workers > max(self.workers)
            else "the largest counts measured are already past it: fewer workers would be faster"
        )
        return head + (
            f" Throughput peaks at N* ≈ {format_interval(self.peak_workers, *self.peak_workers_ci)} workers, at "
            f"{format_rate(self.peak_throughput, self.unit)}; {after}."
        )

    def compare(self, sigma: float, kappa: float) -> str:
        """Fitted against known ``σ`` and ``κ`` (a calibration run), in words."""

        def one(name: str, fitted: float, ci: tuple[float, float], true: float) -> str:
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

    def _curve(self, workers: np.ndarray, params: np.ndarray) -> np.ndarray:
        return amdahl_throughput(workers, *params)

    def _estimate(self) -> np.ndarray:
        return np.array([self.lambda_, self.serial_fraction])

    def describe(self) -> str:
        """The fit in words: the serial fraction and the ceiling it sets."""
        where = f" ({self.config})" if self.config else ""
        head = f"Amdahl fit over {self.span}{where}: serial fraction {format_interval(self.serial_fraction, *self.serial_fraction_ci)}"
        if not np.isfinite(self.max_speedup):
            return head + ": no serial part was measured, so speedup is not bounded by this model."
        return (
            head
            + f": no number of workers can make it more than {format_interval(self.max_speedup, *self.max_speedup_ci)} times faster than one."
        )
