"""Fitting the Amdahl and USL models (:mod:`.models`) to measurements, with bootstrap intervals.

The curves are fitted with SciPy in log space, to plain arrays (:func:`usl_fit`,
:func:`amdahl_fit`) or to one configuration of a trials frame (:func:`fit_usl`,
:func:`fit_amdahl`). Uncertainty comes from a bootstrap over the repeats: the trials of
each worker count are resampled with replacement and the model refitted, so every figure
and every predicted point has a percentile interval. With a single trial per point the
bootstrap resamples the fit's residuals instead.

>>> import numpy as np
>>> n = np.repeat([1, 2, 4, 8], 3)
>>> fit = usl_fit(n, usl_throughput(n, 100.0, 0.05, 0.002), unit="items")
>>> round(fit.sigma, 3), round(fit.kappa, 4), round(fit.peak_workers, 1)
(0.05, 0.002, 21.8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import LabkitError, ParameterError

from .frames import pick_configuration
from .intervals import CONFIDENCE, N_BOOT, bootstrap, check_options, interval
from .models import AmdahlFit, USLFit, amdahl_throughput, peak_workers, usl_throughput

# The curves and result types are part of the fits' interface (``labkit.fits.usl_throughput``).
__all__ = [
    "AmdahlFit",
    "USLFit",
    "amdahl_fit",
    "amdahl_throughput",
    "fit_amdahl",
    "fit_usl",
    "peak_workers",
    "predict_throughput",
    "usl_fit",
    "usl_throughput",
]

if TYPE_CHECKING:
    import pandas as pd


def _snap(params: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    """Fitted σ, κ at their bound come back as 1e-20 and the like: call them zero."""
    out = params.copy()
    out[1:][np.abs(out[1:]) < floor] = 0.0
    return out


def _check_points(workers: np.ndarray, values: np.ndarray, needed: int, model: str) -> None:
    if workers.shape != values.shape or workers.ndim != 1:
        raise ParameterError("workers", workers.shape, f"one worker count per throughput value ({values.shape})")
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        where = sorted({int(w) for w in workers[bad]})
        raise ParameterError(
            "throughput",
            values[bad][:3].tolist(),
            f"finite values > 0 (check the trials at workers={where}: zero or missing wall time?)",
        )
    if np.any(~np.isfinite(workers)) or np.any(workers < 1):
        raise ParameterError("workers", workers.tolist(), "worker counts >= 1")
    distinct = np.unique(workers).size
    if distinct < needed:
        raise ParameterError(
            "workers",
            sorted(np.unique(workers).astype(int).tolist()),
            f"at least {needed} distinct worker counts for a {model} fit",
        )


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


def _curve_fit(
    model: Callable[..., np.ndarray],
    jac: Callable[..., np.ndarray],
    n: np.ndarray,
    x: np.ndarray,
    p0: list[float],
    upper: list[float],
) -> np.ndarray:
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


def usl_fit(
    workers: np.ndarray | list[float],
    throughput: np.ndarray | list[float],
    *,
    unit: str = "",
    config: str = "",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> USLFit:
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
    check_options(confidence, n_boot)
    p0 = [_start(n, x), 0.05, 1e-4]
    upper = [np.inf, 1.0, np.inf]

    def once(nn: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return _curve_fit(_log_usl, _log_usl_jac, nn, xx, p0, upper)

    est = once(n, x)
    samples = bootstrap(once, n, x, n, usl_throughput(n, *est), n_boot, seed)
    lam, sigma, kappa = (float(v) for v in est)
    peaks = np.array([peak_workers(s, k) for _, s, k in samples])
    n_star = peak_workers(sigma, kappa)
    peak_x = (
        float(usl_throughput(n_star, *est)) if np.isfinite(n_star) else (lam / sigma if sigma > 0 else float("inf"))
    )
    return USLFit(
        unit=unit,
        workers=tuple(sorted({int(v) for v in n})),
        confidence=confidence,
        samples=samples,
        sigma=sigma,
        kappa=kappa,
        lambda_=lam,
        sigma_ci=interval(samples[:, 1], sigma, confidence),
        kappa_ci=interval(samples[:, 2], kappa, confidence),
        lambda_ci=interval(samples[:, 0], lam, confidence),
        peak_workers=n_star,
        peak_workers_ci=interval(peaks, n_star, confidence),
        peak_throughput=peak_x,
        config=config,
    )


def amdahl_fit(
    workers: np.ndarray | list[float],
    throughput: np.ndarray | list[float],
    *,
    unit: str = "",
    config: str = "",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> AmdahlFit:
    """Fit Amdahl's law to throughputs at 2 or more worker counts; see :func:`usl_fit`.

    >>> fit = amdahl_fit([1, 2, 4, 8], amdahl_throughput([1, 2, 4, 8], 50.0, 0.1))
    >>> round(fit.serial_fraction, 4), round(fit.max_speedup, 2)
    (0.1, 10.0)
    """
    n, x = np.asarray(workers, float), np.asarray(throughput, float)
    _check_points(n, x, 2, "Amdahl")
    check_options(confidence, n_boot)
    p0 = [_start(n, x), 0.05]

    def once(nn: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return _curve_fit(_log_amdahl, _log_amdahl_jac, nn, xx, p0, [np.inf, 1.0])

    est = once(n, x)
    samples = bootstrap(once, n, x, n, amdahl_throughput(n, *est), n_boot, seed)
    lam, sigma = (float(v) for v in est)
    ceilings = np.where(samples[:, 1] > 0, 1 / np.maximum(samples[:, 1], 1e-300), np.inf)
    ceiling = 1 / sigma if sigma > 0 else float("inf")
    return AmdahlFit(
        unit=unit,
        workers=tuple(sorted({int(v) for v in n})),
        confidence=confidence,
        samples=samples,
        serial_fraction=sigma,
        lambda_=lam,
        serial_fraction_ci=interval(samples[:, 1], sigma, confidence),
        lambda_ci=interval(samples[:, 0], lam, confidence),
        max_speedup=ceiling,
        max_speedup_ci=interval(ceilings, ceiling, confidence),
        config=config,
    )


def fit_usl(
    frame: pd.DataFrame,
    *,
    where: dict[str, Any] | None = None,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> USLFit:
    """Fit the USL to the ok trials of one configuration of a trials frame.

    ``where`` picks the configuration (see :func:`labkit.analysis.pick_configuration`:
    by default every varying parameter at its largest value). Needs 3 worker counts.
    """

    ok, label = pick_configuration(frame, where)
    return usl_fit(
        ok["workers"].to_numpy(float),
        ok["throughput"].to_numpy(float),
        unit=str(ok["unit"].iloc[0]),
        config=label,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
    )


def fit_amdahl(
    frame: pd.DataFrame,
    *,
    where: dict[str, Any] | None = None,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> AmdahlFit:
    """Fit Amdahl's law to one configuration of a trials frame; see :func:`fit_usl`."""

    ok, label = pick_configuration(frame, where)
    return amdahl_fit(
        ok["workers"].to_numpy(float),
        ok["throughput"].to_numpy(float),
        unit=str(ok["unit"].iloc[0]),
        config=label,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
    )


def predict_throughput(fit: USLFit | AmdahlFit, workers: list[int] | np.ndarray) -> pd.DataFrame:
    """Predicted throughput and speedup at ``workers``, with bands; ``measured`` marks the
    counts the fit saw (the others are extrapolations)."""
    import pandas as pd

    n = np.asarray(sorted({int(w) for w in workers}), float)
    x, x_lo, x_hi = fit.predict(n)
    s, s_lo, s_hi = fit.speedup(n)
    return pd.DataFrame(
        {
            "workers": n.astype(int),
            "throughput": x,
            "throughput_lo": x_lo,
            "throughput_hi": x_hi,
            "speedup": s,
            "speedup_lo": s_lo,
            "speedup_hi": s_hi,
            "measured": [int(w) in fit.workers for w in n],
        }
    )
