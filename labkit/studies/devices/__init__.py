"""CPU against GPU: dask-cuda's array operations at growing sizes, the crossover, the copies (notebook 02).

>>> from labkit.studies import devices
"""

from __future__ import annotations

from .analysis import Crossover, copy_table, crossover, ratio_table, throughput_table, trials
from .figures import ratio_figure, throughput_figure
from .limits import limit_table
from .plan import gpu_plan
from .words import describe_devices, not_measured

__all__ = [
    "Crossover",
    "copy_table",
    "crossover",
    "describe_devices",
    "gpu_plan",
    "limit_table",
    "not_measured",
    "ratio_figure",
    "ratio_table",
    "throughput_figure",
    "throughput_table",
    "trials",
]
