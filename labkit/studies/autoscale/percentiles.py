"""Latency percentiles of pooled tasks, and their ratios, with bootstrap intervals over independent units.

A unit (a wave or a whole run, see :func:`~labkit.studies.autoscale.analysis.units_table`)
is resampled whole, never its single tasks, whose latencies within a wave queue behind one
another.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.analysis import intervals as iv


def _pooled(blocks: list[np.ndarray], q: float) -> Any:
    """A bootstrap statistic: the ``q``-th percentile of the tasks of the resampled blocks (indices)."""
    matrix = np.full((len(blocks), max(b.size for b in blocks)), np.nan)
    for i, b in enumerate(blocks):
        matrix[i, : b.size] = b
    percentile = np.nanpercentile if np.isnan(matrix).any() else np.percentile  # unequal blocks: padded

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.asarray(idx).astype(int)
        return percentile(matrix[idx].reshape(*idx.shape[:-1], -1), q, axis=-1)

    return statistic


def _too_few(n: int, unit: str) -> str:
    return f"interval not available: {n} independent {unit}{'s' * (n != 1)}; more waves or repeats (>= {iv.MIN_REPEATS}) give one"


def percentile_estimate(blocks: list[np.ndarray], q: float, unit: str = "wave", seed: int = 0) -> iv.Estimate:
    """The ``q``-th percentile of the pooled latencies and its bootstrap interval over blocks.

    Parameters
    ----------
    blocks : list of arrays
        Latencies, one array per independent unit (a wave or a run).
    q : float
        Percentile, 0–100.
    unit : str
        What a block is, for the note.
    seed : int

    Returns
    -------
    iv.Estimate
        NaN bounds, and why, with fewer than :data:`~labkit.analysis.intervals.MIN_REPEATS` blocks.

    >>> percentile_estimate([np.array([1.0, 2.0])] * 3, 50).note
    'interval not available: 3 independent waves; more waves or repeats (>= 5) give one'
    """
    value = float(np.percentile(np.concatenate(blocks), q))
    if len(blocks) < iv.MIN_REPEATS:
        return iv.Estimate(value, math.nan, math.nan, _too_few(len(blocks), unit))
    return iv._bootstrap((np.arange(len(blocks)),), _pooled(blocks, q), iv.CONFIDENCE, iv.N_RESAMPLES, seed)


def percentile_ratio(a: list[np.ndarray], b: list[np.ndarray], q: float, units: tuple[str, str]) -> iv.Estimate:
    """Ratio of the ``q``-th latency percentiles of ``a`` and ``b``, bootstrapped over each side's blocks."""
    pa, pb = _pooled(a, q), _pooled(b, q)
    value = float(np.percentile(np.concatenate(a), q) / np.percentile(np.concatenate(b), q))
    few = [(len(x), u) for x, u in zip((a, b), units) if len(x) < iv.MIN_REPEATS]
    if few:
        return iv.Estimate(value, math.nan, math.nan, _too_few(*min(few)))

    def ratio(ia: np.ndarray, ib: np.ndarray, axis: int = -1) -> np.ndarray:
        return pa(ia) / pb(ib)

    return iv._bootstrap((np.arange(len(a)), np.arange(len(b))), ratio, iv.CONFIDENCE, iv.N_RESAMPLES, 0)
