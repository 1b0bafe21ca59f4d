"""Fitting the Amdahl and USL models (:mod:`.models`) to measurements, with bootstrap intervals.

The curves are fitted in log space (run-to-run noise is proportional to the time, and the
log weighs a 16-worker point no more than a 1-worker one) by :func:`.solve.fit_log_usl`,
to plain arrays (``fit_usl(workers, throughput)``) or to one configuration of a trials
frame (:func:`fit_usl`, :func:`fit_amdahl`).

A USL fit needs at least 4 distinct worker counts and an Amdahl fit at least 3: with as
many counts as parameters the curve passes through every point, and nothing is left to
judge it by. The array functions refuse fewer with a ``ParameterError`` before fitting;
the frame functions, which notebooks call, return an :class:`.UnavailableFit` whose
``describe()`` says so, so that a notebook with 3 worker counts runs to its end.

Intervals come from a residual bootstrap corrected for small samples (see
:mod:`.intervals`): every refit sees every worker count, repeats or not, and one run per
count is enough.

>>> import numpy as np
>>> n = np.repeat([1, 2, 4, 8], 3)
>>> fit = fit_usl(n, usl_throughput(n, 100.0, 0.05, 0.002), unit="items")
>>> round(fit.sigma, 3), round(fit.kappa, 4), round(fit.peak_workers, 1)
(0.05, 0.002, 21.8)
>>> fit.note
'the model fits the runs exactly, with no run-to-run variation to size an interval'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError

from .frames import pick_configuration
from .intervals import CONFIDENCE, N_BOOT, check_options, fit_note, interval, residual_draws, show_rate
from .models import AmdahlFit, UnavailableFit, USLFit, amdahl_throughput, peak_workers, usl_throughput
from .solve import fit_log_usl

# The curves and result types are part of the fits' interface (``labkit.fits.usl_throughput``).
__all__ = [
    "AMDAHL_COUNTS",
    "USL_COUNTS",
    "AmdahlFit",
    "USLFit",
    "UnavailableFit",
    "amdahl_throughput",
    "fit_amdahl",
    "fit_usl",
    "peak_workers",
    "predict_throughput",
    "usl_throughput",
]

USL_COUNTS = 4
"""Fewest distinct worker counts for a USL fit (3 parameters)."""
AMDAHL_COUNTS = 3
"""Fewest distinct worker counts for an Amdahl fit (2 parameters)."""

if TYPE_CHECKING:
    import pandas as pd


def _needs(needed: int, model: str) -> str:
    return (
        f"at least {needed} distinct worker counts for a {model} fit (with {needed - 1}, as many as its "
        "parameters, the curve passes through every point and no interval is possible)"
    )


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
    if np.unique(workers).size < needed:
        raise ParameterError("workers", sorted(np.unique(workers).astype(int).tolist()), _needs(needed, model))


def _fit(n: np.ndarray, x: np.ndarray, kappa: bool, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The estimate ``(λ, σ, κ)``, the bootstrap refits (rows; none when intervals are not
    available) and the note saying why they are not.

    The refits are made to data drawn around the unconstrained least-squares fit, which
    sits at the data's own distance from the bounds (see :mod:`.intervals`), and are
    constrained as the estimate is.
    """
    y = np.log(x)
    params = fit_log_usl(n, y[None, :], kappa=kappa)[0][0]
    free = fit_log_usl(n, y[None, :], params[1:], kappa=kappa, bounded=False)[0][0]
    fitted = np.log(usl_throughput(n, *free))
    residuals = y - fitted
    p = 3 if kappa else 2
    note = fit_note(n.size, p, residuals)
    if note:
        return params, np.empty((0, 3)), note
    noise = residual_draws(residuals, p, n_boot, np.random.default_rng(seed))
    samples = fit_log_usl(n, fitted[None, :] + noise, params[1:], kappa=kappa)[0]
    return params, samples, ""


