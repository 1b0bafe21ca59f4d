"""Calibration that can fail: a known curve fitted first, and checked for being recovered *and* precise.

The ``synthetic`` workload sleeps so that its time follows a USL with a configured serial
fraction σ and coherency κ. Fitting it on this machine, now, checks the chain (cluster,
timing, fits) against a known answer. The calibration **passes** only when both hold:

- *recovered*: the configured σ and κ each lie inside the fit's 95% interval; and
- *precise*: σ's 95% interval is at most :data:`MAX_SIGMA_WIDTH` = 0.05 wide (σ known to
  about ±0.025), and the trials scatter about the fitted curve by at most
  :data:`MAX_SCATTER` = 5% (the standard deviation of the log residuals).

Recovery alone is no check: a noisier fit has a wider interval, more likely to hold the
configured values, so it would pass more often the noisier the machine. With the precision
rule, over 20 seeds of simulated data (the USL with σ = 0.1, κ = 0.002; 5 repeats at 1, 2,
4, 8 workers; lognormal noise) it passes 17 at 1% noise and none at 30%
(``tests/test_calibration.py``).

What a pass means: the analysis recovered a known curve at this noise level, with σ's
interval at most 0.05 wide. What it does not mean: it does not vouch for other workloads,
whose noise and shape are their own; their intervals say how well each is known. A failure
flags every sentence drawn after it (:meth:`Calibration.qualify`).

Sleeping tasks do not compete for cores, so they cannot see CPU contention. A second check,
:func:`check_contention`, reads a compute-bound kernel (``matmul`` at a small size) run on
1 and 2 single-thread workers: with free cores 2 workers do about 2× the work of one. It
says whether the runs saw the cores contended, from the trials :func:`~labkit.analysis.trust.admit`
keeps (those under outside load are left out, and said so).

>>> import numpy as np
>>> from labkit.analysis.models import usl_throughput
>>> n = np.repeat([1, 2, 4, 8], 4)
>>> rng = np.random.default_rng(1)
>>> x = usl_throughput(n, 10.0, 0.1, 0.002) * rng.lognormal(0, 0.01, n.size)
>>> cal = calibrate_arrays(n, x, sigma=0.1, kappa=0.002)
>>> cal.recovered, cal.precise, cal.ok
(True, True, True)
>>> cal.qualify("A fit.")
'A fit.'
>>> noisy = usl_throughput(n, 10.0, 0.1, 0.002) * rng.lognormal(0, 0.3, n.size)
>>> calibrate_arrays(n, noisy, sigma=0.1, kappa=0.002).precise
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import LabkitError
from labkit.common.format import format_interval, format_number

if TYPE_CHECKING:
    import pandas as pd

    from .intervals import Estimate
    from .models import USLFit
    from .trust import Admitted

FLAG = "[calibration failed on this machine just now: an estimate, not a finding]"
MAX_SIGMA_WIDTH = 0.05
"""Widest 95% interval of the fitted σ that still counts as a check (absolute: σ is a fraction)."""
MAX_SCATTER = 0.05
"""Largest scatter of the trials about the fitted curve (standard deviation of log residuals)."""
MEANS = (
    "Passing means the analysis recovered a known curve (sleeping tasks) at this noise level, "
    f"with σ's interval at most {format_number(MAX_SIGMA_WIDTH)} wide; it does not vouch for the "
    "fits below, whose workloads have their own noise and shape: their intervals say how well each is known."
)


@dataclass(frozen=True)
class Calibration:
    """The outcome of a calibration: the fit (or why there is none) against the configured σ, κ.

    ``scatter`` is the trials' standard deviation about the fitted curve, in log units;
    ``contention`` the compute-bound check, where one was run.
    """

    sigma: float
    kappa: float
    fit: USLFit | None
    error: str | None = None
    scatter: float = math.nan
    contention: ContentionCheck | None = None

    @property
    def checks(self) -> dict[str, tuple[float, tuple[float, float], bool]]:
        """``{"σ": (fitted, interval, configured value inside it), "κ": ...}``; empty without a fit."""
        if self.fit is None:
            return {}
        return {
            "σ": (self.fit.sigma, self.fit.sigma_ci, _inside(self.sigma, self.fit.sigma_ci)),
            "κ": (self.fit.kappa, self.fit.kappa_ci, _inside(self.kappa, self.fit.kappa_ci)),
        }

    @property
    def recovered(self) -> bool:
        """Whether the configured σ and κ both lie inside the fitted intervals (alone, no check)."""
        checks = self.checks
        return bool(checks) and all(inside for _, _, inside in checks.values())

    @property
    def sigma_width(self) -> float:
        """Width of σ's interval (NaN without a fit or an interval)."""
        if self.fit is None:
            return math.nan
        lo, hi = self.fit.sigma_ci
        return hi - lo

    @property
    def precise(self) -> bool:
        """Whether σ's interval is at most :data:`MAX_SIGMA_WIDTH` wide and the scatter at most :data:`MAX_SCATTER`."""
        return bool(self.sigma_width <= MAX_SIGMA_WIDTH and self.scatter <= MAX_SCATTER)

    @property
    def ok(self) -> bool:
        """The gate: recovered and precise."""
        return self.recovered and self.precise

    def describe(self) -> str:
        """The verdict in words, with the fitted values, what passing means and what it does not."""
        tail = f"\n{self.contention.describe()}" if self.contention is not None else ""
        if self.fit is None:
            return (
                f"Calibration not available: {self.error}. The fits below are estimates that this "
                "machine was not checked for; run the calibration with at least 4 worker counts." + tail
            )
        parts = [
            f"{name} fitted {format_interval(v, *ci)} vs {format_number(true)} configured "
            f"({'inside' if inside else 'outside'} the interval)"
            for (name, (v, ci, inside)), true in zip(self.checks.items(), (self.sigma, self.kappa))
        ]
        parts.append(
            f"σ's interval {format_number(self.sigma_width)} wide (at most {format_number(MAX_SIGMA_WIDTH)} "
            f"allowed); trials scatter {_percent(self.scatter)} about the fit (at most {_percent(MAX_SCATTER)})"
        )
        measured = "; ".join(parts) + "."
        if self.ok:
            return f"Calibration passed: {measured} {MEANS}{tail}"
        return f"Calibration failed: {measured} {self._why()}{tail}"

    def _why(self) -> str:
        reasons = []
        if not self.recovered:
            reasons.append("the configured σ and κ are not both inside the fitted intervals")
        if not self.precise:
            reasons.append("the fit is too imprecise to be a check")
        return (
            f"{' and '.join(reasons).capitalize()}: this machine is too noisy right now (or too loaded) "
            "for the calibration to check the analysis, so the fits below are flagged as estimates. "
            "Rerun on a quieter machine, with more repeats, or with a longer work_s."
        )

    def qualify(self, text: str) -> str:
        """``text`` as it is when the calibration passed; flagged, paragraph by paragraph, when not."""
        if self.ok:
            return text
        return "\n\n".join(f"{FLAG} {p}" for p in text.split("\n\n"))


