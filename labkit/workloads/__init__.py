"""Workloads: the registry and the generic families (arrays, tasks, tables, dataframes, synthetic).

Every built-in workload, the studies' included, registers through the ``labkit.workloads``
entry-point group (pyproject.toml), the same table third-party plugins use; :func:`names`
reads it.

>>> from labkit import workloads
>>> "array-sum" in workloads.names()
True
"""

from __future__ import annotations

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
