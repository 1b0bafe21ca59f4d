"""A trace replayed against Dask's adaptive scaling from zero workers, with a keep-alive window.

The cluster adapts between 0 and 1 worker (``cluster.adapt(minimum=0, maximum=1)``): a
query that finds no worker makes Dask start one (a cold start: a new worker process, which
loads the model on its first query); a worker idle for the keep-alive window is retired.
Dask decides every ``interval`` seconds and retires a worker after ``wait_count`` decisions
in a row recommend it, so the keep-alive it applies is ``wait_count × interval``, known to
within one interval. Each query's result is read and released at once, so that no result
held on a worker keeps it from being retired.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from typing import Any

import numpy as np

from labkit.common.errors import ClusterError
from labkit.common.scheduler import scheduler_workers

from .function import handler


def keep_alive_policy(keep_alive_s: float) -> tuple[float, int]:
    """Dask's ``(interval, wait_count)`` for a keep-alive window: ``wait_count × interval`` is the window.

    >>> keep_alive_policy(5.0)
    (0.25, 20)
    """
    interval = min(0.25, keep_alive_s / 4)
    return interval, max(1, round(keep_alive_s / interval))


def _wait_workers(lab: Any, n: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(scheduler_workers(lab.client)) != n:
        if time.monotonic() > deadline:
            raise ClusterError(f"the adaptive cluster did not reach {n} workers within {timeout_s:g} s")
        time.sleep(0.05)


def _stop(lab: Any, adaptive: Any) -> None:
    async def stop() -> None:  # Adaptive.stop() leaves a decision in flight to scale after it
        adaptive.stop(reason="end of a labkit serverless replay")
        while getattr(adaptive, "_adapting", False):
            await asyncio.sleep(0.02)

    lab.cluster.sync(stop, callback_timeout=120)


def _submit_all(lab: Any, path: str, arrivals: np.ndarray, timeout_s: float) -> tuple[float, np.ndarray, list[Any]]:
    n, results, errors, futures = len(arrivals), [None] * len(arrivals), [], {}
    submitted, done = np.full(n, math.nan), threading.Event()

    def on_done(i: int, fut: Any) -> None:
        try:
            results[i] = fut.result()
        except BaseException as e:  # noqa: BLE001 - kept, and raised by the caller
            errors.append(e)
        futures.pop(i, None)  # read: released, so it holds no worker back from retiring
        if all(r is not None for r in results) or errors:
            done.set()

    t0 = time.time()
    for i, a in enumerate(arrivals):
        time.sleep(max(0.0, t0 + a - time.time()))
        submitted[i] = time.time() - t0
        futures[i] = lab.client.submit(handler, path, i, pure=False, key=f"serverless-{time.time_ns()}-{i}")
        futures[i].add_done_callback(functools.partial(on_done, i))  # no other reference: released once read
    if not done.wait(timeout_s) or errors:
        if futures:
            lab.client.cancel(list(futures.values()))
        raise (
            errors[0]
            if errors
            else ClusterError(f"replay: {len(futures)} of {n} queries unfinished after {timeout_s:g} s")
        )
    return t0, submitted, results


def live_replay(lab: Any, path: str, arrivals: Any, keep_alive_s: float, timeout_s: float = 600.0) -> dict[str, Any]:
    """Replay ``arrivals`` (s from 0) against the adaptive cluster; per query its latency, whether it was
    cold (its worker loaded the model), its worker and times; the cold starts (workers started)."""
    if getattr(lab, "cluster", None) is None:
        raise ClusterError("a scale-to-zero replay needs a cluster object to adapt: this Lab has none")
    interval, wait_count = keep_alive_policy(keep_alive_s)
    before = lab.workers
    adaptive = lab.adapt(minimum=0, maximum=1, interval=f"{interval}s", wait_count=wait_count)
    try:
        _wait_workers(lab, 0, 60.0 + keep_alive_s * 4)
        t0, submitted, results = _submit_all(lab, path, np.sort(np.asarray(arrivals, float)), timeout_s)
    finally:
        _stop(lab, adaptive)
        lab.scale(max(before, 1))
    end = np.array([r["end"] for r in results]) - t0
    return {
        "arrival_s": np.sort(np.asarray(arrivals, float)).tolist(),
        "submit_s": submitted.tolist(),
        "end_s": end.tolist(),
        "latency_s": (end - submitted).tolist(),
        "cold": [r["init_s"] > 0 for r in results],
        "init_s": [r["init_s"] for r in results],
        "run_s": [r["run_s"] for r in results],
        "worker": [r["worker"] for r in results],
        "cold_starts": len({r["worker"] for r in results}),
        "interval_s": interval,
        "wait_count": wait_count,
        "keep_alive_s": interval * wait_count,
    }
