"""Least squares for many data sets at once: the USL family in log space, and non-negative linear fits.

A bootstrap refits a model hundreds of times; these solvers fit every resampled data set in
one pass of NumPy array operations instead of one SciPy call each, so intervals from a
thousand refits cost milliseconds.

- :func:`fit_log_usl`: ``log X = log λ + log N - log(1 + σ(N-1) + κN(N-1))`` with
  ``0 <= σ <= 1`` and ``κ >= 0`` (or ``κ = 0``: Amdahl), by Levenberg–Marquardt on
  ``(σ, κ)`` with ``log λ`` solved exactly at each step (variable projection), and bounds
  kept by fixing a parameter at its bound while the gradient pushes it out.
- :func:`nnls_rows`: ``min ||A c - 1||`` with ``c >= 0`` for a stack of small ``A``, by
  trying every support: the least-squares solution on a support that is feasible and has
  the smallest residual is the non-negative least-squares solution.

>>> import numpy as np
>>> n = np.array([1.0, 2, 4, 8])
>>> y = np.log(100 * n / (1 + 0.05 * (n - 1) + 0.002 * n * (n - 1)))
>>> params, rss = fit_log_usl(n, y[None, :])
>>> np.round(params[0], 6).tolist()
[100.0, 0.05, 0.002]
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from labkit.common.errors import ParameterError

SIGMA_MAX = 1.0


def _log_d(n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``log(1 + σ(N-1) + κN(N-1))`` for each row ``(σ, κ)`` of ``p``: shape (rows, points)."""
    return np.log1p(p[:, :1] * (n - 1) + p[:, 1:2] * n * (n - 1))


def _starts(n: np.ndarray, z: np.ndarray, kappa: bool) -> np.ndarray:
    """Starting points for one data set: a linear fit of ``N/X``, and a few fixed ones."""
    # N/X = (1 + σ(N-1) + κN(N-1)) / λ is linear in (1/λ, σ/λ, κ/λ); weights make its errors relative.
    t = np.exp(-z)
    cols = [np.ones_like(n), n - 1, *([n * (n - 1)] if kappa else [])]
    design = np.column_stack(cols) / t[:, None]
    coef = np.linalg.lstsq(design, np.ones_like(n), rcond=None)[0]
    linear = [coef[1] / coef[0], coef[2] / coef[0] if kappa else 0.0] if coef[0] > 0 else [0.05, 0.0]
    k = 1e-3 if kappa else 0.0
    return np.array([linear, [0.0, 0.0], [0.05, k], [0.3, k / 10], [0.9, 0.0]])


