"""Device limits measured in one process: memory bandwidth and matmul FLOP/s, on one thread or several at once.

Every kernel is credited with the traffic it really makes: the bytes of the arrays each pass
reads and writes, as STREAM counts them (write-allocate traffic, which no STREAM figure
counts, is left out):

- copy, ``xp.copyto(a, b)``: one pass, read ``b`` and write ``a``: **2 arrays**;
- triad, ``xp.multiply(c, s, out=a)`` then ``xp.add(a, b, out=a)``: NumPy and CuPy have no
  fused triad, so it makes two passes, read ``c`` and write ``a``, then read ``a`` and ``b``
  and write ``a``: **5 arrays** (STREAM's one-pass C triad moves 3);
- matmul, ``xp.matmul(a, b, out=c)`` on ``n x n`` matrices: ``2 n**3`` flops.

With ``threads > 1`` (NumPy only) the kernel runs on that many threads at once, as a Dask
worker's threads run tasks; NumPy releases the GIL in these loops. For memory the arrays are
split into ``threads`` contiguous parts, each allocated and first touched by its own thread;
for matmul each thread multiplies its own matrices. Each timed iteration starts every thread
together (a barrier, or a shared start time given in ``starts``) and runs from the first
thread's start to the last one's end, so its figure is everything moved (or computed) over
the slowest thread's time.

>>> import numpy as np
>>> r = stream_bandwidth(np, 2**20, repeats=2, threads=2)
>>> r.threads, r.nbytes, r.copy_best >= r.copy_median > 0
(2, 1048576, True)
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from labkit.cluster import backends
from labkit.common.errors import ParameterError

from .records import MatmulResult, StreamResult

TRIAD_SCALAR = 3.0
COPY_ARRAYS = 2
"""Arrays' worth of bytes one ``copyto(a, b)`` moves: read ``b``, write ``a``."""
TRIAD_ARRAYS = 5
"""Arrays' worth of bytes the two-pass triad moves: read ``c``, write ``a``; read ``a``, ``b``, write ``a``."""
KERNELS = ("copy", "triad", "matmul")


@dataclass(frozen=True)
class Spans:
    """Timed iterations of one kernel run by several threads at once.

    ``amount`` is the bytes (or flops) of one iteration over all threads; ``starts``,
    ``last_starts`` and ``ends`` hold, per timed iteration, the first thread's start, the
    last thread's start and the last one's end (``time.perf_counter``, one clock for every process of a
    host since Python 3.10); ``ready`` is when every thread had built its inputs and run its warm-up.
    """

    amount: float
    starts: tuple[float, ...]
    last_starts: tuple[float, ...]
    ends: tuple[float, ...]
    ready: float
    threads: int

    def rates(self) -> list[float]:
        """Bytes (or flops) per second of each timed iteration."""
        return [self.amount / (end - start) for start, end in zip(self.starts, self.ends)]


