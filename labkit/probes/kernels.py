"""Device limits measured in one process: STREAM memory bandwidth and matmul FLOP/s.

Both take the array module ``xp`` (NumPy or CuPy), so CPU and GPU figures come from one
code path.
"""

from __future__ import annotations

import statistics
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

from labkit.cluster import backends

from .records import MatmulResult, StreamResult

if TYPE_CHECKING:
    pass


TRIAD_SCALAR = 3.0


def stream_bandwidth(xp: ModuleType, nbytes: int, repeats: int = 5) -> StreamResult:
    """STREAM copy and triad bandwidth of ``xp`` (NumPy or CuPy) arrays of ``nbytes``.

    Copy is ``xp.copyto(a, b)``, counted as 2 arrays' bytes; triad is ``a = b + s*c``,
    counted as 3 arrays' bytes, as STREAM counts them. The triad is done in place
    (``multiply(c, s, out=a); add(a, b, out=a)``): NumPy has no fused triad, and
    temporaries would add allocation and page faults to what is meant to be a memory
    figure. It moves more bytes than it counts, so it understates the hardware a little.

    Parameters
    ----------
    xp : module
        ``numpy``, or ``cupy`` from ``backends.array_module("cupy")``.
    nbytes : int
        Bytes per array (float64); three arrays are allocated.
    repeats : int, default 5
        Timed iterations after one warm-up; ``*_best`` is from the fastest, as STREAM reports.

    Returns
    -------
    StreamResult
    """
    n = max(1, nbytes // 8)
    a = xp.empty(n, dtype="float64")
    b = xp.full(n, 1.0, dtype="float64")
    c = xp.full(n, 2.0, dtype="float64")
    # Each kernel runs its own loop (iteration 0 warms up: first touch of a, caches,
    # clocks), so one kernel's steady state is timed, not what the other left in cache.
    copy_t = [_timed(xp, lambda: xp.copyto(a, b)) for _ in range(repeats + 1)][1:]
    triad_t = [
        _timed(xp, lambda: (xp.multiply(c, TRIAD_SCALAR, out=a), xp.add(a, b, out=a))) for _ in range(repeats + 1)
    ][1:]
    size = n * 8
    return StreamResult(
        nbytes=size,
        repeats=repeats,
        copy_best=2 * size / min(copy_t),
        copy_median=2 * size / statistics.median(copy_t),
        triad_best=3 * size / min(triad_t),
        triad_median=3 * size / statistics.median(triad_t),
    )


def matmul_flops(xp: ModuleType, n: int = 1024, dtype: str = "float64", repeats: int = 5) -> MatmulResult:
    """FLOP/s of ``xp.matmul`` on ``n x n`` matrices of ``dtype``, ``2 n**3`` flops each.

    In a Dask worker this is the single-threaded figure a task sees, as Dask's nanny sets
    ``OMP_NUM_THREADS=1`` (and the MKL/OpenBLAS equivalents) for worker processes.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    n : int, default 1024
        Matrix side.
    dtype : str, default "float64"
    repeats : int, default 5
        Timed products after one warm-up.

    Returns
    -------
    MatmulResult
    """
    # Values in [0, 1) with no zeros or denormals, so no BLAS shortcut or slow path applies.
    a = ((xp.arange(n * n, dtype=dtype) % 7 + 1) / 8).reshape(n, n)
    b = a.T.copy()
    c = xp.empty((n, n), dtype=dtype)
    times = [_timed(xp, lambda: xp.matmul(a, b, out=c)) for _ in range(repeats + 1)][1:]
    flops = 2.0 * n**3
    return MatmulResult(
        n=n, dtype=str(dtype), repeats=repeats, best=flops / min(times), median=flops / statistics.median(times)
    )


def _timed(xp: ModuleType, op: Any) -> float:
    """Wall time of ``op()`` from idle device to finished device work."""
    backends.synchronize(xp)
    start = time.perf_counter()
    op()
    backends.synchronize(xp)
    return time.perf_counter() - start
