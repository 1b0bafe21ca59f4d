"""How many runs make a trustworthy time: adaptive repeats, warm-up detection, a time budget.

>>> policy = Repeats.parse("auto")
>>> policy.enough([1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00, 1.01])
True
>>> policy.enough([1.0, 1.6, 0.7])
False

A fixed count (``repeats=5``) times exactly that many runs. ``repeats="auto"`` keeps
timing until the 95% interval of the median is within ``target`` of it (±3% by default),
or ``maximum`` runs. The interval is labkit's one median interval,
:func:`labkit.analysis.intervals.median_estimate` (BCa bootstrap, from 5 runs on), the same
the analysis reports; a median, unlike a mean, is not dragged by the one-sided spikes of a
shared machine. A :class:`Budget` bounds the time adaptive repeats may take.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.analysis.intervals import CONFIDENCE, MIN_REPEATS, median_estimate
from labkit.common.errors import ParameterError, ParameterTypeError


def ci_available(n: int) -> bool:
    """Whether ``n`` runs give a median interval (:data:`~labkit.analysis.intervals.MIN_REPEATS` or more)."""
    return n >= MIN_REPEATS


def spread(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Summary of repeated times: median, its interval (:func:`~labkit.analysis.intervals.median_estimate`,
    NaN with fewer than 5 runs or repeats that do not vary), the interval's half-width relative
    to the median, the IQR relative to it, and n."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ParameterError("values", list(values)[:5], "at least one finite time")
    med, lo, hi = float(np.median(x)), math.nan, math.nan
    if x.size >= MIN_REPEATS and np.all(x > 0):
        _, lo, hi, _ = median_estimate(x, confidence=confidence)
    q1, q3 = np.quantile(x, [0.25, 0.75])
    return {
        "n": len(values),
        "median": med,
        "ci_lo": lo,
        "ci_hi": hi,
        "ci_rel": (hi - lo) / 2 / med if med > 0 and math.isfinite(lo) and math.isfinite(hi) else None,
        "iqr_rel": float((q3 - q1) / med) if med > 0 else None,
    }


@dataclass(frozen=True)
class Repeats:
    """How many timed runs a grid point gets.

    ``Repeats(5, 5)`` is a fixed count; ``Repeats(minimum, maximum, target)`` stops as soon
    as the median's interval is within ``target`` (relative) after at least ``minimum`` runs.
    """

    minimum: int
    maximum: int
    target: float | None = None
    confidence: float = CONFIDENCE

    @classmethod
    def parse(cls, value: Any, *, target: float = 0.03, maximum: int = 30) -> Repeats:
        """``5`` -> fixed; ``"auto"`` -> adaptive to ±``target`` with at most ``maximum`` runs."""
        if value == "auto":
            if not (isinstance(target, (int, float)) and 0 < target < 1):
                raise ParameterError("ci_target", target, "a relative half-width between 0 and 1, e.g. 0.03")
            if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < MIN_REPEATS:
                raise ParameterError(
                    "max_repeats",
                    maximum,
                    f"an integer >= {MIN_REPEATS} (a median's interval needs {MIN_REPEATS} runs)",
                )
            return cls(minimum=MIN_REPEATS, maximum=maximum, target=float(target))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterTypeError("repeats", value, "int or 'auto'")
        if value < 1:
            raise ParameterError("repeats", value, "an integer >= 1, or 'auto'")
        return cls(minimum=value, maximum=value)

    @property
    def adaptive(self) -> bool:
        return self.target is not None

    def enough(self, times: Sequence[float]) -> bool:
        """Whether the runs so far suffice."""
        n = len(times)
        if n >= self.maximum:
            return True
        if not self.adaptive or n < self.minimum or not ci_available(n):
            return False
        rel = spread(times, self.confidence)["ci_rel"]
        return rel is not None and rel <= self.target


@dataclass(frozen=True)
class Warmup:
    """Untimed runs before the timed ones: a fixed count, or ``"auto"``.

    ``"auto"`` runs at least ``minimum`` and at most ``maximum`` warm-up runs and stops once
    the last two agree within ``tolerance``: first-run effects (imports on the workers,
    JIT compilation, CUDA context creation, caches, memory allocation) show up as a first
    run well above the next.
    """

    minimum: int
    maximum: int
    tolerance: float | None = None

    @classmethod
    def parse(cls, value: Any, *, tolerance: float = 0.10, maximum: int = 5) -> Warmup:
        if value == "auto":
            return cls(minimum=2, maximum=maximum, tolerance=tolerance)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterTypeError("warmup", value, "int or 'auto'")
        if value < 0:
            raise ParameterError("warmup", value, "an integer >= 0, or 'auto'")
        return cls(minimum=value, maximum=value)

    def run(self, once: Callable[[], float]) -> list[float]:
        """Call ``once`` (which returns its duration) until warm; return the durations."""
        times: list[float] = []
        while len(times) < self.maximum:
            times.append(once())
            if len(times) >= self.minimum and self._settled(times):
                break
        return times

    def _settled(self, times: list[float]) -> bool:
        if self.tolerance is None:
            return True
        a, b = times[-2], times[-1]
        return math.isfinite(a) and abs(a - b) <= self.tolerance * max(b, 1e-12)


def check_seconds(name: str, value: Any) -> None:
    """Refuse anything but None or a finite number of seconds > 0 (and within what a thread may wait)."""
    import threading

    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= threading.TIMEOUT_MAX
    ):
        raise ParameterError(name, value, f"None or a number of seconds > 0 and <= {threading.TIMEOUT_MAX:g}")


class Budget:
    """A sweep's time budget, shared by the adaptive repeats of all its points.

    Counted from the start of the sweep (setups, warm-ups and scaling included). Once it is
    spent, no point gets timed runs beyond its policy's minimum: the round under way
    finishes, points below their minimum still reach it, and the points that stopped
    short of their interval target are named in the results.

    >>> Budget(None).spent()
    False
    >>> Budget(1e-9).spent()
    True
    """

    def __init__(self, seconds: float | None) -> None:
        check_seconds("budget_s", seconds)
        self.seconds = None if seconds is None else float(seconds)
        self.started = time.monotonic()
        self.spent_after: float | None = None  # seconds into the sweep when it ran out

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> bool:
        if self.seconds is None:
            return False
        if self.spent_after is None and (e := self.elapsed()) >= self.seconds:
            self.spent_after = e
        return self.spent_after is not None


@dataclass(frozen=True)
class BudgetReport:
    """How a sweep's time budget went: when it ran out, and the points it cut short."""

    seconds: float | None
    spent_after: float | None
    elapsed: float
    cut: list[str] = field(default_factory=list)  # point keys stopped short of their interval target
    target: float | None = None
