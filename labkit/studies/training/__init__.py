"""Data-parallel training to a target accuracy: PyTorch DDP, TensorFlow and NumPy SGD against workers and batch (notebook 07).

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
from .figures import curve_figure, efficiency_figure, time_to_target_figure
from .frameworks import ANCHOR, DEFINITION, describe_efficiency, efficiency_table
from .tensorflow_run import (
    TF_SKIPPED,
    RankError,
    TFTrain,
    require_tensorflow,
    tensorflow_available,
    tensorflow_note,
)
from .workloads import DDPTrain, NumpySGD, torch_available

__all__ = [
    "ANCHOR",
    "DDPTrain",
    "DEFINITION",
    "NumpySGD",
    "RankError",
    "SKIPPED",
    "TFTrain",
    "TF_SKIPPED",
    "curve_figure",
    "describe_batch",
    "describe_efficiency",
    "describe_frameworks",
    "describe_workers",
    "efficiency_figure",
    "efficiency_table",
    "require_tensorflow",
    "tensorflow_available",
    "tensorflow_note",
    "time_to_target_figure",
    "torch_available",
    "torch_note",
    "training_points",
    "training_table",
]