def _ceiling(lam: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``λ/σ``: the throughput no worker count reaches (inf when ``σ = 0``)."""
    with np.errstate(divide="ignore"):
        return np.where(sigma > 0, lam / np.where(sigma > 0, sigma, 1.0), np.inf)


def _usl_from_arrays(
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
        One worker count and one throughput per trial; at least 4 distinct worker counts.
    unit : str, optional
        The throughput's unit (``bytes``, ``items``, ...), for ``describe``.
    config : str, optional
        Which configuration was fitted, for ``describe``.
    confidence : float, default 0.95
    n_boot : int, default 1000
        Bootstrap refits for the intervals.
    seed : int, default 0

    Returns
    -------
    USLFit

    Raises
    ------
    ParameterError
        ``workers`` with fewer than 4 distinct counts; throughputs that are not finite and > 0.
    """
    n, x = np.asarray(workers, float), np.asarray(throughput, float)
    _check_points(n, x, USL_COUNTS, "USL")
    check_options(confidence, n_boot)
    est, samples, note = _fit(n, x, True, n_boot, seed)
    lam, sigma, kappa = (float(v) for v in est)
    with np.errstate(divide="ignore", invalid="ignore"):
        peaks = np.where(samples[:, 2] > 0, np.sqrt((1 - samples[:, 1]) / samples[:, 2]), np.inf)
    peaks = np.maximum(peaks, 1.0)
    peak_x = np.where(
        np.isfinite(peaks),
        usl_throughput(np.where(np.isfinite(peaks), peaks, 1.0), *samples.T),
        _ceiling(*samples.T[:2]),
    )
    n_star = peak_workers(sigma, kappa)
    ceiling = float(_ceiling(np.array(lam), np.array(sigma)))
    top = float(usl_throughput(n_star, *est)) if np.isfinite(n_star) else ceiling
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
        peak_throughput=top,
        peak_throughput_ci=interval(peak_x, top, confidence),
        ceiling=ceiling,
        ceiling_ci=interval(_ceiling(*samples.T[:2]), ceiling, confidence),
        config=config,
        note=note,
    )


def _amdahl_from_arrays(
    workers: np.ndarray | list[float],
    throughput: np.ndarray | list[float],
    *,
    unit: str = "",
    config: str = "",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> AmdahlFit:
    """Fit Amdahl's law to throughputs at 3 or more worker counts; see :func:`_usl_from_arrays`.

    >>> fit = _amdahl_from_arrays([1, 2, 4, 8], amdahl_throughput([1, 2, 4, 8], 50.0, 0.1))
    >>> round(fit.serial_fraction, 4), round(fit.max_speedup, 2)
    (0.1, 10.0)
    """
    n, x = np.asarray(workers, float), np.asarray(throughput, float)
    _check_points(n, x, AMDAHL_COUNTS, "Amdahl")
    check_options(confidence, n_boot)
    est, samples, note = _fit(n, x, False, n_boot, seed)
    samples = samples[:, :2]
    lam, sigma = float(est[0]), float(est[1])
    ceilings = _ceiling(np.ones(len(samples)), samples[:, 1])
    ceiling = float(_ceiling(np.array(1.0), np.array(sigma)))
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
        note=note,
    )


def _frame_fit(
    frame: pd.DataFrame, where: dict[str, Any] | None, needed: int, model: str
) -> tuple[pd.DataFrame, str, UnavailableFit | None]:
    ok, label = pick_configuration(frame, where)
    counts = sorted({int(w) for w in ok["workers"]})
    if len(counts) >= needed:
        return ok, label, None
    reason = f"needs {needed} worker counts, these trials have {len(counts)} ({', '.join(map(str, counts))})"
    return ok, label, UnavailableFit(model, reason, tuple(counts), str(ok["unit"].iloc[0]), label)


