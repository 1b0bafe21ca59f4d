"""Array workloads: a reduction, the STREAM triad, and a matrix multiply.

Each runs on NumPy or CuPy (``backend=``) through the same Dask array code. Inputs are
generated and persisted on the workers in ``setup`` (untimed); ``run`` does the measured
operation and returns once every block is computed (device work synchronised on every
worker). :mod:`labkit.workloads.device_ops` holds dask-cuda's operations (``array-ops``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labkit.cluster import backends

from .registry import BaseWorkload, Work

MiB = 2**20
_ARRAY_CHOICES = {"backend": backends.BACKENDS, "dtype": ("float32", "float64")}


@dataclass
class ArrayState:
    client: Any
    arrays: dict[str, Any]
    params: dict[str, Any]


def _vector_shape(params: dict[str, Any]) -> tuple[int, int]:
    """Elements and elements per block of a 1-d array workload."""
    itemsize = np.dtype(params.get("dtype", "float64")).itemsize
    n = max(1, int(params["size_mb"] * MiB) // itemsize)
    return n, max(1, min(n, int(params["chunk_mb"] * MiB) // itemsize))


def _vector(params: dict[str, Any], seed: int) -> Any:
    n, chunk = _vector_shape(params)
    return backends.random_array((n,), chunks=chunk, dtype=params["dtype"], backend=params["backend"], seed=seed)


def _persist(client: Any, **arrays: Any) -> dict[str, Any]:
    from distributed import wait

    persisted = dict(zip(arrays, client.persist(list(arrays.values()))))
    wait(list(persisted.values()))
    return persisted


def _compute_blocks(client: Any, x: Any, backend: str) -> None:
    """Compute every block of ``x`` on the workers and wait, without gathering it; then wait
    for every worker's device (:func:`~labkit.cluster.backends.sync_workers`)."""
    from distributed import wait

    result = client.persist(backends.device_synced(x, backend))
    wait(result)
    backends.sync_workers(client, backend)
    del result


class _ArrayWorkload(BaseWorkload):
    choices = _ARRAY_CHOICES

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Tasks per run, as blocks (one task per block and step; a reduction's tree adds
        a fixed proportion), for the overhead model."""
        n, chunk = _vector_shape(params)
        return -(-n // chunk)

    def teardown(self, state: ArrayState) -> None:
        state.arrays.clear()


class ArraySum(_ArrayWorkload):
    """Sum of a 1-d random array: a memory-bound reduction, counted in bytes read."""

    name = "array-sum"
    defaults = {"size_mb": 64.0, "chunk_mb": 8.0, "dtype": "float64", "backend": "numpy"}
    minimum = {"size_mb": 1e-3, "chunk_mb": 1e-3}

    def setup(self, lab: Any, **params: Any) -> ArrayState:
        return ArrayState(lab.client, _persist(lab.client, x=_vector(params, seed=0)), params)

    def run(self, state: ArrayState) -> Work:
        x = state.arrays["x"]
        float(x.sum().compute())  # the scalar crosses to the client: the reduction is done
        return Work(x.nbytes, "bytes")


class ArrayTriad(_ArrayWorkload):
    """STREAM's triad ``a = b + s*c`` as NumPy runs it: two passes through a temporary
    (``t = s*c``, then ``a = b + t``), so five arrays' worth of bytes move, and five are
    credited (STREAM's one-pass C loop would move three)."""

    name = "array-triad"
    defaults = {"size_mb": 64.0, "chunk_mb": 8.0, "dtype": "float64", "backend": "numpy", "scalar": 3.0}
    minimum = {"size_mb": 1e-3, "chunk_mb": 1e-3}

    def setup(self, lab: Any, **params: Any) -> ArrayState:
        arrays = _persist(lab.client, b=_vector(params, seed=1), c=_vector(params, seed=2))
        return ArrayState(lab.client, arrays, params)

    def run(self, state: ArrayState) -> Work:
        b, c = state.arrays["b"], state.arrays["c"]
        _compute_blocks(state.client, b + state.params["scalar"] * c, state.params["backend"])
        return Work(5 * b.nbytes, "bytes")


class Matmul(_ArrayWorkload):
    """Blocked square matrix multiply ``C = A @ B``: 2·n³ flops."""

    name = "matmul"
    defaults = {"n": 2048, "chunk": 1024, "dtype": "float64", "backend": "numpy"}
    minimum = {"n": 1, "chunk": 1}

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Block products per run: (n / chunk)³."""
        return (-(-params["n"] // max(1, min(params["chunk"], params["n"])))) ** 3

    def setup(self, lab: Any, **params: Any) -> ArrayState:
        n, chunk = params["n"], min(params["chunk"], params["n"])
        dtype, backend = params["dtype"], params["backend"]
        a = backends.random_array((n, n), chunks=(chunk, chunk), dtype=dtype, backend=backend, seed=3)
        b = backends.random_array((n, n), chunks=(chunk, chunk), dtype=dtype, backend=backend, seed=4)
        return ArrayState(lab.client, _persist(lab.client, a=a, b=b), params)

    def run(self, state: ArrayState) -> Work:
        a, b = state.arrays["a"], state.arrays["b"]
        _compute_blocks(state.client, a @ b, state.params["backend"])
        n = state.params["n"]
        return Work(2.0 * n**3, "flops")
