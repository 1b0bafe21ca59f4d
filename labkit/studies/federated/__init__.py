"""Federated averaging over workers as clients, IID and non-IID: rounds, time and bytes to a target accuracy (notebook 09).

>>> from labkit.studies import federated
"""

from __future__ import annotations

from labkit.plots.curves import curve_figure

from .analysis import describe_factor, describe_federated, describe_noniid, federated_table
from .figures import to_target_figure
from .workloads import FedAvg, factor_points

__all__ = [
    "FedAvg",
    "curve_figure",
    "describe_factor",
    "describe_federated",
    "describe_noniid",
    "factor_points",
    "federated_table",
    "to_target_figure",
]
