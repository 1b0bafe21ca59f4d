"""Calibration that gates: the known curve of the ``synthetic`` workload, fitted before any finding.

The ``synthetic`` workload sleeps so that its time follows a USL with a configured serial
fraction σ and coherency κ. Fitting it on this machine, now, checks the whole chain
(cluster, timing, fits): when the fitted σ or κ disagrees with the configured value beyond
its interval, this machine is too noisy right now for the fits that follow, and every
sentence drawn from them carries that flag instead of being presented as a finding.

>>> import numpy as np
>>> from labkit.analysis.models import usl_throughput
>>> n = np.repeat([1, 2, 4, 8], 4)
>>> rng = np.random.default_rng(1)
>>> x = usl_throughput(n, 10.0, 0.1, 0.002) * rng.lognormal(0, 0.01, n.size)
>>> cal = calibrate_arrays(n, x, sigma=0.1, kappa=0.002)
>>> cal.ok
True
>>> cal.qualify("A finding.")
'A finding.'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import LabkitError
from labkit.common.format import format_interval, format_number

if TYPE_CHECKING:
    import pandas as pd

    from .models import USLFit

FLAG = "[calibration failed on this machine just now: an estimate, not a finding]"


@dataclass(frozen=True)
class Calibration:
    """The outcome of a calibration: the fit (or why there is none) against the configured σ, κ."""

    sigma: float
    kappa: float
    fit: USLFit | None
    error: str | None = None

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
    def ok(self) -> bool:
        """Whether the configured σ and κ both lie inside the fitted intervals."""
        checks = self.checks
        return bool(checks) and all(inside for _, _, inside in checks.values())

    def describe(self) -> str:
        """The verdict in words, with the fitted values and what it means for what follows."""
        if self.fit is None:
            return (
                f"Calibration not available: {self.error}. The fits below are estimates that this "
                "machine was not checked for; run the calibration with at least 4 worker counts."
            )
        parts = [
            f"{name} fitted {format_interval(v, *ci)} vs {format_number(true)} configured "
            f"({'inside' if inside else 'outside'} the interval)"
            for (name, (v, ci, inside)), true in zip(self.checks.items(), (self.sigma, self.kappa))
        ]
        if self.ok:
            return "Calibration passed: " + "; ".join(parts) + ". The fits below can be read as findings."
        return (
            "Calibration failed: "
            + "; ".join(parts)
            + ". This machine is too noisy right now for the fits below: they are flagged as estimates, "
            "not findings. Rerun on a quieter machine, with more repeats, or with a longer work_s."
        )

    def qualify(self, text: str) -> str:
        """``text`` as it is when the calibration passed; flagged, paragraph by paragraph, when not."""
        if self.ok:
            return text
        return "\n\n".join(f"{FLAG} {p}" for p in text.split("\n\n"))


def _inside(value: float, ci: tuple[float, float]) -> bool:
    lo, hi = ci
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= value <= hi)


def calibrate_arrays(workers: Any, throughput: Any, *, sigma: float, kappa: float, **fit: Any) -> Calibration:
    """Fit the USL to ``(workers, throughput)`` of a calibration and judge it against ``sigma``, ``kappa``."""
    from .fits import fit_usl

    try:
        result = fit_usl(workers, throughput, **fit)
    except (LabkitError, ValueError) as e:
        return Calibration(sigma, kappa, None, str(e))
    if not hasattr(result, "sigma_ci"):  # a fit that could not be made, with its reason
        return Calibration(sigma, kappa, None, str(getattr(result, "reason", "the fit is not available")))
    return Calibration(sigma, kappa, result)


def calibrate(frame: pd.DataFrame, sigma: float, kappa: float, **fit: Any) -> Calibration:
    """Judge a ``synthetic`` sweep's trials against the σ and κ it was configured with.

    Parameters
    ----------
    frame : DataFrame
        The calibration sweep's trials (``Results.frame``).
    sigma, kappa : float
        The workload's configured ``serial_fraction`` and ``coherency``.
    **fit
        Passed to the USL fit (``confidence``, ``n_boot``, ``seed``).
    """
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return Calibration(sigma, kappa, None, "no calibration trial finished ok")
    return calibrate_arrays(
        ok["workers"].to_numpy(float), ok["throughput"].to_numpy(float), sigma=sigma, kappa=kappa, **fit
    )
