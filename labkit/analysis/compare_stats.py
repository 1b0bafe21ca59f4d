"""The statistics of a comparison's points: the family a flag is corrected over, the rank test's reach, each verdict.

:func:`compare_samples` judges matched repeats, point by point, as one family of tests.
Only points that *can* be flagged are in the family: those with at least :data:`FLAG_RUNS`
runs on both sides (enough for the rank test and for an interval). A point with fewer is
still shown, tested where it has :data:`MIN_RUNS`, but its p-value is not corrected and it
does not widen the others' intervals. :mod:`labkit.analysis.compare` matches trials and
re-exports these names.

>>> out = compare_samples({"few": ([1.0, 1.1, 1.2], [1.5, 1.6, 1.7]), "p": ([1.0] * 3 + [1.1] * 3, [1.3] * 3 + [1.4] * 3)})
>>> out["family"].tolist(), float(out.loc["p", "confidence"])
([False, True], 0.95)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError, ParameterTypeError

from .intervals import MIN_REPEATS, equivalence_band, ratio_estimate

if TYPE_CHECKING:
    import pandas as pd

MIN_RUNS = 3
"""Fewest runs on each side of a point for it to be tested at all."""
ALPHA = 0.05
"""Family-wise error rate over the points of one comparison."""
MARGIN = 0.05
"""Default margin of practical equivalence: changes within ±5% are not flagged."""
FLAG_RUNS = max(MIN_RUNS, MIN_REPEATS)
"""Fewest runs on each side for a point to be flaggable (a test and an interval): the family's members."""
NO_DIRECTION = "no direction claimed"
"""The verdict of a point whose trials, once those under outside load are left out, are too few."""
VERDICTS = ("slower", "faster", "same within margin", "no change detected", "not enough runs", NO_DIRECTION)
COLUMNS = ["n_a", "n_b", "median_a", "median_b", "ratio", "lo", "hi", "p", "p_adj", "verdict", "note", "family"]