def _percent(x: float) -> str:
    return "an unknown amount" if not math.isfinite(x) else f"{format_number(100 * x)}%"


def _inside(value: float, ci: tuple[float, float]) -> bool:
    lo, hi = ci
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= value <= hi)


def calibrate_arrays(workers: Any, throughput: Any, *, sigma: float, kappa: float, **fit: Any) -> Calibration:
    """Fit the USL to ``(workers, throughput)`` of a calibration and judge it against ``sigma``, ``kappa``."""
    from .fits import fit_usl
    from .models import usl_throughput

    try:
        result = fit_usl(workers, throughput, **fit)
    except (LabkitError, ValueError) as e:
        return Calibration(sigma, kappa, None, str(e))
    if not hasattr(result, "sigma_ci"):  # a fit that could not be made, with its reason
        return Calibration(sigma, kappa, None, str(getattr(result, "reason", "the fit is not available")))
    n, x = np.asarray(workers, float), np.asarray(throughput, float)
    residuals = np.log(x) - np.log(usl_throughput(n, result.lambda_, result.sigma, result.kappa))
    scatter = float(np.std(residuals, ddof=3)) if n.size > 3 else math.nan
    return Calibration(sigma, kappa, result, scatter=scatter)


def calibrate(
    frame: pd.DataFrame, sigma: float, kappa: float, *, contention: pd.DataFrame | None = None, **fit: Any
) -> Calibration:
    """Judge a ``synthetic`` sweep's trials against the σ and κ it was configured with.

    Parameters
    ----------
    frame : DataFrame
        The calibration sweep's trials (``Results.frame``).
    sigma, kappa : float
        The workload's configured ``serial_fraction`` and ``coherency``.
    contention : DataFrame, optional
        A compute-bound sweep's trials on 1 and 2 workers, for :func:`check_contention`.
    **fit
        Passed to the USL fit (``confidence``, ``n_boot``, ``seed``).
    """
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        cal = Calibration(sigma, kappa, None, "no calibration trial finished ok")
    else:
        cal = calibrate_arrays(
            ok["workers"].to_numpy(float), ok["throughput"].to_numpy(float), sigma=sigma, kappa=kappa, **fit
        )
    return cal if contention is None else replace(cal, contention=check_contention(contention))


