"""The cost of a run split three ways: ``T = a + b·tasks + bytes/bandwidth``.

A fixed cost per run, a cost per task and a cost per byte, fitted with non-negative least
squares on relative errors to runs of different task counts and data sizes, each with an
interval from the residual bootstrap of :mod:`.intervals` (every run's residual is
resampled, one run per point is enough). A cost is called resolved only where its interval
excludes 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit import workloads
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_rate

from .frames import pick_configuration, varying
from .intervals import CONFIDENCE, N_BOOT, band, check_options, direction, fit_note, interval, residual_draws
from .models import show_apart
from .solve import nnls_rows

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class OverheadFit:
    """``T = a + b·tasks + bytes/bandwidth`` fitted to wall times.

    ``fixed_s`` is ``a`` (cost of any run), ``per_task_s`` is ``b``, ``bandwidth`` the
    bytes per second of the data term (inf when no cost per byte was measured).
    ``break_even_bytes = b × bandwidth``: below this many bytes per task, the per-task
    overhead costs more than moving the task's data. Its interval is NaN where some refits
    leave it undefined (no cost per task and none per byte: 0 × ∞), and ``break_even_note``
    says why; such a refit is never counted as a break-even of 0.
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
    note: str = ""
    break_even_note: str = ""

    def predict(
        self, tasks: np.ndarray | float, nbytes: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Wall time of a run of ``tasks`` tasks over ``nbytes`` bytes: ``(mid, lo, hi)``."""
        t, b = np.broadcast_arrays(np.atleast_1d(np.asarray(tasks, float)), np.atleast_1d(np.asarray(nbytes, float)))
        design = np.column_stack([np.ones_like(t), t, b])
        inv_bw = 0.0 if not np.isfinite(self.bandwidth) else 1 / self.bandwidth
        mid = design @ np.array([self.fixed_s, self.per_task_s, inv_bw])
        return band(mid, self.samples @ design.T, self.confidence)

    def describe(self) -> str:
        """The three costs in words, with intervals; a cost is called resolved only when its
        interval excludes 0, and the break-even chunk size is given only when both are."""

        where = f" ({self.config})" if self.config else ""
        text = (
            f"Overhead model over {self.points} points{where}: each run costs "
            f"{show_apart(self.fixed_s, *self.fixed_s_ci, scale=1e3, suffix=' ms')} fixed and "
            f"{show_apart(self.per_task_s, *self.per_task_s_ci, scale=1e6, suffix=' µs')} per task"
        )
        if self.note:
            return text + f". Intervals not available: {self.note}; no cost is called resolved."
        per_task = direction(*self.per_task_s_ci, null=0.0) == "up"
        lo, hi = self.bandwidth_ci
        per_byte = math.isfinite(hi)  # the slowest bandwidth bound is finite: the cost per byte excludes 0
        if not per_task:
            text += " (not resolved: its interval includes 0)"
        if not per_byte:
            text += (
                "; no cost per byte was resolved (its interval includes 0): at these sizes the data's own time "
                "is too small to separate from the other costs"
            )
            return text + "."
        ends = (format_rate(lo, "bytes"), format_rate(hi, "bytes"))
        rate = f"{format_rate(self.bandwidth, 'bytes')} ({ends[0]}–{ends[1]})"
        if ends[0] == ends[1]:  # never an interval that reads as zero width
            rate = show_apart(self.bandwidth / 1e9, lo / 1e9, hi / 1e9, suffix=" GB/s")
        text += f", and moves data at {rate}."
        if per_task:
            text += (
                " Per-task overhead outweighs the data's own time for tasks smaller than "
                f"{show_apart(self.break_even_bytes, *self.break_even_bytes_ci, scale=1 / 2**20, suffix=' MiB')}"
                + (f" ({self.break_even_note})." if self.break_even_note else ".")
            )
        else:
            text += " Whether per-task overhead or the data's own time dominates small tasks is not resolved."
        return text


def _overhead_from_arrays(
    tasks: np.ndarray | list[float],
    nbytes: np.ndarray | list[float],
    wall_s: np.ndarray | list[float],
    *,
    config: str = "",
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> OverheadFit:
    """Fit ``T = a + b·tasks + bytes/bandwidth`` (all terms >= 0) to trials' wall times.

    Non-negative least squares on relative errors (:func:`.solve.nnls_rows`); intervals
    from a residual bootstrap (:mod:`.intervals`), not available with only 3 runs. Tasks
    and bytes must vary independently (at least 3 points not on one line).

    >>> t = np.array([10, 100, 1000, 10, 100, 1000])
    >>> b = np.array([1e8, 1e8, 1e8, 4e8, 4e8, 4e8])
    >>> fit = _overhead_from_arrays(t, b, 0.01 + 2e-4 * t + b / 2e9)
    >>> round(fit.fixed_s, 4), round(fit.per_task_s * 1e6), round(fit.bandwidth / 1e9, 2)
    (0.01, 200, 2.0)
    """
    t, b, w = _checked_arrays(tasks, nbytes, wall_s)
    check_options(confidence, n_boot)
    design = np.column_stack([np.ones_like(t), t, b / 1e9])  # bytes in GB keeps columns comparable
    points = np.unique(design, axis=0)
    if points.shape[0] < 3 or np.linalg.matrix_rank(points) < 3:
        raise ParameterError(
            "tasks/bytes",
            f"{points.shape[0]} distinct (tasks, bytes) points",
            "tasks and bytes varied independently: at least 3 points, not all with the same bytes or the same tasks per byte",
        )
    est, samples, note = _fit_with_draws(design, w, n_boot, seed)
    a, per_task, per_byte = (float(v) for v in (est[0], est[1], est[2] / 1e9))
    bw_samples = np.where(samples[:, 2] > 0, 1 / np.maximum(samples[:, 2], 1e-300), np.inf)
    bw = 1 / per_byte if per_byte > 0 else float("inf")
    with np.errstate(invalid="ignore"):
        even = samples[:, 1] * bw_samples
    undefined = int(np.isnan(even).sum())
    even_note = (
        f"interval not available: in {undefined} of {even.size} bootstrap refits both the cost per task and "
        "the cost per byte came out 0, which leaves the break-even undefined (0 × ∞)"
        if undefined
        else ""
    )
    return OverheadFit(
        fixed_s=a,
        per_task_s=per_task,
        bandwidth=bw,
        fixed_s_ci=interval(samples[:, 0], a, confidence),
        per_task_s_ci=interval(samples[:, 1], per_task, confidence),
        bandwidth_ci=interval(bw_samples, bw, confidence),
        break_even_bytes=per_task * bw,
        break_even_bytes_ci=(math.nan, math.nan) if undefined else interval(even, per_task * bw, confidence),
        break_even_note=even_note,
        points=int(points.shape[0]),
        confidence=confidence,
        config=config,
        samples=samples,
        note=note,
    )


def _checked_arrays(
    tasks: np.ndarray | list[float], nbytes: np.ndarray | list[float], wall_s: np.ndarray | list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tasks, bytes and wall times as float arrays, once checked: 1-d, of one length, finite, and
    wall times and tasks > 0 (a ParameterError naming the first that is not, otherwise)."""
    t, b, w = (np.asarray(v, float) for v in (tasks, nbytes, wall_s))
    if not (t.shape == b.shape == w.shape) or t.ndim != 1:
        raise ParameterError("tasks/bytes/wall_s", (t.shape, b.shape, w.shape), "three 1-d arrays of one length")
    for name, v, low in (("wall_s", w, 0.0), ("tasks", t, 0.0), ("bytes", b, -1.0)):
        if np.any(~np.isfinite(v)) or np.any(v <= low):
            raise ParameterError(
                name, v[~np.isfinite(v) | (v <= low)][:3].tolist(), f"finite values > {max(low, 0):g} for every trial"
            )
    return t, b, w


def _fit_with_draws(design: np.ndarray, w: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The bounded fit of ``w`` on ``design``, ``n_boot`` refits to bootstrap draws (in seconds per
    byte, none when :func:`.intervals.fit_note` says why not), and that note."""

    def fit(walls: np.ndarray) -> np.ndarray:
        """Bounded least squares on relative errors, for each row of ``walls``."""
        coef = nnls_rows(design[None, :, :] / walls[:, :, None])
        # A term at its bound can come back as 1e-20 or so: zero, when it adds nothing
        # measurable to any run (it would otherwise read as a bandwidth of 1e20 B/s).
        coef[coef * design.max(axis=0) < 1e-6 * np.median(walls, axis=1, keepdims=True)] = 0.0
        return coef

    est = fit(w[None, :])[0]
    # Refits are made to data drawn around the unconstrained fit (see :mod:`.intervals`),
    # where it predicts positive times, and are constrained as the estimate is.
    free = np.linalg.lstsq(design / w[:, None], np.ones_like(w), rcond=None)[0]
    fitted = design @ free if np.all(design @ free > 0) else design @ est
    residuals = np.log(w / fitted)
    note = fit_note(w.size, 3, residuals)
    samples = np.empty((0, 3))
    if not note:
        noise = residual_draws(residuals, 3, n_boot, np.random.default_rng(seed))
        samples = fit(fitted[None, :] * np.exp(noise))
    samples[:, 2] /= 1e9  # back to seconds per byte
    return est, samples, note


def task_counts(frame: pd.DataFrame) -> pd.Series:
    """Tasks one run of each trial's point submits (for :func:`fit_overhead`), from the
    workload's ``tasks(params, workers)`` method."""
    import pandas as pd

    def one(point: str, workers: int) -> int:
        params = json.loads(point)
        name = params.pop("workload")
        params.pop("workers", None)
        wl = workloads.get(name)
        if hasattr(wl, "tasks"):
            return int(wl.tasks(params, int(workers)))
        raise DataError(
            f"trials of workload {name!r}", "needs a 'tasks' column, or a workload with a tasks(params, workers) method"
        )

    return pd.Series(
        [one(p, w) for p, w in zip(frame["point"], frame["workers"])], index=frame.index, name="tasks", dtype=float
    )


def fit_overhead(
    frame: pd.DataFrame,
    *,
    tasks: str = "tasks",
    nbytes: str = "bytes",
    where: dict[str, Any] | None = None,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> OverheadFit:
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
        raise ParameterError(
            "nbytes", nbytes, f"a column of bytes per run (trials are counted in {sorted(set(ok['unit']))}, not bytes)"
        )
    return _overhead_from_arrays(
        t.to_numpy(float),
        b.to_numpy(float),
        ok["wall_s"].to_numpy(float),
        config=label,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
    )