def check_options(alpha: float, margin: float) -> None:
    """Refuse an ``alpha`` outside (0, 0.5] or a ``margin`` outside [0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 0.5:
        raise ParameterError("alpha", alpha, "a false-alarm rate in (0, 0.5], e.g. 0.05")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise ParameterError("margin", margin, "a fraction in [0, 1), e.g. 0.05 (changes within ±5% are not flagged)")


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, float)
    m, order = p.size, np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


@lru_cache(maxsize=512)
def best_p(n_a: int, n_b: int) -> float:
    """The smallest p-value the two-sided rank test can give with ``n_a`` and ``n_b`` runs
    (the two sides completely apart).

    >>> round(best_p(3, 3), 3), round(best_p(5, 5), 4)
    (0.1, 0.0079)
    """
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(np.arange(n_b) + n_a, np.arange(n_a), alternative="two-sided").pvalue)


def runs_to_reject(level: float, start: int = MIN_RUNS) -> int:
    """Fewest runs a side (the same on both) with which the rank test can reject at ``level``.

    >>> runs_to_reject(0.05), runs_to_reject(0.05 / 8)
    (4, 6)
    """
    n = start
    while best_p(n, n) >= level and n < 1000:
        n += 1
    return n


def _samples(name: str, values: Any) -> np.ndarray:
    x = np.asarray(values, float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ParameterError(name, x[:5].tolist(), "at least one finite time > 0 (seconds)")
    return x


def band(margin: float) -> str:
    return f"±{margin:.0%}" if margin else "no change"


def _verdict(r: Any, p_adj: float, alpha: float, margin: float, m: int, n: tuple[int, int]) -> tuple[str, str]:
    """The verdict of one tested point and the note that goes with it."""
    down, up = equivalence_band(margin)
    rejects = p_adj < alpha
    if math.isnan(r.lo):
        why = r.note or "interval not available"
        return "no change detected", f"{why}; a change is flagged only when its interval shows it"
    if rejects and r.lo > up:
        return "slower", ""
    if rejects and r.hi < down:
        return "faster", ""
    if margin and r.lo >= down and r.hi <= up:
        return "same within margin", f"the interval lies within {band(margin)}"
    span, level = f"{_pct(r.lo)} to {_pct(r.hi)}", alpha / m
    if best_p(*n) >= level:
        return "no change detected", (
            f"with {n[0]} and {n[1]} runs the rank test's smallest possible p ({best_p(*n):.2g}) is not below "
            f"α/{m} = {level:.2g}; use repeats >= {max(runs_to_reject(level), MIN_REPEATS)}"
        )
    if r.lo <= 1 <= r.hi:
        return (
            "no change detected",
            f"changes of {span} cannot be told from noise with these runs; more repeats narrow it",
        )
    if rejects:
        return (
            "no change detected",
            f"a change of {span} is likely, but not shown beyond {band(margin)}; more repeats narrow it",
        )
    return "no change detected", (
        f"the interval ({span}) excludes no change but the rank test does not reject after correction "
        f"(p = {p_adj:.2g}); more repeats would settle it"
    )


def _pct(ratio: float) -> str:
    change = (ratio - 1) * 100
    return "unbounded" if not math.isfinite(ratio) else f"{change:+.0f}%" if abs(change) >= 1 else f"{change:+.1f}%"


def compare_samples(
    samples: Mapping[str, tuple[Any, Any]],
    *,
    alpha: float = ALPHA,
    margin: float = MARGIN,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare the repeats of A and B at each point, as one family of tests.

    Parameters
    ----------
    samples : mapping of str to (array-like, array-like)
        Point -> (A's wall times, B's wall times), in seconds.
    alpha : float, default 0.05
        Family-wise false-alarm rate over the points that can be flagged (at least
        :data:`FLAG_RUNS` runs on both sides; Holm; intervals at ``1 - alpha/m``).
    margin : float, default 0.05
        Margin of practical equivalence: a change is flagged only when its interval lies
        wholly beyond ``1 + margin`` (or below ``1 / (1 + margin)``). 0 flags any change the
        test and interval show.
    seed : int, default 0
        Seed of the bootstrap (point ``i`` uses ``seed + i``).

    Returns
    -------
    pandas.DataFrame
        Indexed by point: ``n_a``, ``n_b``, ``median_a``, ``median_b`` (s), ``ratio``
        (``median_b / median_a``), ``lo``/``hi`` (its interval at ``confidence``; NaN where
        not available), ``p`` (rank test), ``p_adj`` (Holm; NaN outside the family), ``verdict`` (one of
        :data:`VERDICTS`), ``note`` (why, and what would resolve it), ``family`` (in the
        corrected family: it can be flagged), ``confidence``.
    """
    import pandas as pd
    from scipy.stats import mannwhitneyu

    check_options(alpha, margin)
    if not isinstance(samples, Mapping) or not samples:
        raise ParameterTypeError("samples", samples, "a non-empty mapping of point -> (A's times, B's times)")
    data = {k: (_samples(f"samples[{k!r}][0]", a), _samples(f"samples[{k!r}][1]", b)) for k, (a, b) in samples.items()}
    tested = [k for k, (a, b) in data.items() if min(a.size, b.size) >= MIN_RUNS]
    family = [k for k in tested if min(data[k][0].size, data[k][1].size) >= FLAG_RUNS]
    m = max(len(family), 1)
    confidence = 1 - alpha / m
    p = {k: float(mannwhitneyu(data[k][1], data[k][0], alternative="two-sided").pvalue) for k in tested}
    p = {k: 1.0 if math.isnan(v) else v for k, v in p.items()}  # no variation at all: nothing to reject
    p_adj = dict(zip(family, holm([p[k] for k in family]).tolist()))  # the rest cannot be flagged
    n_boot = int(min(20_000, max(2_000, math.ceil(25 / ((1 - confidence) / 2)))))
    rows = []
    for i, (key, (a, b)) in enumerate(data.items()):
        ratio = float(np.median(b) / np.median(a))
        row = {"n_a": a.size, "n_b": b.size, "median_a": float(np.median(a)), "median_b": float(np.median(b))}
        if key not in p:
            fewest = "one run" if min(a.size, b.size) == 1 else f"{min(a.size, b.size)} runs"
            note = (
                f"{fewest} on a side: a change is never judged on fewer than {MIN_RUNS}; use repeats >= {MIN_REPEATS}"
            )
            nan = {"lo": math.nan, "hi": math.nan, "p": math.nan, "p_adj": math.nan}
            rows.append({**row, "ratio": ratio, **nan, "verdict": "not enough runs", "note": note, "family": False})
            continue
        r = ratio_estimate(b, a, n_boot=n_boot, confidence=confidence, seed=seed + i)
        verdict, note = _verdict(r, p_adj.get(key, math.nan), alpha, margin, m, (a.size, b.size))
        tested_row = {"ratio": r.value, "lo": r.lo, "hi": r.hi, "p": p[key], "p_adj": p_adj.get(key, math.nan)}
        rows.append({**row, **tested_row, "verdict": verdict, "note": note, "family": key in p_adj})
    out = pd.DataFrame(rows, index=pd.Index(list(data), name="point"), columns=COLUMNS)
    out["confidence"] = confidence
    return out
