"""The experiment: a Sweep's grid, the runner of each point, the timing policy, settling, Results.

This layer conducts the others: it scales the cluster, runs workloads, records trials in the
store, watches them with the monitor, shows them in the live view and hands back
:class:`Results`, whose methods call the analysis and the figures.
"""

from __future__ import annotations

from .results import Results
from .sweep import Sweep

__all__ = ["Results", "Sweep"]
