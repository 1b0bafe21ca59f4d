"""A different chunk size: the workload's graph rebuilt at new parameters, its tasks' times and
sizes estimated from traces at other chunk sizes, then replayed.

Where a workload's graph is made from a chunk parameter (``array-sum``: ``chunk_mb``,
``matmul``: ``chunk``), :func:`rebuild` makes the graph Dask would run at new parameters
without computing anything: the same collection code on stand-in inputs, the same graph
optimisation the client runs (so the tasks and their names are those a real run has), the
persisted inputs kept as inputs with their exact sizes, and ``dask.order``'s priorities.

Each new task's duration and result size come from the traced tasks of its kind (its key's
prefix): per kind, a straight line in log–log of duration, and of result size, against the
task's input bytes (``log y = a + p log x``, fitted to the median at each traced input size),
so that a kind whose time grows as its bytes (``p`` = 1), as its flops (a matrix product's
``p`` > 1) or not at all (``p`` = 0) is fitted as measured. A kind whose input size did not
vary in the traces keeps its median. Two chunk sizes traced are the least that measures a
slope; a size between them is an interpolation, one beyond them an extrapolation.

The interval: ``samples`` replays, each with every kind's fit redone on its traced tasks
resampled with replacement and each new task's time scaled by a ratio drawn from its kind's
residuals; the 2.5th to 97.5th percentile (widened to hold the central estimate).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.common.errors import DataError, ParameterError
from labkit.measure.trace import Trace

from .engine import Graph

MiB = 2**20


def _placeholder(shape: tuple[int, ...], chunks: Any, dtype: str) -> tuple[Any, list[tuple[Any, int]]]:
    """A dask array standing in for a persisted one: its keys are inputs, its graph has no task."""
    import dask.array as da
    from dask.core import flatten
    from dask.highlevelgraph import HighLevelGraph

    like = da.empty(shape, chunks=chunks, dtype=dtype)
    graph = HighLevelGraph.from_collections(like.name, {}, dependencies=())
    x = da.Array(graph, like.name, like.chunks, dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    sizes = [int(np.prod(s)) * itemsize for s in _block_shapes(x)]
    return x, list(zip(flatten(x.__dask_keys__()), sizes))


def _block_shapes(x: Any) -> list[tuple[int, ...]]:
    import itertools

    return [tuple(p) for p in itertools.product(*x.chunks)]


def _array_sum(params: dict[str, Any]) -> tuple[Any, bool, list[tuple[Any, int]]]:
    itemsize = np.dtype(params["dtype"]).itemsize
    n = max(1, int(params["size_mb"] * MiB) // itemsize)  # as labkit.workloads.arrays lays it out
    chunk = max(1, min(n, int(params["chunk_mb"] * MiB) // itemsize))
    x, inputs = _placeholder((n,), chunk, params["dtype"])
    return x.sum(), True, inputs


def _matmul(params: dict[str, Any]) -> tuple[Any, bool, list[tuple[Any, int]]]:
    from labkit.cluster import backends

    n, chunk = params["n"], min(params["chunk"], params["n"])
    a, in_a = _placeholder((n, n), (chunk, chunk), params["dtype"])
    b, in_b = _placeholder((n, n), (chunk, chunk), params["dtype"])
    return backends.device_synced(a @ b, params.get("backend", "numpy")), False, in_a + in_b


#: Workloads whose graph :func:`rebuild` can make at new parameters, and the parameter that chunks it.
REBUILDERS = {"array-sum": (_array_sum, "chunk_mb"), "matmul": (_matmul, "chunk")}


def chunk_parameter(workload: str) -> str:
    """The parameter that sets ``workload``'s chunk size, for a workload :func:`rebuild` can make.

    >>> chunk_parameter("matmul")
    'chunk'
    """
    if workload not in REBUILDERS:
        raise ParameterError("workload", workload, f"one whose graph can be rebuilt: {', '.join(REBUILDERS)}")
    return REBUILDERS[workload][1]


def rebuild(workload: str, params: dict[str, Any]) -> dict[str, Any]:
    """The graph ``workload`` runs at ``params`` (its defaults filled in), uncomputed:
    ``kinds`` (each task's key prefix), ``deps`` (an index ``>= tasks`` names input
    ``index - tasks``), ``inputs`` (their bytes) and ``priority`` (``dask.order``'s rank).

    >>> g = rebuild("array-sum", {"size_mb": 64.0, "chunk_mb": 8.0})
    >>> len(g["kinds"]), len(g["inputs"]), sorted(set(g["kinds"]))[:2]
    (12, 8, ['finalize-hlgfinalizecompute', 'sum'])
    """
    from dask._expr import FinalizeCompute
    from dask.base import collections_to_expr
    from dask.order import order
    from dask.utils import key_split

    from labkit import workloads

    chunk_parameter(workload)
    full = {**workloads.get(workload).defaults, **params}
    collection, finalize, inputs = REBUILDERS[workload][0](full)
    expr = collections_to_expr([collection], True)
    dsk = dict((FinalizeCompute(expr) if finalize else expr).optimize().__dask_graph__())
    keys = list(dsk)
    index = {k: i for i, k in enumerate(keys)}
    index.update({k: len(keys) + j for j, (k, _) in enumerate(inputs)})
    deps = [sorted(index[d] for d in dsk[k].dependencies) for k in keys]
    ranks = order(dsk)
    ranked = sorted(range(len(keys)), key=lambda i: ranks[keys[i]])
    priority = [0] * len(keys)
    for rank, i in enumerate(ranked):
        priority[i] = rank
    return {"kinds": [key_split(k) for k in keys], "deps": deps, "inputs": [b for _, b in inputs], "priority": priority}


def traced_tasks(traces: list[Trace]) -> dict[str, np.ndarray]:
    """Per kind, one row per traced task: its input bytes, duration (s) and result bytes."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for t in traces:
        n = t.tasks
        for i in range(n):
            x = sum(t.nbytes[d] if d < n else t.inputs[d - n][0] for d in t.deps(i))
            rows.setdefault(t.prefixes[t.prefix[i]], []).append((x, t.stop[i] - t.start[i], t.nbytes[i]))
    return {k: np.asarray(v, float) for k, v in rows.items()}


def fit_loglog(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(a, p)`` of ``log y = a + p log x`` through the median ``y`` at each distinct ``x``
    (``p`` = 0, ``a`` the log median, where ``x`` takes one value).

    >>> a, p = fit_loglog(np.array([1.0, 1.0, 4.0, 4.0]), np.array([2.0, 2.0, 8.0, 8.0]))
    >>> round(math.exp(a), 6), round(p, 6)
    (2.0, 1.0)
    """
    x, y = np.maximum(x, 1.0), np.maximum(y, 1e-7)
    xs = np.unique(x)
    my = np.array([np.median(y[x == v]) for v in xs])
    if len(xs) < 2:
        return float(np.log(my[0])), 0.0
    p, a = np.polyfit(np.log(xs), np.log(my), 1)
    return float(a), float(p)


def _fits(table: dict[str, np.ndarray], rng: np.random.Generator | None) -> dict[str, tuple[float, ...]]:
    """Per kind: duration's ``(a, p)``, size's ``(a, p)`` (tasks resampled where ``rng``)."""
    out = {}
    for kind, rows in table.items():
        if rng is not None:
            rows = rows[rng.integers(0, len(rows), len(rows))]
        out[kind] = (*fit_loglog(rows[:, 0], rows[:, 1]), *fit_loglog(rows[:, 0], rows[:, 2]))
    return out


def estimate(rebuilt: dict[str, Any], table: dict[str, np.ndarray], rng: np.random.Generator | None = None) -> Graph:
    """The rebuilt graph with each task's duration and result size from its kind's fit: times
    the mean ratio of the kind's traced durations to the fit, or, where ``rng``, with the fit
    redone on resampled tasks and one ratio drawn."""
    kinds, deps, inputs = rebuilt["kinds"], rebuilt["deps"], rebuilt["inputs"]
    missing = sorted(set(kinds) - set(table))
    if missing:
        raise DataError(f"the traces hold no task of kind {missing[0]!r}: trace a chunk size whose graph has them")
    fits, n = _fits(table, rng), len(kinds)
    residuals = {k: _residuals(rows, fits[k][:2]) for k, rows in table.items()}
    durations, sizes = [0.0] * n, [0] * n
    for i in _order(deps, n):
        x = max(1.0, sum(sizes[d] if d < n else inputs[d - n] for d in deps[i]))
        a, p, sa, sp = fits[kinds[i]]
        ratios = residuals[kinds[i]]
        noise = float(rng.choice(ratios)) if rng is not None else float(np.mean(ratios))
        durations[i] = math.exp(a + p * math.log(x)) * noise
        sizes[i] = int(round(math.exp(sa + sp * math.log(x))))
    return Graph(durations, deps, sizes, rebuilt["priority"], [(b, -1) for b in inputs])


def _residuals(rows: np.ndarray, fit: tuple[float, float]) -> np.ndarray:
    a, p = fit
    predicted = np.exp(a + p * np.log(np.maximum(rows[:, 0], 1.0)))
    return np.maximum(rows[:, 1], 1e-7) / predicted


def _order(deps: list[list[int]], n: int) -> list[int]:
    from .engine import _topological

    return _topological(Graph([0.0] * n, deps))


def fixed_at(traces: list[Trace], tasks: int) -> float:
    """Seconds of a run outside its tasks (submitting and ordering the graph, gathering the
    result) at ``tasks`` tasks: a straight line through the traces' (tasks, wall − span), or
    their median where they all had one task count.

    >>> fixed_at([], 10)
    0.0
    """
    points = np.array([(t.tasks, max(0.0, (t.wall_s or t.span_s) - t.span_s)) for t in traces], float)
    if not len(points):
        return 0.0
    if len(np.unique(points[:, 0])) < 2:
        return float(np.median(points[:, 1]))
    slope, intercept = np.polyfit(points[:, 0], points[:, 1], 1)
    return max(0.0, float(intercept + slope * tasks))
