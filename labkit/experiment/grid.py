"""A sweep's grid: checking it, and the points it holds.

A grid is a dict of parameter -> values (run as their product) or a list of points (run as
given); ``workers`` values scale the lab.

>>> explicit_points([{"workers": 1, "n": 8}, {"workers": 2, "n": 16}])
[{'workers': 1, 'n': 8}, {'workers': 2, 'n': 16}]
>>> as_values("n", 8)
[8]
"""

from __future__ import annotations

from typing import Any

from labkit import workloads
from labkit.common.errors import ParameterError, ParameterTypeError


def as_values(key: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return [values]
    values = list(values)
    if not values:
        raise ParameterError(f"grid[{key!r}]", values, "a non-empty list of values")
    return values


def explicit_points(grid: Any) -> list[dict[str, Any]] | None:
    """A grid given as a list of points, checked to share their keys; None for a dict grid."""
    if not isinstance(grid, (list, tuple)):
        return None
    if not grid or not all(isinstance(p, dict) and p for p in grid):
        raise ParameterError("grid", grid, "a non-empty list of non-empty dicts (one per point), or a dict of lists")
    keys = set(grid[0])
    for p in grid:
        if set(p) != keys:
            raise ParameterError("grid", p, f"points with the same keys as the first: {sorted(keys)}")
    return [dict(p) for p in grid]


def check_workers(values: list[Any]) -> None:
    for w in values:
        if isinstance(w, bool) or not isinstance(w, int):
            raise ParameterTypeError("grid['workers']", w, "int")
        if w < 1:
            raise ParameterError("grid['workers']", w, "integers >= 1")


def check_backends(workload: Any, grid: dict[str, Any], params: dict[str, Any]) -> None:
    """Refuse a ``backend`` (NumPy, CuPy) that this machine cannot run, before any cluster work."""
    from labkit.cluster.backends import check_backend

    if "backend" not in workload.defaults:
        return
    for b in grid.get("backend", [params.get("backend", workload.defaults["backend"])]):
        check_backend(b, parameter=f"{workload.name}.backend")


def check_params(workload: Any, grid: dict[str, list[Any]], params: Any) -> dict[str, Any]:
    """The fixed ``params`` and every value of ``grid``, by the workload's own checks; the
    fixed parameters as a new dict."""
    if params is not None and not isinstance(params, dict):
        raise ParameterTypeError("params", params, "dict of workload parameter -> value")
    params = dict(params or {})
    if "workers" in params:
        raise ParameterError("params['workers']", params["workers"], "not set here: put workers in the grid")
    workloads.resolve_params(workload, params)
    for key, values in grid.items():
        if key != "workers":
            for v in values:
                workloads.check_value(workload, key, v)
    return params
