"""labkit: a scaling lab for Dask, in Jupyter.

>>> import labkit
>>> with labkit.Lab(workers=2, threads_per_worker=1) as lab:              # doctest: +SKIP
...     results = labkit.Sweep("array-sum", grid={"workers": [1, 2]}).run(lab)
>>> print(results.conclusion())                                          # doctest: +SKIP
2 workers ran 1.62× faster than 1 (95% interval 1.55–1.70×): 81% parallel efficiency, …
"""

from __future__ import annotations

from importlib import metadata

from . import workloads
from .cluster import Lab
from .errors import (
    BackendUnavailable,
    ClusterError,
    LabkitError,
    ParameterError,
    ParameterTypeError,
    TrialTimeout,
)
from .results import Results
from .store import ResultStore, Trial
from .sweep import Sweep
from .workloads import Work, workload

try:
    __version__ = metadata.version("labkit")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "BackendUnavailable",
    "ClusterError",
    "Lab",
    "LabkitError",
    "ParameterError",
    "ParameterTypeError",
    "ResultStore",
    "Results",
    "Sweep",
    "Trial",
    "TrialTimeout",
    "Work",
    "workload",
    "workloads",
]
