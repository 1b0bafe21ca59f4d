"""Workloads: the registry and the built-in workload families.

>>> from labkit import workloads
>>> "array-sum" in workloads.names()
True
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers the built-ins)
    arrays,
    compression,
    dataframes,
    federated,
    images,
    memory,
    optimize,
    pipeline,
    search,
    storage,
    stream,
    synthetic,
    tables,
    tasks,
    text,
    training,
)
from .registry import (
    ENTRY_POINT_GROUP,
    BaseWorkload,
    FunctionWorkload,
    Work,
    Workload,
    check_value,
    get,
    load_entry_points,
    names,
    register,
    resolve_params,
    workload,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "load_entry_points",
    "BaseWorkload",
    "FunctionWorkload",
    "Work",
    "Workload",
    "check_value",
    "get",
    "names",
    "register",
    "resolve_params",
    "workload",
]
