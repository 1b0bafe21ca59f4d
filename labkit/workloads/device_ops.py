"""The array operations dask-cuda's ``local_cupy`` benchmark times, on NumPy or CuPy: ``array-ops``.

One workload, one ``op`` parameter, the same Dask array code on either backend
(:mod:`labkit.cluster.backends`). Its work is counted as dask-cuda counts it, in **bytes of
input** (the inputs' ``nbytes``), so throughputs read side by side with its output.

=================  ==================================  ================  ======
op                 what is timed                       blocks of input    inputs
=================  ==================================  ================  ======
``transpose_sum``  ``(x + x.T).sum()``                 chunk × chunk      1
``dot``            ``x @ y``                           chunk × chunk      2
``sum``            ``x.sum()``                         chunk × chunk      1
``mean``           ``x.mean()``                        chunk × chunk      1
``slice``          ``x[::3]`` copied                   chunk × chunk      1
``fft``            ``fft(x, axis=0)``                  n × chunk          1
``sort``           each row sorted (``axis=1``)        chunk × n          1
``h2d``            the copy of ``x`` host → device     chunk × chunk      1
``d2h``            the copy of ``x`` device → host     chunk × chunk      1
=================  ==================================  ================  ======

Inputs are n × n, generated on the host and copied to the backend's memory in ``setup``,
before any clock; that copy is timed apart and stored with each trial as ``transfer_s``
(``None`` on NumPy: nothing is copied). A run persists its result on the workers, waits for
every block (each block's device work synchronised), then synchronises every worker's
device, and only then returns: the clock stops after the device work is done. ``h2d`` and
``d2h`` time the host↔device copies themselves, with repeats like any other op; they need
``backend="cupy"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.cluster import backends
from labkit.common.errors import ParameterError

from .registry import BaseWorkload, Work

COMPUTE_OPS = ("transpose_sum", "dot", "sum", "mean", "slice", "fft", "sort")
TRANSFER_OPS = ("h2d", "d2h")
OPS = COMPUTE_OPS + TRANSFER_OPS
MAX_BLOCKS = 100_000
"""Most blocks (tasks per step) one input may be cut into."""


def _transpose_sum(xp: Any, x: Any) -> Any:
    return (x + x.T).sum()


def _fft(xp: Any, x: Any) -> Any:
    return x.map_blocks(lambda b: xp.fft.fft(b, axis=0), dtype=np.result_type(x.dtype, np.complex64))


def _sort(xp: Any, x: Any) -> Any:
    return x.map_blocks(lambda b: xp.sort(b, axis=1), dtype=x.dtype)


#: op -> (how the result is computed from the inputs, the inputs' block shape, number of inputs)
EXPRESSIONS: dict[str, tuple[Callable[..., Any], str, int]] = {
    "transpose_sum": (_transpose_sum, "square", 1),
    "dot": (lambda xp, x, y: x @ y, "square", 2),
    "sum": (lambda xp, x: x.sum(), "square", 1),
    "mean": (lambda xp, x: x.mean(), "square", 1),
    "slice": (lambda xp, x: x[::3].copy(), "square", 1),
    "fft": (_fft, "columns", 1),
    "sort": (_sort, "rows", 1),
}


def block_shape(op: str, n: int, chunk: int) -> tuple[int, int]:
    """The block shape of ``op``'s inputs: whole columns for ``fft``, whole rows for ``sort``."""
    c = max(1, min(chunk, n))
    layout = EXPRESSIONS[op][1] if op in EXPRESSIONS else "square"
    return {"square": (c, c), "columns": (n, c), "rows": (c, n)}[layout]


def input_count(op: str) -> int:
    return EXPRESSIONS[op][2] if op in EXPRESSIONS else 1


@dataclass
class OpsState:
    client: Any
    params: dict[str, Any]
    arrays: list[Any]
    nbytes: int
    transfer_s: float | None = None
    last: dict[str, Any] = field(default_factory=dict)


class ArrayOps(BaseWorkload):
    """dask-cuda's array operations (``op``) on an n × n array in chunk-sized blocks, in bytes of input."""

    name = "array-ops"
    defaults = {"op": "transpose_sum", "n": 2048, "chunk": 512, "dtype": "float64", "backend": "numpy"}
    choices = {"op": OPS, "backend": backends.BACKENDS, "dtype": ("float32", "float64")}
    minimum = {"n": 2, "chunk": 1}

    def check_params(self, params: dict[str, Any]) -> None:
        """Refuse a copy between host and device without a device, and inputs cut into too many blocks."""
        op, n, chunk = params["op"], params["n"], params["chunk"]
        if op in TRANSFER_OPS and params["backend"] != "cupy":
            raise ParameterError(
                "op",
                op,
                f"{', '.join(COMPUTE_OPS)} with backend={params['backend']!r}; {op} copies between "
                "host and device memory and needs backend='cupy'",
            )
        rows, cols = block_shape(op, n, chunk)
        blocks = -(-n // rows) * -(-n // cols)
        if blocks > MAX_BLOCKS:
            raise ParameterError(
                "chunk",
                chunk,
                f"a block side that cuts the {n} × {n} input into at most {MAX_BLOCKS:,} blocks "
                f"(chunk={chunk} gives {blocks:,}); e.g. chunk >= {-(-n // int(MAX_BLOCKS**0.5))}",
            )

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Blocks per input (the block products of ``dot``: their number cubed over the side)."""
        rows, cols = block_shape(params["op"], params["n"], params["chunk"])
        per_side = -(-params["n"] // rows)
        blocks = per_side * -(-params["n"] // cols)
        return per_side**3 if params["op"] == "dot" else blocks

    def setup(self, lab: Any, **params: Any) -> OpsState:
        """Inputs generated on the host, then copied to the backend's memory (timed apart)."""
        from distributed import wait

        self.check_params(params)
        op, n, backend = params["op"], params["n"], params["backend"]
        chunks = block_shape(op, n, params["chunk"])
        host = [
            backends.random_array((n, n), chunks=chunks, dtype=params["dtype"], seed=seed)
            for seed in range(input_count(op))
        ]
        host = lab.client.persist(host)
        wait(host)
        state = OpsState(lab.client, params, host, int(sum(x.nbytes for x in host)))
        if op == "h2d" or backend == "numpy":
            return state
        t0 = time.perf_counter()
        device = lab.client.persist([backends.to_device(x, backend) for x in host])
        wait(device)
        backends.sync_workers(lab.client, backend)
        state.transfer_s = time.perf_counter() - t0
        state.arrays = device
        return state

    def expression(self, state: OpsState) -> Any:
        """The Dask array a run computes (not yet computed)."""
        op, backend = state.params["op"], state.params["backend"]
        if op == "h2d":
            return backends.to_device(state.arrays[0], backend)
        if op == "d2h":
            return backends.to_host(state.arrays[0])
        xp = backends.array_module(backend)
        return EXPRESSIONS[op][0](xp, *state.arrays)

    def run(self, state: OpsState) -> Work:
        from distributed import wait

        result = self.expression(state)
        done = state.client.persist(backends.device_synced(result, state.params["backend"]))
        wait(done)
        backends.sync_workers(state.client, state.params["backend"])
        del done
        return Work(float(state.nbytes), "bytes")

    def metrics(self, state: OpsState) -> dict[str, Any]:
        """The inputs' bytes and their copy to the device before the clock (None: no copy)."""
        return {"input_bytes": state.nbytes, "transfer_s": state.transfer_s}

    def teardown(self, state: OpsState) -> None:
        state.arrays = []