def fit_log_usl(
    workers: np.ndarray,
    log_x: np.ndarray,
    start: np.ndarray | None = None,
    *,
    kappa: bool = True,
    bounded: bool = True,
    iterations: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the USL (or Amdahl, ``kappa=False``) to each row of ``log_x``, in log space.

    Parameters
    ----------
    workers : ndarray, shape (points,)
        The worker count of each column.
    log_x : ndarray, shape (sets, points)
        Log throughputs, one data set per row.
    start : ndarray, shape (2,) or (sets, 2), optional
        ``(σ, κ)`` to start from (a bootstrap starts from the estimate). Without it, a
        single data set is fitted from several starting points and the best fit kept.
    kappa : bool, default True
        False fits Amdahl's law (``κ = 0``).
    bounded : bool, default True
        False lifts the bounds on σ and κ (keeping ``1 + σ(N-1) + κN(N-1) > 0`` at the
        counts measured): the unconstrained least-squares fit.
    iterations : int, default 200
        Most Levenberg–Marquardt steps.

    Returns
    -------
    params : ndarray, shape (sets, 3)
        ``λ, σ, κ`` of each data set.
    rss : ndarray, shape (sets,)
        The residual sum of squares (log space).
    """
    n = np.asarray(workers, float)
    z = np.atleast_2d(np.asarray(log_x, float)) - np.log(n)
    if start is None:
        if z.shape[0] != 1:
            raise ParameterError("start", None, "a start (σ, κ) when fitting several data sets at once")
        starts = _starts(n, z[0], kappa)
        p, rss = _lm(n, np.repeat(z, len(starts), axis=0), starts, kappa, bounded, iterations)
        best = int(np.argmin(rss))
        p, rss = p[best : best + 1], rss[best : best + 1]
    else:
        p, rss = _lm(n, z, np.broadcast_to(np.asarray(start, float), (z.shape[0], 2)), kappa, bounded, iterations)
    log_lambda = (z + _log_d(n, p)).mean(axis=1)
    with np.errstate(over="ignore"):  # a refit to an extreme bootstrap draw may put λ past 1e308
        return np.column_stack([np.exp(log_lambda), p]), rss


def _lm(
    n: np.ndarray, z: np.ndarray, start: np.ndarray, kappa: bool, bounded: bool, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt on ``(σ, κ)`` for every row of ``z`` (log throughput over workers)."""
    g_sigma, g_kappa = n - 1, n * (n - 1)
    lo, hi = (0.0, SIGMA_MAX) if bounded else (-np.inf, np.inf)

    def residuals(sigma: np.ndarray, kap: np.ndarray, zz: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            w = zz + np.log1p(sigma[:, None] * g_sigma + kap[:, None] * g_kappa)
        w = w - w.mean(axis=1, keepdims=True)  # log λ at its exact least-squares value
        # A step to where 1 + σ(N-1) + κN(N-1) <= 0 at a measured count is never taken.
        return np.where(np.isfinite(w).all(axis=1, keepdims=True), w, np.inf)

    start = np.clip(start, [lo, lo], [hi, np.inf])
    out = np.column_stack([start[:, 0], start[:, 1] if kappa else np.zeros(len(z))])
    rss_out = np.empty(len(z))
    rows = np.arange(len(z))
    sigma, kap, zz = out[:, 0].copy(), out[:, 1].copy(), z
    r = residuals(sigma, kap, zz)
    rss = (r**2).sum(axis=1)
    mu = np.full(len(z), 1e-3)
    for _ in range(iterations):
        d = 1 + sigma[:, None] * g_sigma + kap[:, None] * g_kappa
        j0, j1 = g_sigma / d, g_kappa / d
        j0 -= j0.mean(axis=1, keepdims=True)
        j1 -= j1.mean(axis=1, keepdims=True)
        grad0, grad1 = (j0 * r).sum(axis=1), (j1 * r).sum(axis=1)
        # A parameter at its bound, pushed outward by the gradient, stays there this step.
        held0 = ((sigma <= lo) & (grad0 > 0)) | ((sigma >= hi) & (grad0 < 0))
        held1 = np.full_like(held0, not kappa) | ((kap <= lo) & (grad1 > 0))
        a00 = np.where(held0, 1.0, (j0 * j0).sum(axis=1) * (1 + mu))
        a11 = np.where(held1, 1.0, (j1 * j1).sum(axis=1) * (1 + mu))
        a01 = np.where(held0 | held1, 0.0, (j0 * j1).sum(axis=1))
        r0, r1 = np.where(held0, 0.0, -grad0), np.where(held1, 0.0, -grad1)
        det = a00 * a11 - a01 * a01
        det = np.where(np.abs(det) > 1e-300, det, np.inf)
        new_sigma = np.clip(sigma + (a11 * r0 - a01 * r1) / det, lo, hi)
        new_kap = np.clip(kap + (a00 * r1 - a01 * r0) / det, lo, np.inf) if kappa else kap
        r_new = residuals(new_sigma, new_kap, zz)
        rss_new = (r_new**2).sum(axis=1)
        better = rss_new <= rss
        settled = better & (rss - rss_new <= 1e-13 * rss + 1e-30)
        sigma, kap = np.where(better, new_sigma, sigma), np.where(better, new_kap, kap)
        r = np.where(better[:, None], r_new, r)
        rss = np.where(better, rss_new, rss)
        mu = np.where(better, mu / 3, mu * 4)
        out[rows, 0], out[rows, 1], rss_out[rows] = sigma, kap, rss
        done = settled | (mu > 1e12)
        if done.all():
            break
        keep = ~done
        rows, sigma, kap, r, rss, mu, zz = rows[keep], sigma[keep], kap[keep], r[keep], rss[keep], mu[keep], zz[keep]
    return out, rss_out


def nnls_rows(a: np.ndarray) -> np.ndarray:
    """Non-negative ``c`` minimising ``||A c - 1||`` for each ``A`` of a stack.

    Parameters
    ----------
    a : ndarray, shape (sets, points, k)

    Returns
    -------
    ndarray, shape (sets, k)

    >>> a = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    >>> nnls_rows(a).round(6).tolist()
    [[0.666667, 0.666667]]
    """
    sets, _, k = a.shape
    ones = np.ones(a.shape[1])
    best, best_rss = np.zeros((sets, k)), np.full(sets, float(a.shape[1]))  # c = 0 is always feasible
    for size in range(1, k + 1):
        for support in combinations(range(k), size):
            cols = a[:, :, list(support)]
            coef = np.einsum("bij,j->bi", np.linalg.pinv(cols), ones)
            rss = ((np.einsum("bmj,bj->bm", cols, coef) - 1) ** 2).sum(axis=1)
            ok = (coef >= 0).all(axis=1) & (rss < best_rss)
            full = np.zeros((sets, k))
            full[:, list(support)] = coef
            best = np.where(ok[:, None], full, best)
            best_rss = np.where(ok, rss, best_rss)
    return best
