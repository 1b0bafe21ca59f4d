"""From trials to answers: speedup, efficiency, fits, limits and advice, each with its uncertainty.

Every function takes the tidy trials DataFrame (``Results.frame`` or
``ResultStore.trials_frame()``) and returns a DataFrame, a fit, a recommendation or a
sentence. The modules, one subject each:

- :mod:`.frames`: grid points and configurations of a trials frame;
- :mod:`.intervals`: labkit's one median interval and ratio interval (BCa), bootstrap
  refits corrected for small samples, the one margin-of-equivalence convention, and the
  direction an interval shows (claimed only when it excludes no-change; "not available",
  and why, where there is no interval);
- :mod:`.claims`: a ratio and its interval in words, the one helper every sentence uses;
- :mod:`.solve`: least squares for many data sets at once (the refits);
- :mod:`.scaling`: strong scaling (speedup, efficiency, Karp–Flatt);
- :mod:`.weak`: weak scaling (sizes that grow with the workers, scaled speedup);
- :mod:`.models` and :mod:`.fits`: Amdahl and Universal Scalability Law fits and
  predictions (4 worker counts for the USL, 3 for Amdahl);
- :mod:`.overhead`: the fixed, per-task and per-byte cost of a run;
- :mod:`.roofline`: the fraction of the probed hardware limits reached;
- :mod:`.recommend`: the worker count and chunk size to use, and why, with a stated
  margin of practical equivalence;
- :mod:`.calibration`: the analysis checked against the ``synthetic`` workload's known curve;
- :mod:`.shares`: where the workers' time went;
- :mod:`.compare`: two runs of one experiment, point by point.

A study's own analysis lives in its folder (``labkit.studies.<study>.analysis``).

The names people call from notebooks are importable from here.
"""

from __future__ import annotations

from .calibration import Calibration, calibrate
from .fits import AmdahlFit, UnavailableFit, USLFit, fit_amdahl, fit_usl, predict_throughput
from .frames import describe_config, pick_configuration, point_params, varying
from .intervals import CONFIDENCE, MIN_REPEATS, Estimate, median_estimate, ratio_estimate
from .overhead import OverheadFit, fit_overhead, task_counts
from .scaling import describe_scaling, karp_flatt, strong_scaling, summarize
from .weak import describe_weak_scaling, weak_grid, weak_scaling, weak_sizes

__all__ = [
    "Calibration",
    "calibrate",
    "CONFIDENCE",
    "MIN_REPEATS",
    "AmdahlFit",
    "Estimate",
    "OverheadFit",
    "USLFit",
    "UnavailableFit",
    "describe_config",
    "describe_scaling",
    "describe_weak_scaling",
    "fit_amdahl",
    "fit_overhead",
    "fit_usl",
    "karp_flatt",
    "median_estimate",
    "pick_configuration",
    "point_params",
    "predict_throughput",
    "ratio_estimate",
    "strong_scaling",
    "summarize",
    "task_counts",
    "varying",
    "weak_grid",
    "weak_scaling",
    "weak_sizes",
]
