"""Uncertainty from the repeats: intervals of medians and ratios, bootstrap refits of fits, and the words for them.

Two kinds of interval, each at ``confidence`` (95% by default):

- A plain statistic of repeats (a median, a ratio of medians: a speedup, an efficiency, a
  throughput ratio) gets :func:`scipy.stats.bootstrap`'s BCa interval, or its percentile
  interval where BCa is degenerate. From :data:`LARGE_N` repeats on every side (a year of
  nightly runs of one point), BCa's jackknife (a refit per repeat, so a cost that grows with
  the square of the repeats) gives way to the percentile interval of medians drawn from their
  exact bootstrap law (:func:`median_draws`, a sort's cost): at that size BCa's corrections
  are a small fraction of the interval, and simulated lognormal repeats gave these intervals
  95% coverage too (tests/test_coverage.py checks it at 1,000 and 1,201 repeats). With fewer than :data:`MIN_REPEATS` runs on a side the
  interval is not available (NaN), and :func:`runs_note` says why: simulated lognormal
  repeats gave these intervals 66% coverage with 2 runs a side, 89% with 3, 92% with 4 and
  95% from 5 on.
- A fitted model (Amdahl, USL, the overhead model) gets a residual bootstrap corrected
  for small samples. The bootstrap's data sets are drawn around the *unconstrained*
  least-squares fit (σ and κ free to go below 0), which sits at the data's own distance
  from the bounds, and every refit is constrained as the estimate is (σ, κ >= 0). The log
  residuals of that fit, centred and rescaled by ``sqrt(n / (n - p))`` (``n`` runs, ``p``
  parameters), are resampled across every run, whatever its worker count
  (:func:`residual_draws`), and each resampled set is multiplied by ``sqrt(df / χ²_df)``
  with ``df = n - p`` and a fresh ``χ²_df`` draw, so that the refits carry the
  uncertainty of the noise level itself: for a linear model with normal noise that is
  Student's t with ``df`` degrees of freedom, which is what makes a fit to one run per
  worker count (``df = 1``) honest. Intervals are percentiles of the refits. On data from
  a known USL (λ = 100, σ = 0.05, κ = 0.002, workers 1, 2, 4, 8; 2,000 data sets each
  at 1%, 2%, 3% and 5% lognormal noise) the 95% intervals of σ, κ and of the predicted
  throughput at 16 and 32 workers held the truth 93.5–96% of the time with 5 repeats per
  count and 94–95.5% with one run per count (tests/test_coverage.py checks it at 2%).
  Drawing around the constrained fit instead made them cover up to 98% near a bound;
  leaving out the centring, rescaling and χ² factor, 61–65% with one run per count.

A margin of practical equivalence ``m`` (``recommend``'s and ``compare``'s ``margin``) is one
convention everywhere, symmetric on the ratio's log scale: a ratio inside
``[1 / (1 + m), 1 + m]`` is no practical change (:func:`equivalence_band`); "faster by more
than the margin" means beyond ``1 + m``, "slower by more than the margin" below ``1 / (1 + m)``.

An interval never has zero width: where it would (identical repeats, a model that fits
the runs exactly, as many runs as parameters, a parameter that nearly every refit puts at
its bound), it is NaN and a note or the description says why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_number, format_rate

CONFIDENCE = 0.95
N_BOOT = 1000
"""Bootstrap refits of a fitted model."""
N_RESAMPLES = 2000
"""Bootstrap resamples of a median or a ratio of medians."""
MIN_REPEATS = 5
"""Fewest runs on each side of a ratio (or of a median) for its interval."""
LARGE_N = 1000
"""From this many repeats on every side, a median's bootstrap is drawn from its exact law
(:func:`median_draws`) and the interval is the percentile one: BCa's jackknife costs the
square of the repeats."""
_BIG = 1e300  # stands in for an infinite N* inside quantiles
_EXACT = 1e-9  # log residuals this small are rounding, not run-to-run noise


class Estimate(NamedTuple):
    """A figure, its interval (NaN where not available) and, when it is not, why."""

    value: float
    lo: float
    hi: float
    note: str = ""


def runs_note(*sizes: int) -> str:
    """Why an interval from repeats is not available, or ``""`` when it is.

    >>> runs_note(1, 6)
    'interval not available: one run per point; use repeats >= 5'
    >>> runs_note(3, 3)
    'interval not available: 3 runs per point; use repeats >= 5'
    >>> runs_note(5, 7)
    ''
    """
    fewest = min(sizes)
    if fewest >= MIN_REPEATS:
        return ""
    runs = "one run" if fewest == 1 else f"{fewest} runs"
    return f"interval not available: {runs} per point; use repeats >= {MIN_REPEATS}"


def _check_samples(name: str, values: np.ndarray) -> None:
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ParameterError(name, values[:5].tolist(), "at least one finite value > 0")


def _bootstrap(
    data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], confidence: float, n_resamples: int, seed: int
) -> Estimate:
    """``scipy.stats.bootstrap``'s BCa interval; its percentile interval where BCa is degenerate."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    value = float(statistic(*data))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", DegenerateDataWarning)  # identical repeats: the fallback below
        res = bootstrap(
            data,
            statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="BCa",
            vectorized=True,
            paired=False,
            rng=np.random.default_rng(seed),
        )
    lo, hi = (float(v) for v in res.confidence_interval)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        alpha = (1 - confidence) / 2
        lo, hi = (float(v) for v in np.quantile(res.bootstrap_distribution, [alpha, 1 - alpha]))
    lo, hi = min(lo, value), max(hi, value)
    if hi - lo <= 1e-12 * abs(value):
        return Estimate(value, math.nan, math.nan, "interval not available: the repeats do not vary")
    return Estimate(value, lo, hi)


