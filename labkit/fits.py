"""Scaling models fitted to measurements, each with its uncertainty from the repeats.

Three models, fitted with SciPy to plain arrays (``labkit.analysis`` turns a trials frame
into these arrays and is where most people start):

- **Amdahl**: ``X(N) = λN / (1 + σ(N-1))``; ``σ`` is the serial fraction, and no number of
  workers gets more than ``1/σ`` times one worker's throughput.
- **Universal Scalability Law** (Gunther): ``X(N) = λN / (1 + σ(N-1) + κN(N-1))``; ``σ`` is
  contention (queueing for something shared), ``κ`` coherency (each worker paying for every
  other one). With ``κ > 0`` throughput peaks at ``N* = sqrt((1-σ)/κ)`` workers, then falls.
- **Overhead**: ``T = a + b·tasks + bytes/bandwidth``: a fixed cost per run, a cost per task
  and a cost per byte, fitted to runs of different task counts and data sizes.

Uncertainty comes from a bootstrap over the repeats: the trials of each worker count (or
each grid point) are resampled with replacement and the model refitted, so every figure
and every predicted point has a percentile interval. With a single trial per point the
bootstrap resamples the fit's residuals instead.

>>> import numpy as np
>>> n = np.repeat([1, 2, 4, 8], 3)
>>> fit = usl_fit(n, usl_throughput(n, 100.0, 0.05, 0.002), unit="items")
>>> round(fit.sigma, 3), round(fit.kappa, 4), round(fit.peak_workers, 1)
(0.05, 0.002, 21.8)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import LabkitError, ParameterError

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
N_BOOT = 300
_BIG = 1e300  # stands in for an infinite N* inside quantiles


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


def _interval(samples: np.ndarray, estimate: float, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap samples, widened to contain the estimate."""
    finite = np.where(np.isinf(samples), _BIG, samples)
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(finite, [alpha, 1 - alpha], method="inverted_cdf"))
    lo, hi = (float("inf") if v >= _BIG else v for v in (lo, hi))
    return min(lo, estimate), max(hi, estimate)


def _num(value: float) -> str:
    """A figure in 3 significant digits, without exponents in the everyday range."""
    if np.isinf(value):
        return "∞"
    if value == 0 or 1e-3 <= abs(value) < 1e3:
        return f"{value:.3g}"
    return f"{value:,.0f}" if 1e3 <= abs(value) < 1e7 else f"{value:.2e}"


def _fmt(value: float, lo: float, hi: float) -> str:
    """``0.102 (0.095–0.110)``: a figure and its interval."""
    return f"{_num(value)} ({_num(lo)}–{_num(hi)})"


