"""Uncertainty from the repeats: bootstrap ratios, refits and percentile intervals and bands."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labkit.common.errors import LabkitError, ParameterError

CONFIDENCE = 0.95
N_BOOT = 300
_BIG = 1e300  # stands in for an infinite N* inside quantiles


def bootstrap_ratio(
    num: np.ndarray, den: np.ndarray, *, n_boot: int = 2000, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float, float]:
    """Ratio of medians ``median(num) / median(den)`` with a percentile bootstrap interval.

    With a single value on both sides the interval collapses to the point estimate.
    """
    num, den = np.asarray(num, float), np.asarray(den, float)
    if num.size == 0 or den.size == 0:
        raise ParameterError("samples", f"{num.size} and {den.size} values", "at least one value on each side")
    if np.any(~np.isfinite(num)) or np.any(~np.isfinite(den)) or np.any(den <= 0):
        raise ParameterError("samples", "non-finite or non-positive values", "finite throughputs > 0")
    estimate = float(np.median(num) / np.median(den))
    rng = np.random.default_rng(seed)
    bn = np.median(rng.choice(num, (n_boot, num.size)), axis=1)
    bd = np.median(rng.choice(den, (n_boot, den.size)), axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(bn / bd, [alpha, 1 - alpha])
    return estimate, float(min(lo, estimate)), float(max(hi, estimate))


def interval(samples: np.ndarray, estimate: float, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap samples, widened to contain the estimate."""
    finite = np.where(np.isinf(samples), _BIG, samples)
    alpha = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(finite, [alpha, 1 - alpha], method="inverted_cdf"))
    lo, hi = (float("inf") if v >= _BIG else v for v in (lo, hi))
    return min(lo, estimate), max(hi, estimate)


def band(mid: np.ndarray, curves: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(curves, [alpha, 1 - alpha], axis=0)
    return mid, np.minimum(lo, mid), np.maximum(hi, mid)


def check_options(confidence: float, n_boot: int) -> None:
    if not isinstance(confidence, float) or not 0 < confidence < 1:
        raise ParameterError("confidence", confidence, "a fraction between 0 and 1, e.g. 0.95")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 20:
        raise ParameterError("n_boot", n_boot, "an integer >= 20 (bootstrap refits for the intervals)")


def resamples(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray] | None:
    """Index arrays resampling each group with replacement; None when no group repeats."""
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    if all(m.size == 1 for m in members):
        return None
    return [np.concatenate([rng.choice(m, m.size) for m in members]) for _ in range(n_boot)]


def bootstrap(
    fit_once: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    fitted: np.ndarray,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Refit on resampled repeats, or, when nothing repeats, on resampled log residuals."""
    rng = np.random.default_rng(seed)
    draws = resamples(groups, n_boot, rng)
    if draws is not None:
        refits = [try_fit(fit_once, x[idx], y[idx]) for idx in draws]
    else:
        res = np.log(y / fitted)
        refits = [try_fit(fit_once, x, fitted * np.exp(rng.choice(res, res.size))) for _ in range(n_boot)]
    done = [r for r in refits if r is not None]
    # A few resamples can be degenerate (every draw the same trial); most must fit.
    if len(done) < n_boot / 2:
        raise LabkitError(
            f"only {len(done)} of {n_boot} bootstrap refits converged: the data do not pin the model down"
        )
    return np.array(done)


def try_fit(
    fit_once: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray
) -> np.ndarray | None:
    try:
        return fit_once(x, y)
    except LabkitError:
        return None
