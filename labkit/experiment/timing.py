"""How many runs make a trustworthy time: adaptive repeats, warm-up detection, a time budget.

>>> policy = Repeats.parse("auto")
>>> policy.enough([1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00, 1.01])
True
>>> policy.enough([1.0, 1.6, 0.7])
False

A fixed count (``repeats=5``) times exactly that many runs. ``repeats="auto"`` keeps
timing until the 95% confidence interval of the median is within ``target`` of it
(±3% by default), or ``maximum`` runs. The interval is the distribution-free one from
order statistics (binomial ranks), so one-sided spikes of a shared machine do not drag it
the way they drag a mean. A :class:`Budget` bounds the time adaptive repeats may take.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError, ParameterTypeError

CONFIDENCE = 0.95


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Median and its distribution-free confidence interval ``(median, lo, hi)``.

    The bounds are the order statistics whose ranks the binomial(n, ½) distribution
    gives; with too few values for the asked confidence (fewer than 6 at 95%) the bounds
    are the sample's min and max, which under-cover: callers check :func:`ci_available`.
    """
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ParameterError("values", list(values)[:5], "at least one finite time")
    med = float(np.median(x))
    n = x.size
    alpha = 1 - confidence
    # largest k with P(B <= k-1) <= alpha/2: [x_(k), x_(n-k+1)] covers the median
    k = int(binom.ppf(alpha / 2, n, 0.5))
    if k < 1:
        return med, float(x[0]), float(x[-1])
    return med, float(x[k - 1]), float(x[n - k])


def ci_available(n: int, confidence: float = CONFIDENCE) -> bool:
    """Whether ``n`` values give a median interval at ``confidence`` (n >= 6 at 95%)."""
    from scipy.stats import binom

    return n > 0 and int(binom.ppf((1 - confidence) / 2, n, 0.5)) >= 1


def spread(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Summary of repeated times: median, CI half-width relative to it, IQR relative, n."""
    med, lo, hi = median_ci(values, confidence)
    q1, q3 = np.quantile(np.asarray(values, float), [0.25, 0.75])
    return {
        "n": len(values),
        "median": med,
        "ci_lo": lo,
        "ci_hi": hi,
        "ci_rel": (hi - lo) / 2 / med if med > 0 and ci_available(len(values), confidence) else None,
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
            if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 6:
                raise ParameterError("max_repeats", maximum, "an integer >= 6 (a 95% median interval needs 6 runs)")
            return cls(minimum=6, maximum=maximum, target=float(target))
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
        if not self.adaptive or n < self.minimum or not ci_available(n, self.confidence):
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