def _snap(params: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    """Fitted σ, κ at their bound come back as 1e-20 and the like: call them zero."""
    out = params.copy()
    out[1:][np.abs(out[1:]) < floor] = 0.0
    return out


def _workers(n: float) -> str:
    return f"{_num(n)} worker{'' if n == 1 else 's'}"


def _check_points(workers: np.ndarray, values: np.ndarray, needed: int, model: str) -> None:
    if workers.shape != values.shape or workers.ndim != 1:
        raise ParameterError("workers", workers.shape, f"one worker count per throughput value ({values.shape})")
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        where = sorted({int(w) for w in workers[bad]})
        raise ParameterError("throughput", values[bad][:3].tolist(), f"finite values > 0 (check the trials at workers={where}: zero or missing wall time?)")
    if np.any(~np.isfinite(workers)) or np.any(workers < 1):
        raise ParameterError("workers", workers.tolist(), "worker counts >= 1")
    distinct = np.unique(workers).size
    if distinct < needed:
        raise ParameterError("workers", sorted(np.unique(workers).astype(int).tolist()), f"at least {needed} distinct worker counts for a {model} fit")


def _check_options(confidence: float, n_boot: int) -> None:
    if not isinstance(confidence, float) or not 0 < confidence < 1:
        raise ParameterError("confidence", confidence, "a fraction between 0 and 1, e.g. 0.95")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 20:
        raise ParameterError("n_boot", n_boot, "an integer >= 20 (bootstrap refits for the intervals)")


def _resamples(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray] | None:
    """Index arrays resampling each group with replacement; None when no group repeats."""
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    if all(m.size == 1 for m in members):
        return None
    return [np.concatenate([rng.choice(m, m.size) for m in members]) for _ in range(n_boot)]


def _bootstrap(fit_once: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, groups: np.ndarray, fitted: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Refit on resampled repeats, or, when nothing repeats, on resampled log residuals."""
    rng = np.random.default_rng(seed)
    draws = _resamples(groups, n_boot, rng)
    if draws is not None:
        refits = [_try(fit_once, x[idx], y[idx]) for idx in draws]
    else:
        res = np.log(y / fitted)
        refits = [_try(fit_once, x, fitted * np.exp(rng.choice(res, res.size))) for _ in range(n_boot)]
    done = [r for r in refits if r is not None]
    # A few resamples can be degenerate (every draw the same trial); most must fit.
    if len(done) < n_boot / 2:
        raise LabkitError(f"only {len(done)} of {n_boot} bootstrap refits converged: the data do not pin the model down")
    return np.array(done)


def _try(fit_once: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    try:
        return fit_once(x, y)
    except LabkitError:
        return None


# ------------------------------------------------------------------------ worker scaling


class _ScalingFit:
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
        return _band(self._curve(n, self._estimate()), self._curves(n), self.confidence)

    def speedup(self, workers: np.ndarray | list[int] | float, baseline: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predicted speedup over ``baseline`` workers (default: fewest measured), with band."""
        n = np.atleast_1d(np.asarray(workers, float))
        b = float(baseline if baseline is not None else min(self.workers))
        mid = self._curve(n, self._estimate()) / self._curve(np.array([b]), self._estimate())
        return _band(mid, self._curves(n) / self._curves(np.array([b])), self.confidence)

    def _curves(self, workers: np.ndarray) -> np.ndarray:
        """The curve of every bootstrap sample: shape (samples, workers)."""
        return self._curve(workers[None, :], self.samples.T[..., None])

    @property
    def span(self) -> str:
        lo, hi = min(self.workers), max(self.workers)
        return f"{lo}–{hi} workers" if lo != hi else _workers(lo)


def _band(mid: np.ndarray, curves: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(curves, [alpha, 1 - alpha], axis=0)
    return mid, np.minimum(lo, mid), np.maximum(hi, mid)


@dataclass(frozen=True)
class USLFit(_ScalingFit):
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
        from .analysis import format_rate

        where = f" ({self.config})" if self.config else ""
        head = (
            f"USL fit over {self.span}{where}: contention σ = {_fmt(self.sigma, *self.sigma_ci)}, "
            f"coherency κ = {_fmt(self.kappa, *self.kappa_ci)}, one worker "
            f"{format_rate(self.lambda_, self.unit)}."
        )
        if self.sigma == 0 and self.kappa == 0:
            return head + " Neither contention nor coherency cost was measured: throughput grows in proportion to the workers."
        if not np.isfinite(self.peak_workers):
            return head + (
                f" No coherency cost was measured, so throughput keeps rising toward "
                f"{format_rate(self.peak_throughput, self.unit)} (λ/σ) as workers are added."
            )
        if self.peak_workers <= 1:
            return head + " Throughput peaks at one worker: every worker added makes it slower."
        after = "more workers than that make it slower" if self.peak_workers > max(self.workers) else "the largest counts measured are already past it: fewer workers would be faster"
        return head + (
            f" Throughput peaks at N* ≈ {_fmt(self.peak_workers, *self.peak_workers_ci)} workers, at "
            f"{format_rate(self.peak_throughput, self.unit)}; {after}."
        )

    def compare(self, sigma: float, kappa: float) -> str:
        """Fitted against known ``σ`` and ``κ`` (a calibration run), in words."""
        def one(name: str, fitted: float, ci: tuple[float, float], true: float) -> str:
            inside = "inside" if ci[0] <= true <= ci[1] else "outside"
            return f"{name} fitted {_num(fitted)} vs {_num(true)} configured ({inside} the interval {_num(ci[0])}–{_num(ci[1])})"

        return one("σ", self.sigma, self.sigma_ci, sigma) + "; " + one("κ", self.kappa, self.kappa_ci, kappa) + "."


@dataclass(frozen=True)
class AmdahlFit(_ScalingFit):
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
        head = f"Amdahl fit over {self.span}{where}: serial fraction {_fmt(self.serial_fraction, *self.serial_fraction_ci)}"
        if not np.isfinite(self.max_speedup):
            return head + ": no serial part was measured, so speedup is not bounded by this model."
        return head + f": no number of workers can make it more than {_fmt(self.max_speedup, *self.max_speedup_ci)} times faster than one."


def _log_usl(n: np.ndarray, log_lambda: float, sigma: float, kappa: float) -> np.ndarray:
    # Fitted in log space: run-to-run noise is proportional to the time, and the log
    # weighs a 16-worker point no more than a 1-worker one.
    return log_lambda + np.log(n) - np.log1p(sigma * (n - 1) + kappa * n * (n - 1))


def _log_usl_jac(n: np.ndarray, log_lambda: float, sigma: float, kappa: float) -> np.ndarray:
    d = 1 + sigma * (n - 1) + kappa * n * (n - 1)
    return np.column_stack([np.ones_like(n), -(n - 1) / d, -n * (n - 1) / d])


def _log_amdahl(n: np.ndarray, log_lambda: float, sigma: float) -> np.ndarray:
    return _log_usl(n, log_lambda, sigma, 0.0)


def _log_amdahl_jac(n: np.ndarray, log_lambda: float, sigma: float) -> np.ndarray:
    return _log_usl_jac(n, log_lambda, sigma, 0.0)[:, :2]


def _curve_fit(model: Callable[..., np.ndarray], jac: Callable[..., np.ndarray], n: np.ndarray, x: np.ndarray, p0: list[float], upper: list[float]) -> np.ndarray:
    from scipy.optimize import curve_fit

    lower = [-np.inf] + [0.0] * (len(p0) - 1)
    try:
        popt, _ = curve_fit(model, n, np.log(x), p0=p0, jac=jac, bounds=(lower, upper), x_scale="jac", max_nfev=2000)
    except RuntimeError as e:  # curve_fit's "optimal parameters not found"
        raise LabkitError(f"the {model.__name__.removeprefix('_log_')} fit did not converge: {e}") from None
    return _snap(np.array([np.exp(popt[0]), *popt[1:]]))


def _start(n: np.ndarray, x: np.ndarray) -> float:
    first = n == n.min()
    return float(np.log(np.median(x[first]) / n.min()))


def usl_fit(workers: np.ndarray | list[float], throughput: np.ndarray | list[float], *, unit: str = "", config: str = "", confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> USLFit:
    """Fit the USL to throughputs measured at several worker counts (repeats welcome).

    Parameters
    ----------
    workers, throughput : array-like
        One worker count and one throughput per trial; at least 3 distinct worker counts.
    unit : str, optional
        The throughput's unit (``bytes``, ``items``, ...), for ``describe``.
    config : str, optional
        Which configuration was fitted, for ``describe``.
    confidence : float, default 0.95
    n_boot : int, default 300
        Bootstrap refits for the intervals.
    seed : int, default 0

    Returns
    -------
    USLFit
    """
    n, x = np.asarray(workers, float), np.asarray(throughput, float)
    _check_points(n, x, 3, "USL")
    _check_options(confidence, n_boot)
    p0 = [_start(n, x), 0.05, 1e-4]
    upper = [np.inf, 1.0, np.inf]

    def once(nn: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return _curve_fit(_log_usl, _log_usl_jac, nn, xx, p0, upper)

    est = once(n, x)
    samples = _bootstrap(once, n, x, n, usl_throughput(n, *est), n_boot, seed)
    lam, sigma, kappa = (float(v) for v in est)
    peaks = np.array([peak_workers(s, k) for _, s, k in samples])
    n_star = peak_workers(sigma, kappa)
    peak_x = float(usl_throughput(n_star, *est)) if np.isfinite(n_star) else (lam / sigma if sigma > 0 else float("inf"))
    return USLFit(
        unit=unit, workers=tuple(sorted({int(v) for v in n})), confidence=confidence, samples=samples,
        sigma=sigma, kappa=kappa, lambda_=lam,
        sigma_ci=_interval(samples[:, 1], sigma, confidence), kappa_ci=_interval(samples[:, 2], kappa, confidence),
        lambda_ci=_interval(samples[:, 0], lam, confidence),
        peak_workers=n_star, peak_workers_ci=_interval(peaks, n_star, confidence), peak_throughput=peak_x, config=config,
    )


def amdahl_fit(workers: np.ndarray | list[float], throughput: np.ndarray | list[float], *, unit: str = "", config: str = "", confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> AmdahlFit:
    """Fit Amdahl's law to throughputs at 2 or more worker counts; see :func:`usl_fit`.

    >>> fit = amdahl_fit([1, 2, 4, 8], amdahl_throughput([1, 2, 4, 8], 50.0, 0.1))
    >>> round(fit.serial_fraction, 4), round(fit.max_speedup, 2)
    (0.1, 10.0)
    """
    n, x = np.asarray(workers, float), np.asarray(throughput, float)
    _check_points(n, x, 2, "Amdahl")
    _check_options(confidence, n_boot)
    p0 = [_start(n, x), 0.05]

    def once(nn: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return _curve_fit(_log_amdahl, _log_amdahl_jac, nn, xx, p0, [np.inf, 1.0])

    est = once(n, x)
    samples = _bootstrap(once, n, x, n, amdahl_throughput(n, *est), n_boot, seed)
    lam, sigma = (float(v) for v in est)
    ceilings = np.where(samples[:, 1] > 0, 1 / np.maximum(samples[:, 1], 1e-300), np.inf)
    ceiling = 1 / sigma if sigma > 0 else float("inf")
    return AmdahlFit(
        unit=unit, workers=tuple(sorted({int(v) for v in n})), confidence=confidence, samples=samples,
        serial_fraction=sigma, lambda_=lam,
        serial_fraction_ci=_interval(samples[:, 1], sigma, confidence), lambda_ci=_interval(samples[:, 0], lam, confidence),
        max_speedup=ceiling, max_speedup_ci=_interval(ceilings, ceiling, confidence), config=config,
    )


# -------------------------------------------------------------------------- overhead


@dataclass(frozen=True)
class OverheadFit:
    """``T = a + b·tasks + bytes/bandwidth`` fitted to wall times.

    ``fixed_s`` is ``a`` (cost of any run), ``per_task_s`` is ``b``, ``bandwidth`` the
    bytes per second of the data term (inf when no cost per byte was measured).
    ``break_even_bytes = b × bandwidth``: below this many bytes per task, the per-task
    overhead costs more than moving the task's data.
    """

    fixed_s: float
    per_task_s: float
    bandwidth: float
    fixed_s_ci: tuple[float, float]
    per_task_s_ci: tuple[float, float]
    bandwidth_ci: tuple[float, float]
    break_even_bytes: float
    break_even_bytes_ci: tuple[float, float]
    points: int
    confidence: float = CONFIDENCE
    config: str = ""
    samples: np.ndarray = field(default_factory=lambda: np.empty((0, 3)), repr=False, compare=False)

    def predict(self, tasks: np.ndarray | float, nbytes: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Wall time of a run of ``tasks`` tasks over ``nbytes`` bytes: ``(mid, lo, hi)``."""
        t, b = np.broadcast_arrays(np.atleast_1d(np.asarray(tasks, float)), np.atleast_1d(np.asarray(nbytes, float)))
        design = np.column_stack([np.ones_like(t), t, b])
        inv_bw = 0.0 if not np.isfinite(self.bandwidth) else 1 / self.bandwidth
        mid = design @ np.array([self.fixed_s, self.per_task_s, inv_bw])
        return _band(mid, self.samples @ design.T, self.confidence)

    def describe(self) -> str:
        """The three costs in words, and the chunk size below which tasks cost more than data."""
        from .analysis import format_rate

        where = f" ({self.config})" if self.config else ""
        ms = [v * 1e3 for v in (self.fixed_s, *self.fixed_s_ci)]
        us = [v * 1e6 for v in (self.per_task_s, *self.per_task_s_ci)]
        text = (
            f"Overhead model over {self.points} points{where}: each run costs {_fmt(*ms)} ms fixed "
            f"and {_fmt(*us)} µs per task"
        )
        if not np.isfinite(self.bandwidth):
            return text + "; the data's own time was too small to measure at these sizes (no cost per byte)."
        lo, hi = self.bandwidth_ci
        rate = f"{format_rate(self.bandwidth, 'bytes')} (" + (f"{format_rate(lo, 'bytes')}–{format_rate(hi, 'bytes')})" if np.isfinite(hi) else f"at least {format_rate(lo, 'bytes')}: the slowest bound is not resolved)")
        text += f", and moves data at {rate}."
        if self.per_task_s > 0:
            mb = [v / 2**20 for v in (self.break_even_bytes, *self.break_even_bytes_ci)]
            text += f" Per-task overhead outweighs the data's own time for tasks smaller than {_fmt(*mb)} MiB."
        return text


def overhead_fit(tasks: np.ndarray | list[float], nbytes: np.ndarray | list[float], wall_s: np.ndarray | list[float], *, config: str = "", confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> OverheadFit:
    """Fit ``T = a + b·tasks + bytes/bandwidth`` (all terms >= 0) to trials' wall times.

    Bounded linear least squares (``scipy.optimize.lsq_linear``) on relative errors; trials
    with the same ``(tasks, bytes)`` are repeats of one point for the bootstrap. Tasks and
    bytes must vary independently (at least 3 points not on one line).

    >>> t = np.array([10, 100, 1000, 10, 100, 1000])
    >>> b = np.array([1e8, 1e8, 1e8, 4e8, 4e8, 4e8])
    >>> fit = overhead_fit(t, b, 0.01 + 2e-4 * t + b / 2e9)
    >>> round(fit.fixed_s, 4), round(fit.per_task_s * 1e6), round(fit.bandwidth / 1e9, 2)
    (0.01, 200, 2.0)
    """
    t, b, w = (np.asarray(v, float) for v in (tasks, nbytes, wall_s))
    if not (t.shape == b.shape == w.shape) or t.ndim != 1:
        raise ParameterError("tasks/bytes/wall_s", (t.shape, b.shape, w.shape), "three 1-d arrays of one length")
    for name, v, low in (("wall_s", w, 0.0), ("tasks", t, 0.0), ("bytes", b, -1.0)):
        if np.any(~np.isfinite(v)) or np.any(v <= low):
            raise ParameterError(name, v[~np.isfinite(v) | (v <= low)][:3].tolist(), f"finite values > {max(low, 0):g} for every trial")
    _check_options(confidence, n_boot)
    design = np.column_stack([np.ones_like(t), t, b / 1e9])  # bytes in GB keeps columns comparable
    points = np.unique(design, axis=0)
    if points.shape[0] < 3 or np.linalg.matrix_rank(points) < 3:
        raise ParameterError("tasks/bytes", f"{points.shape[0]} distinct (tasks, bytes) points", "tasks and bytes varied independently: at least 3 points, not all with the same bytes or the same tasks per byte")

    def once(rows: np.ndarray, wall: np.ndarray) -> np.ndarray:
        from scipy.optimize import lsq_linear

        coef = lsq_linear(rows / wall[:, None], np.ones_like(wall), bounds=(0, np.inf)).x
        # A term at its bound comes back as 1e-20 or so: zero, when it adds nothing
        # measurable to any run (it would otherwise read as a bandwidth of 1e20 B/s).
        coef[coef * rows.max(axis=0) < 1e-6 * np.median(wall)] = 0.0
        return coef

    groups = np.unique(design, axis=0, return_inverse=True)[1].ravel()
    est = once(design, w)
    samples = _bootstrap(once, design, w, groups, design @ est, n_boot, seed)
    samples[:, 2] /= 1e9  # back to seconds per byte
    a, per_task, per_byte = (float(v) for v in (est[0], est[1], est[2] / 1e9))
    bw_samples = np.where(samples[:, 2] > 0, 1 / np.maximum(samples[:, 2], 1e-300), np.inf)
    bw = 1 / per_byte if per_byte > 0 else float("inf")
    even = samples[:, 1] * bw_samples
    return OverheadFit(
        fixed_s=a, per_task_s=per_task, bandwidth=bw,
        fixed_s_ci=_interval(samples[:, 0], a, confidence), per_task_s_ci=_interval(samples[:, 1], per_task, confidence),
        bandwidth_ci=_interval(bw_samples, bw, confidence),
        break_even_bytes=per_task * bw, break_even_bytes_ci=_interval(np.nan_to_num(even, nan=0.0), per_task * bw, confidence),
        points=int(points.shape[0]), confidence=confidence, config=config, samples=samples,
    )


# ------------------------------------------------------------------ from a trials frame


def fit_usl(frame: pd.DataFrame, *, where: dict[str, Any] | None = None, confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> USLFit:
    """Fit the USL to the ok trials of one configuration of a trials frame.

    ``where`` picks the configuration (see :func:`labkit.analysis.pick_configuration`:
    by default every varying parameter at its largest value). Needs 3 worker counts.
    """
    from .analysis import pick_configuration

    ok, label = pick_configuration(frame, where)
    return usl_fit(ok["workers"].to_numpy(float), ok["throughput"].to_numpy(float), unit=str(ok["unit"].iloc[0]), config=label, confidence=confidence, n_boot=n_boot, seed=seed)


def fit_amdahl(frame: pd.DataFrame, *, where: dict[str, Any] | None = None, confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> AmdahlFit:
    """Fit Amdahl's law to one configuration of a trials frame; see :func:`fit_usl`."""
    from .analysis import pick_configuration

    ok, label = pick_configuration(frame, where)
    return amdahl_fit(ok["workers"].to_numpy(float), ok["throughput"].to_numpy(float), unit=str(ok["unit"].iloc[0]), config=label, confidence=confidence, n_boot=n_boot, seed=seed)


def predict_throughput(fit: USLFit | AmdahlFit, workers: list[int] | np.ndarray) -> pd.DataFrame:
    """Predicted throughput and speedup at ``workers``, with bands; ``measured`` marks the
    counts the fit saw (the others are extrapolations)."""
    import pandas as pd

    n = np.asarray(sorted({int(w) for w in workers}), float)
    x, x_lo, x_hi = fit.predict(n)
    s, s_lo, s_hi = fit.speedup(n)
    return pd.DataFrame({
        "workers": n.astype(int), "throughput": x, "throughput_lo": x_lo, "throughput_hi": x_hi,
        "speedup": s, "speedup_lo": s_lo, "speedup_hi": s_hi, "measured": [int(w) in fit.workers for w in n],
    })


def task_counts(frame: pd.DataFrame) -> pd.Series:
    """Tasks one run of each trial's point submits (for :func:`fit_overhead`), from the
    workload's ``tasks(params, workers)`` method."""
    import pandas as pd

    from . import workloads

    def one(point: str, workers: int) -> int:
        params = json.loads(point)
        name = params.pop("workload")
        params.pop("workers", None)
        wl = workloads.get(name)
        if hasattr(wl, "tasks"):
            return int(wl.tasks(params, int(workers)))
        raise ParameterError("frame", f"trials of workload {name!r}", "a 'tasks' column, or a workload with a tasks(params, workers) method")

    return pd.Series([one(p, w) for p, w in zip(frame["point"], frame["workers"])], index=frame.index, name="tasks", dtype=float)


def fit_overhead(frame: pd.DataFrame, *, tasks: str = "tasks", nbytes: str = "bytes", where: dict[str, Any] | None = None, confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> OverheadFit:
    """Fit ``T = a + b·tasks + bytes/bandwidth`` to the ok trials of one workload.

    Parameters
    ----------
    frame : DataFrame
        Trials at several task counts and data sizes (e.g. a chunk × size sweep).
    tasks : str, default "tasks"
        Column of task counts; when absent, :func:`task_counts` derives them.
    nbytes : str, default "bytes"
        Column of bytes per run; when absent, ``amount`` of trials counted in bytes.
    where : dict, optional
        Fixes parameters; by default the trials at the largest worker count are fitted.
    """
    from .analysis import pick_configuration, varying

    ok, label = pick_configuration(frame, where, free=tuple(varying(frame)))
    if where is None or "workers" not in where:
        ok = ok[ok["workers"] == ok["workers"].max()]
        label += f", {int(ok['workers'].iloc[0])} workers"
    t = ok[tasks] if tasks in ok.columns else task_counts(ok)
    if nbytes in ok.columns:
        b = ok[nbytes]
    elif set(ok["unit"]) == {"bytes"}:
        b = ok["amount"]
    else:
        raise ParameterError("nbytes", nbytes, f"a column of bytes per run (trials are counted in {sorted(set(ok['unit']))}, not bytes)")
    return overhead_fit(t.to_numpy(float), b.to_numpy(float), ok["wall_s"].to_numpy(float), config=label, confidence=confidence, n_boot=n_boot, seed=seed)
