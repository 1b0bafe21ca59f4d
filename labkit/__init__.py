"""labkit: a scaling lab for Dask, in Jupyter.

>>> import labkit
>>> with labkit.Lab(workers=2, threads_per_worker=1) as lab:              # doctest: +SKIP
...     results = labkit.Sweep("array-sum", grid={"workers": [1, 2]}).run(lab)
>>> print(results.conclusion())                                          # doctest: +SKIP
2 workers ran 1.62× faster than 1 (95% interval 1.55–1.70×): 81% parallel efficiency, …
"""

from __future__ import annotations

import importlib
from importlib import metadata
from types import ModuleType

from . import analysis, workloads
from .analysis import fits, recommend, roofline
from .cluster import Lab
from .cluster.capacity import worker_counts
from .cluster.connect import connection_note, open_lab
from .common import checks, errors
from .common.errors import (
    BackendUnavailable,
    ClusterError,
    DataError,
    LabkitError,
    ParameterError,
    ParameterTypeError,
    TrialTimeout,
)
from .experiment import Results, Sweep
from .experiment.probing import probe_machine
from .store import ResultStore, Trial
from .workloads import Work, workload

# Parts imported on first use, so that ``import labkit`` does not load matplotlib.
_LAZY = {"plots": "labkit.plots", "probes": "labkit.probes"}


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


try:
    __version__ = metadata.version("labkit")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "BackendUnavailable",
    "ClusterError",
    "DataError",
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
    "checks",
    "connection_note",
    "open_lab",
    "probe_machine",
    "worker_counts",
    "workload",
    "analysis",
    "errors",
    "fits",
    "recommend",
    "roofline",
    "workloads",
    *_LAZY,
]
