"""Fault tolerance: what a lost worker costs in recomputation, a degraded sweep, an interrupted sweep resumed (notebook 11).

>>> from labkit.studies import recovery
"""

from __future__ import annotations

from .analysis import describe_recovery, describe_resume, recovery_runs
from .figures import recovery_figure
from .interrupt import interrupted_sweep, resumable_sweep
from .run import Chain, recomputation

__all__ = [
    "Chain",
    "describe_recovery",
    "describe_resume",
    "interrupted_sweep",
    "recomputation",
    "recovery_figure",
    "recovery_runs",
    "resumable_sweep",
]