def stream_bandwidth(xp: ModuleType, nbytes: int, repeats: int = 5, threads: int = 1) -> StreamResult:
    """Copy and triad bandwidth of ``xp`` (NumPy or CuPy) arrays of ``nbytes`` each.

    Copy is credited with 2 arrays' bytes and the two-pass triad with 5 (see the module's
    docstring): the bytes each really moves, so both figures measure the same thing.

    Parameters
    ----------
    xp : module
        ``numpy``, or ``cupy`` from ``backends.array_module("cupy")``.
    nbytes : int
        Bytes per array (float64) over all threads; three arrays are allocated.
    repeats : int, default 5
        Timed iterations after one warm-up; ``*_best`` is from the fastest, as STREAM reports.
    threads : int, default 1
        Threads running the kernel at once, each on its own part of the arrays (NumPy only).

    Returns
    -------
    StreamResult
    """
    n = max(threads, nbytes // 8)
    figures: dict[str, float] = {}
    # Each kernel runs its own loop (iteration 0 warms up: first touch, caches, clocks), so
    # one kernel's steady state is timed, not what the other left in cache.
    for kernel in ("copy", "triad"):
        rates = run_kernel(xp, kernel, n * 8, repeats=repeats, threads=threads).rates()
        figures[f"{kernel}_best"] = max(rates)
        figures[f"{kernel}_median"] = statistics.median(rates)
    return StreamResult(nbytes=n * 8, repeats=repeats, threads=threads, **figures)


def matmul_flops(
    xp: ModuleType, n: int = 1024, dtype: str = "float64", repeats: int = 5, threads: int = 1
) -> MatmulResult:
    """FLOP/s of ``xp.matmul`` on ``n x n`` matrices of ``dtype``, ``2 n**3`` flops each.

    In a Dask worker started by a nanny, BLAS runs single-threaded (the nanny sets
    ``OMP_NUM_THREADS=1`` and the MKL/OpenBLAS equivalents), so ``threads`` products at
    once are what a worker with that many threads does; elsewhere BLAS may use several
    threads for each product.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    n : int, default 1024
        Matrix side.
    dtype : str, default "float64"
    repeats : int, default 5
        Timed products after one warm-up.
    threads : int, default 1
        Threads multiplying their own matrices at once (NumPy only); the figure is their
        flops together over the slowest one's time.

    Returns
    -------
    MatmulResult
    """
    rates = run_kernel(xp, "matmul", n, repeats=repeats, threads=threads, dtype=dtype).rates()
    return MatmulResult(
        n=n, dtype=str(dtype), repeats=repeats, threads=threads, best=max(rates), median=statistics.median(rates)
    )


def run_kernel(
    xp: ModuleType,
    kernel: str,
    size: int,
    *,
    repeats: int,
    threads: int = 1,
    dtype: str = "float64",
    starts: Sequence[float] | Callable[[], Sequence[float]] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> Spans:
    """Run ``kernel`` on ``threads`` threads at once: one warm-up, then ``repeats`` timed iterations.

    ``size`` is bytes per array over all threads (copy, triad) or the matrix side (matmul).
    Without ``starts`` a barrier starts each iteration on every thread; with ``starts``
    (``time.perf_counter`` values, one per iteration, or a function each thread calls once it
    is ready, which returns them) each thread waits for those times instead, so that
    processes on one host start together. ``on_error`` is called with a thread's error as it
    happens (e.g. to release threads waiting in ``starts``); the first error is raised once
    every thread has stopped.
    """
    _check_run(xp, kernel, threads, starts, repeats)
    build = _builder(xp, kernel, size, threads, dtype)
    barrier = threading.Barrier(threads)
    done: list[list[tuple[float, float]]] = [[] for _ in range(threads)]
    amounts, ready, errors = [0.0] * threads, [0.0] * threads, []

    def work(i: int) -> None:
        try:
            op, amounts[i] = build(i)
            op()  # warm-up: first touch, caches, clocks
            backends.synchronize(xp)
            ready[i] = time.perf_counter()
            plan = _check_starts(starts(), repeats) if callable(starts) else starts
            for k in range(repeats):
                if plan is None:
                    barrier.wait()
                else:
                    _sleep_until(plan[k])
                begin = time.perf_counter()
                op()
                backends.synchronize(xp)
                done[i].append((begin, time.perf_counter()))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors.append(e)
            barrier.abort()
            if on_error is not None:
                on_error(e)

    _on_threads(work, threads)
    if errors:
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return Spans(
        amount=float(sum(amounts)),
        starts=tuple(min(d[k][0] for d in done) for k in range(repeats)),
        last_starts=tuple(max(d[k][0] for d in done) for k in range(repeats)),
        ends=tuple(max(d[k][1] for d in done) for k in range(repeats)),
        ready=max(ready),
        threads=threads,
    )


def _check_run(
    xp: ModuleType,
    kernel: str,
    threads: int,
    starts: Sequence[float] | Callable[[], Sequence[float]] | None,
    repeats: int,
) -> None:
    """Refuse what :func:`run_kernel` cannot run, before any thread starts."""
    if kernel not in KERNELS:
        raise ParameterError("kernel", kernel, " | ".join(KERNELS))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParameterError("threads", threads, "an integer >= 1")
    if threads > 1 and xp.__name__ != "numpy":
        raise ParameterError("threads", threads, "1 with a GPU's array module (one device stream)")
    if starts is not None and not callable(starts):
        _check_starts(starts, repeats)


def _on_threads(work: Callable[[int], None], threads: int) -> None:
    """Call ``work(i)`` for each ``i < threads``, all at once, and wait for them (a lone one runs here)."""
    if threads == 1:
        work(0)  # the caller's thread: a GPU's current device and stream stay as they are
    else:
        pool = [threading.Thread(target=work, args=(i,), name=f"labkit-probe-{i}") for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()


def _builder(xp: ModuleType, kernel: str, size: int, threads: int, dtype: str) -> Callable[[int], tuple[Any, float]]:
    """``build(i) -> (op, amount)``: thread ``i``'s inputs, its kernel, and what one call moves."""
    if kernel == "matmul":

        def build_matmul(i: int) -> tuple[Any, float]:
            # Values in [0, 1) with no zeros or denormals, so no BLAS shortcut or slow path applies.
            a = ((xp.arange(size * size, dtype=dtype) % 7 + 1) / 8).reshape(size, size)
            b = a.T.copy()
            c = xp.empty((size, size), dtype=dtype)
            return (lambda: xp.matmul(a, b, out=c)), 2.0 * size**3

        return build_matmul
    n = max(threads, size // 8)
    parts = [n // threads + (i < n % threads) for i in range(threads)]

    def build_stream(i: int) -> tuple[Any, float]:
        a = xp.empty(parts[i], dtype="float64")
        b = xp.full(parts[i], 1.0, dtype="float64")
        if kernel == "copy":
            return (lambda: xp.copyto(a, b)), float(COPY_ARRAYS * a.nbytes)
        c = xp.full(parts[i], 2.0, dtype="float64")

        def triad() -> None:
            xp.multiply(c, TRIAD_SCALAR, out=a)
            xp.add(a, b, out=a)

        return triad, float(TRIAD_ARRAYS * a.nbytes)

    return build_stream


def _check_starts(starts: Sequence[float], repeats: int) -> Sequence[float]:
    if len(starts) != repeats:
        raise ParameterError("starts", f"{len(starts)} start times", f"one per timed iteration ({repeats})")
    return starts


def _sleep_until(deadline: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``deadline``.

    Sleeping, not spinning: a spinning thread holds the GIL, and the process's other threads
    would each wait up to a switch interval (5 ms) to see the time.
    """
    while (left := deadline - time.perf_counter()) > 0:
        time.sleep(left)