def fit_usl(
    frame: pd.DataFrame | np.ndarray | list[float],
    throughput: np.ndarray | list[float] | None = None,
    *,
    where: dict[str, Any] | None = None,
    unit: str = "",
    config: str = "",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> USLFit | UnavailableFit:
    """Fit the USL to the ok trials of one configuration of a trials frame.

    Parameters
    ----------
    frame : DataFrame, or array-like of worker counts
        Trials (``Results.frame``); or one worker count per trial, with ``throughput``.
    throughput : array-like, optional
        One throughput per trial, when ``frame`` is worker counts (``unit`` and ``config``
        then label the fit).
    where : dict, optional
        Picks the configuration (see :func:`labkit.analysis.pick_configuration`: by
        default every varying parameter at its largest value).
    confidence, n_boot, seed
        As for :func:`_usl_from_arrays`.

    Returns
    -------
    USLFit or UnavailableFit
        With fewer than 4 worker counts, an :class:`.UnavailableFit` whose ``describe()``
        says so (``fit.available`` is False), so that a notebook runs on.
    """
    if throughput is not None:  # a worker count and a throughput per trial
        return _usl_from_arrays(
            frame, throughput, unit=unit, config=config, confidence=confidence, n_boot=n_boot, seed=seed
        )
    ok, label, unavailable = _frame_fit(frame, where, USL_COUNTS, "USL")
    if unavailable is not None:
        return unavailable
    return _usl_from_arrays(
        ok["workers"].to_numpy(float),
        ok["throughput"].to_numpy(float),
        unit=str(ok["unit"].iloc[0]),
        config=label,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
    )


def fit_amdahl(
    frame: pd.DataFrame | np.ndarray | list[float],
    throughput: np.ndarray | list[float] | None = None,
    *,
    where: dict[str, Any] | None = None,
    unit: str = "",
    config: str = "",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> AmdahlFit | UnavailableFit:
    """Fit Amdahl's law to one configuration of a trials frame.

    Parameters
    ----------
    frame, where, confidence, n_boot, seed
        As for :func:`fit_usl`.

    Returns
    -------
    AmdahlFit or UnavailableFit
        An :class:`.UnavailableFit` with fewer than 3 worker counts.
    """
    if throughput is not None:
        return _amdahl_from_arrays(
            frame, throughput, unit=unit, config=config, confidence=confidence, n_boot=n_boot, seed=seed
        )
    ok, label, unavailable = _frame_fit(frame, where, AMDAHL_COUNTS, "Amdahl")
    if unavailable is not None:
        return unavailable
    return _amdahl_from_arrays(
        ok["workers"].to_numpy(float),
        ok["throughput"].to_numpy(float),
        unit=str(ok["unit"].iloc[0]),
        config=label,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
    )


def predict_throughput(fit: USLFit | AmdahlFit | UnavailableFit, workers: list[int] | np.ndarray) -> pd.DataFrame:
    """Predicted throughput and speedup at ``workers``, with bands.

    Parameters
    ----------
    fit : USLFit, AmdahlFit or UnavailableFit
    workers : list of int

    Returns
    -------
    DataFrame
        One row per worker count: ``predicted``, the throughput and its band in words with
        their unit; ``unit`` (of ``throughput``, e.g. ``"bytes/s"``); ``throughput`` and
        ``speedup`` with ``*_lo``/``*_hi`` bands (NaN where not available), ``measured`` (the counts the fit saw; the others
        are extrapolations) and ``note`` (why a figure or its band is not available).
    """
    import pandas as pd

    n = np.asarray(sorted({int(w) for w in workers}), float)
    x, x_lo, x_hi = fit.predict(n)
    s, s_lo, s_hi = fit.speedup(n)
    if isinstance(fit, UnavailableFit):
        notes = [f"not available: {fit.reason}"] * len(n)
    elif fit.note:
        notes = [f"interval not available: {fit.note}"] * len(n)
    else:
        notes = ["baseline: speedup 1 by definition" if w == min(fit.workers) else "" for w in n]
    unit = getattr(fit, "unit", "") or "items"
    said = [
        "not available" if not np.isfinite(v) else show_rate(float(v), float(lo), float(hi), unit)
        for v, lo, hi in zip(x, x_lo, x_hi)
    ]
    return pd.DataFrame(
        {
            "workers": n.astype(int),
            "predicted": said,
            "unit": f"{unit}/s",
            "throughput": x,
            "throughput_lo": x_lo,
            "throughput_hi": x_hi,
            "speedup": s,
            "speedup_lo": s_lo,
            "speedup_hi": s_hi,
            "measured": [int(w) in fit.workers for w in n],
            "note": notes,
        }
    )
