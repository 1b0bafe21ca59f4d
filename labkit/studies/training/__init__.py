"""Data-parallel training to a target accuracy: PyTorch DDP and NumPy SGD against workers and batch (notebook 07).

>>> from labkit.studies import training
"""

from __future__ import annotations

from .analysis import (
    SKIPPED,
    describe_batch,
    describe_frameworks,
    describe_workers,
    torch_note,
    training_points,
    training_table,
)
from .figures import curve_figure, time_to_target_figure
from .workloads import DDPTrain, NumpySGD, torch_available

__all__ = [
    "DDPTrain",
    "NumpySGD",
    "SKIPPED",
    "curve_figure",
    "describe_batch",
    "describe_frameworks",
    "describe_workers",
    "time_to_target_figure",
    "torch_available",
    "torch_note",
    "training_points",
    "training_table",
]
