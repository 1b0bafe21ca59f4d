"""Memory: how much slower work gets as its working set passes the workers' memory limit and spills (notebook 05).

>>> from labkit.studies import memory
"""

from __future__ import annotations

from .analysis import describe_spill, spill_table
from .figures import spill_figure
from .workloads import MemorySpill

__all__ = ["MemorySpill", "describe_spill", "spill_figure", "spill_table"]
