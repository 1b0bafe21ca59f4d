"""Calibration gates the fits: a known curve fitted first, and findings flagged when it fails."""

from __future__ import annotations

import numpy as np

from labkit.analysis.calibration import FLAG, calibrate_arrays
from labkit.analysis.models import usl_throughput

N = np.repeat([1, 2, 4, 8], 5)


def _measured(sigma: float, kappa: float, noise: float = 0.01, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return usl_throughput(N, 10.0, sigma, kappa) * rng.lognormal(0.0, noise, N.size)


def test_a_machine_that_measures_the_known_curve_passes():
    cal = calibrate_arrays(N, _measured(0.1, 0.002), sigma=0.1, kappa=0.002)
    assert cal.ok, cal.describe()
    assert cal.describe().startswith("Calibration passed")
    assert cal.qualify("USL fit over 1–4 workers.") == "USL fit over 1–4 workers."


def test_a_curve_far_from_the_configured_one_flags_every_finding():
    # The sweep was configured with σ = 0.1, but the machine measured σ = 0.3 (outside load).
    cal = calibrate_arrays(N, _measured(0.3, 0.002), sigma=0.1, kappa=0.002)
    assert not cal.ok
    text = cal.describe()
    assert "Calibration failed" in text and "outside the interval" in text and "too noisy right now" in text
    flagged = cal.qualify("First finding.\n\nSecond finding.")
    assert flagged == f"{FLAG} First finding.\n\n{FLAG} Second finding."


def test_too_few_worker_counts_is_not_a_pass():
    n = np.repeat([1, 2], 5)
    cal = calibrate_arrays(n, usl_throughput(n, 10.0, 0.1, 0.0), sigma=0.1, kappa=0.0)
    assert not cal.ok and cal.fit is None
    assert cal.describe().startswith("Calibration not available")
    assert cal.qualify("x").startswith(FLAG)
