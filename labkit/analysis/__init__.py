"""From trials to answers: speedup, efficiency, fits, limits and advice, each with its uncertainty.

Every function takes the tidy trials DataFrame (``Results.frame`` or
``ResultStore.trials_frame()``) and returns a DataFrame, a fit, a recommendation or a
sentence. The modules, one subject each:

- :mod:`.frames`: grid points and configurations of a trials frame;
- :mod:`.intervals`: bootstrap ratios, refits and percentile intervals;
- :mod:`.scaling`: strong scaling (speedup, efficiency, Karp–Flatt);
- :mod:`.weak`: weak scaling (sizes that grow with the workers, scaled speedup);
- :mod:`.fits`: Amdahl and Universal Scalability Law fits and predictions;
- :mod:`.overhead`: the fixed, per-task and per-byte cost of a run;
- :mod:`.roofline`: the fraction of the probed hardware limits reached;
- :mod:`.recommend`: the worker count and chunk size to use, and why.

The names people call from notebooks are importable from here.
"""

from __future__ import annotations

from .fits import AmdahlFit, USLFit, amdahl_fit, fit_amdahl, fit_usl, predict_throughput, usl_fit
from .frames import describe_config, pick_configuration, point_params, varying
from .intervals import CONFIDENCE, bootstrap_ratio
from .overhead import OverheadFit, fit_overhead, overhead_fit, task_counts
from .scaling import describe_scaling, karp_flatt, scaling, summarize
from .weak import describe_weak_scaling, weak_grid, weak_scaling, weak_sizes

__all__ = [
    "CONFIDENCE",
    "AmdahlFit",
    "OverheadFit",
    "USLFit",
    "amdahl_fit",
    "bootstrap_ratio",
    "describe_config",
    "describe_scaling",
    "describe_weak_scaling",
    "fit_amdahl",
    "fit_overhead",
    "fit_usl",
    "karp_flatt",
    "overhead_fit",
    "pick_configuration",
    "point_params",
    "predict_throughput",
    "scaling",
    "summarize",
    "task_counts",
    "usl_fit",
    "varying",
    "weak_grid",
    "weak_scaling",
    "weak_sizes",
]