def median_estimate(
    values: np.ndarray, *, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> Estimate:
    """The median of repeats with its bootstrap interval (BCa).

    Parameters
    ----------
    values : array-like
        Repeats (throughputs > 0).
    confidence : float, default 0.95
    n_resamples : int, default 2000
    seed : int, default 0

    Returns
    -------
    Estimate
        NaN bounds, and the reason in ``note``, with fewer than :data:`MIN_REPEATS` values.

    >>> median_estimate([1.0, 2.0, 3.0]).note
    'interval not available: 3 runs per point; use repeats >= 5'
    """
    x = np.asarray(values, float)
    _check_samples("values", x)
    note = runs_note(x.size)
    if note:
        return Estimate(float(np.median(x)), math.nan, math.nan, note)
    if x.size >= LARGE_N:
        rng = np.random.default_rng(seed)
        return _percentile(float(np.median(x)), median_draws(x, n_resamples, rng), confidence)
    return _bootstrap((x,), lambda a, axis=-1: np.median(a, axis=axis), confidence, n_resamples, seed)


def ratio_estimate(
    num: np.ndarray,
    den: np.ndarray | float,
    *,
    n_boot: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """``median(num) / median(den)`` with its bootstrap interval (BCa over both sides' repeats).

    Parameters
    ----------
    num : array-like
        Repeats of the numerator (throughputs > 0).
    den : array-like or float
        Repeats of the denominator, or a float: a known constant (a hardware limit, say),
        which adds no uncertainty.
    n_boot : int, default 2000
        Bootstrap resamples.
    confidence : float, default 0.95
    seed : int, default 0

    Returns
    -------
    Estimate
        ``(value, lo, hi, note)``: with fewer than :data:`MIN_REPEATS` runs on a side, or
        repeats that do not vary, the bounds are NaN and ``note`` says why.

    >>> ratio_estimate([1.7], [1.0]).note
    'interval not available: one run per point; use repeats >= 5'
    """
    num = np.asarray(num, float)
    _check_samples("samples", num)
    if np.ndim(den) == 0:
        const = float(den)
        if not math.isfinite(const) or const <= 0:
            raise ParameterError("den", den, "a finite constant > 0, or repeats")
        m = median_estimate(num, confidence=confidence, n_resamples=n_boot, seed=seed)
        return Estimate(m.value / const, m.lo / const, m.hi / const, m.note)
    den = np.asarray(den, float)
    _check_samples("samples", den)
    estimate = float(np.median(num) / np.median(den))
    note = runs_note(num.size, den.size)
    if note:
        return Estimate(estimate, math.nan, math.nan, note)

    if min(num.size, den.size) >= LARGE_N:
        rng = np.random.default_rng(seed)
        return _percentile(estimate, median_draws(num, n_boot, rng) / median_draws(den, n_boot, rng), confidence)

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(a, axis=axis) / np.median(b, axis=axis)

    return _bootstrap((num, den), ratio, confidence, n_boot, seed)


def median_draws(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of the median of a bootstrap resample of ``values``, without resampling.

    A resample's ``m``-th smallest value is the sorted sample's ``k``-th or below exactly when
    at least ``m`` of its draws fall there: ``Binomial(size, k / size) >= m``. That law is
    computed once for every ``k`` and inverted at ``n`` uniform draws, so the cost grows as
    a sort (``size log size``), not as ``n × size`` (resampling) or ``size²`` (BCa's
    jackknife). For an even size, the two middle order statistics are drawn from the same
    uniform (comonotone); at the sizes this is used for (:data:`LARGE_N` and up) they lie
    next to each other in the sorted sample almost always.

    The values 1 … 1001 (a resampling bootstrap's 2.5%, 50% and 97.5% points: 469, 501, 532):

    >>> d = median_draws(np.arange(1.0, 1002.0), 4000, np.random.default_rng(0))
    >>> np.quantile(d, [0.025, 0.5, 0.975]).round().tolist()
    [469.0, 501.0, 532.0]
    """
    from scipy.stats import binom

    x = np.sort(np.asarray(values, float))
    size = x.size
    u = rng.random(n)
    k = np.arange(1, size + 1)
    middle = {(size + 1) // 2, size // 2 + 1}  # one order statistic for an odd size, two for an even one
    picks = []
    for m in sorted(middle):
        cdf = binom.sf(m - 1, size, k / size)  # P(the resample's m-th smallest <= x[k - 1])
        picks.append(x[np.minimum(np.searchsorted(cdf, u, side="left"), size - 1)])
    return np.mean(picks, axis=0)


def _percentile(value: float, draws: np.ndarray, confidence: float) -> Estimate:
    """The percentile interval of bootstrap ``draws`` around ``value`` (never of zero width)."""
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(draws, [alpha, 1 - alpha]))
    lo, hi = min(lo, value), max(hi, value)
    if hi - lo <= 1e-12 * abs(value):
        return Estimate(value, math.nan, math.nan, "interval not available: the repeats do not vary")
    return Estimate(value, lo, hi)


def equivalence_band(margin: float) -> tuple[float, float]:
    """The ratios that count as no practical change with margin ``m``: ``(1 / (1 + m), 1 + m)``.

    >>> lo, hi = equivalence_band(0.05)
    >>> round(lo, 4), hi
    (0.9524, 1.05)
    """
    return 1 / (1 + margin), 1 + margin


def direction(lo: float, hi: float, null: float = 1.0) -> str:
    """``'up'`` or ``'down'`` when the interval excludes ``null``, ``'unclear'`` when it holds it,
    ``'unknown'`` when there is no interval.

    >>> direction(1.1, 1.3), direction(0.7, 0.9), direction(0.9, 1.2), direction(float("nan"), float("nan"))
    ('up', 'down', 'unclear', 'unknown')
    """
    if math.isnan(lo) or math.isnan(hi):
        return "unknown"
    return "up" if lo > null else "down" if hi < null else "unclear"


def _parse(text: str) -> float:
    return math.inf if text == "∞" else float(text.replace(",", ""))


def figures(value: float, lo: float, hi: float, said: str = "") -> tuple[str, str, str]:
    """``value``, ``lo`` and ``hi`` in words, with the digits it takes for ``lo`` and ``hi`` to
    differ and, where a direction is claimed, for the end nearest 1 not to read as 1."""
    v, a, b = (format_number(x) for x in (value, lo, hi))
    for digits in range(4, 18):
        near = a if said == "up" else b if said == "down" else ""
        if a != b and not (near and _parse(near) == 1):
            break
        v, a, b = (f"{x:.{digits}g}" for x in (value, lo, hi))
    return v, a, b


def show(value: float, lo: float, hi: float, scale: float = 1.0, suffix: str = "", said: str = "") -> str:
    """A figure and its interval in words (with the digits :func:`figures` gives them); where
    there is no interval, says so. ``said``: the direction a ratio's interval claims ("up",
    "down"), so that its end nearest 1 does not read as 1.

    >>> show(0.102, 0.095, 0.11), show(0.1, float("nan"), float("nan")), show(1.09, 1.0005, 1.27, said="up")
    ('0.102 (0.095–0.11)', '0.1 (interval not available)', '1.09 (1.0005–1.27)')
    """
    if math.isnan(lo) or math.isnan(hi):
        return f"{format_number(value * scale)}{suffix} (interval not available)"
    v, a, b = figures(value * scale, lo * scale, hi * scale, said)
    return f"{v}{suffix} ({a}–{b}{suffix})"


def percent(value: float, lo: float, hi: float) -> str:
    """``'81% (77–85%)'``, or ``'81% (interval not available)'``.

    >>> percent(0.81, 0.77, 0.85), percent(0.8, float("nan"), float("nan"))
    ('81% (77–85%)', '80% (interval not available)')
    """
    if math.isnan(lo) or math.isnan(hi):
        return f"{value:.0%} (interval not available)"
    return f"{value:.0%} ({lo * 100:.0f}–{hi:.0%})"


def check_options(confidence: float, n_boot: int) -> None:
    """Refuse a confidence outside (0, 1) or fewer than 100 bootstrap refits."""
    if not isinstance(confidence, float) or not 0 < confidence < 1:
        raise ParameterError("confidence", confidence, "a fraction between 0 and 1, e.g. 0.95")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ParameterError("n_boot", n_boot, "an integer >= 100 (bootstrap refits for the intervals)")


def fit_note(runs: int, params: int, log_residuals: np.ndarray) -> str:
    """Why a fitted model's intervals are not available, or ``""`` when they are."""
    if runs <= params:
        return f"{runs} runs for {params} parameters leave nothing to estimate the noise from; add repeats"
    if np.sqrt(np.sum(log_residuals**2) / (runs - params)) < _EXACT:
        return "the model fits the runs exactly, with no run-to-run variation to size an interval"
    return ""


def residual_draws(log_residuals: np.ndarray, params: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Log noise for ``n_boot`` refits, shape (n_boot, runs): see the module's docstring.

    Centred residuals rescaled by ``sqrt(n / df)``, resampled over all runs, each set scaled
    by ``sqrt(df / χ²_df)``. Callers check :func:`fit_note` first (``df >= 1``).
    """
    r = np.asarray(log_residuals, float)
    n = r.size
    df = n - params
    centred = (r - r.mean()) * np.sqrt(n / df)
    draws = centred[rng.integers(0, n, (n_boot, n))]
    return draws * np.sqrt(df / rng.chisquare(df, n_boot))[:, None]


def interval(samples: np.ndarray, estimate: float, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap samples, widened to contain the estimate; NaN when it
    would have zero width (or there are no samples)."""
    if samples.size == 0:
        return math.nan, math.nan
    finite = np.where(np.isinf(samples), _BIG, samples)
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(finite, [alpha, 1 - alpha], method="inverted_cdf"))
    lo, hi = (float("inf") if v >= _BIG else v for v in (lo, hi))
    lo, hi = min(lo, estimate), max(hi, estimate)
    if lo == hi:
        return math.nan, math.nan
    return lo, hi


def band(mid: np.ndarray, curves: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mid, lo, hi)`` of curves from bootstrap samples (rows); NaN bands without samples."""
    if curves.shape[0] == 0:
        nan = np.full_like(mid, np.nan, dtype=float)
        return mid, nan, nan.copy()
    alpha = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        lo, hi = np.quantile(curves, [alpha, 1 - alpha], axis=0)
    lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
    same = hi - lo <= 1e-12 * np.abs(mid)
    return mid, np.where(same, np.nan, lo), np.where(same, np.nan, hi)


def show_rate(value: float, lo: float, hi: float, unit: str) -> str:
    """A throughput and its interval in words; where there is no interval, says so.

    >>> show_rate(2500.0, 2400.0, 2600.0, "items")
    '2.5 k items/s (2.4 k items/s–2.6 k items/s)'
    """
    if math.isnan(lo) or math.isnan(hi):
        return f"{format_rate(value, unit)} (interval not available)"
    high = format_rate(hi, unit) if math.isfinite(hi) else "unbounded"
    return f"{format_rate(value, unit)} ({format_rate(lo, unit)}–{high})"
