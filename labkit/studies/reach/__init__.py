"""Reaching a cluster through its manager: adoption of any manager's cluster, and what reaching it costs (notebook 13).

>>> from labkit.studies import reach
>>> sorted(reach.MANAGERS)
['gateway-local', 'jobqueue-local']
"""

from __future__ import annotations

from .compare import compare_managers
from .results import Reach
from .run import measure_reach
from .standins import MANAGERS, gateway_cluster, jobqueue_cluster, missing

__all__ = ["MANAGERS", "Reach", "compare_managers", "gateway_cluster", "jobqueue_cluster", "measure_reach", "missing"]
