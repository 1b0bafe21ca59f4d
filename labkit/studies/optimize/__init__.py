"""Model optimisation: pruning, exact against approximate algorithms, transfer learning (notebook 08).

>>> from labkit.studies import optimize
"""

from __future__ import annotations

from labkit.workloads.learning import SKIPPED, torch_available, torch_note

from .analysis import (
    approx_table,
    describe_approx,
    describe_pruning,
    describe_sparse_speed,
    describe_transfer,
    pruning_table,
    transfer_table,
)
from .approx import ApproxVsExact
from .figures import approx_figure, pruning_figure, transfer_curves, transfer_figure
from .pruning import PruneInfer
from .transfer import Transfer

__all__ = [
    "SKIPPED",
    "torch_available",
    "torch_note",
    "ApproxVsExact",
    "PruneInfer",
    "Transfer",
    "approx_figure",
    "approx_table",
    "describe_approx",
    "describe_pruning",
    "describe_sparse_speed",
    "describe_transfer",
    "pruning_figure",
    "pruning_table",
    "transfer_curves",
    "transfer_figure",
    "transfer_table",
]