@dataclass(frozen=True)
class ContentionCheck:
    """A compute-bound kernel on two worker counts: did the more workers do proportionally more?

    ``ratio`` is the median throughput at ``workers[1]`` over that at ``workers[0]`` with its
    interval (None where it could not be taken, and ``error`` says why); free cores give
    ``ideal`` = ``workers[1] / workers[0]``. The runs *saw contention* when the whole interval
    lies below ``threshold``, halfway from 1× (one core shared) to the ideal.

    >>> from labkit.analysis.intervals import Estimate
    >>> check = ContentionCheck("matmul", (1, 2), Estimate(0.7, 0.6, 0.8), None)
    >>> check.threshold, check.contended
    (1.5, True)
    >>> ContentionCheck("matmul", (1, 2), Estimate(1.9, 1.7, 2.0), None).contended
    False
    """

    workload: str
    workers: tuple[int, int]
    ratio: Estimate | None
    admitted: Admitted | None
    error: str | None = None

    @property
    def ideal(self) -> float:
        return self.workers[1] / self.workers[0]

    @property
    def threshold(self) -> float:
        return (1 + self.ideal) / 2

    @property
    def contended(self) -> bool | None:
        """True: contention seen; False: none seen; None: the runs cannot tell (or no ratio)."""
        if self.ratio is None or not (math.isfinite(self.ratio.lo) and math.isfinite(self.ratio.hi)):
            return None
        if self.ratio.hi < self.threshold:
            return True
        return False if self.ratio.lo >= self.threshold else None

    def describe(self) -> str:
        """What the compute-bound check saw, and which trials it left out."""
        from .claims import ratio_words

        few, many = self.workers
        head = (
            f"Compute-bound check ({self.workload} on {few} and {many} single-thread workers; "
            f"free cores give about {format_number(self.ideal)}×): "
        )
        left = f" Trials: {self.admitted.note or 'none ran under outside load'}." if self.admitted else ""
        if self.ratio is None:
            return f"{head}not available: {self.error}; nothing is said about contention.{left}"
        said = f"{many} workers against {few}: {ratio_words(self.ratio, label='speedup', invert=True)}. "
        cut, ideal = format_number(self.threshold), format_number(self.ideal)
        verdict = {
            True: f"the whole interval is below {cut}× (halfway from 1× to {ideal}×): the runs saw the "
            "cores contended, by each other or by outside work; compute-bound sweeps here now share them too.",
            False: f"the whole interval is at or above {cut}×: no contention seen between {many} workers "
            "(this says nothing about more workers than cores).",
            None: f"the interval is not wholly on one side of {cut}×, so whether the cores were contended "
            "cannot be told from these runs; more repeats would narrow it.",
        }[self.contended]
        if not (math.isfinite(self.ratio.lo) and math.isfinite(self.ratio.hi)):
            verdict = "without an interval, nothing is said about contention."
        return f"{head}{said}Against free cores: {verdict}{left}"


def check_contention(frame: pd.DataFrame, *, seed: int = 0) -> ContentionCheck:
    """Judge a compute-bound sweep on two worker counts (say 1 and 2) for contention on the cores.

    Only the trials :func:`~labkit.analysis.trust.admit` keeps are read: those that ran under
    outside load are left out, and the description says how many.
    """
    from .intervals import ratio_estimate
    from .trust import admit

    workload = str(frame["workload"].iloc[0]) if "workload" in frame and len(frame) else "compute-bound kernel"
    counts = sorted({int(w) for w in frame["workers"]}) if "workers" in frame else []
    if len(counts) != 2:
        return ContentionCheck(workload, (1, 2), None, None, f"it needs runs on exactly 2 worker counts, not {counts}")
    a = admit(frame)
    kept = a.frame
    sides = [kept.loc[kept["workers"] == w, "throughput"].to_numpy(float) for w in counts]
    if any(side.size == 0 for side in sides):
        return ContentionCheck(workload, (counts[0], counts[1]), None, a, "no admitted trial at one worker count")
    est = ratio_estimate(sides[1], sides[0], seed=seed)
    return ContentionCheck(workload, (counts[0], counts[1]), est, a)
