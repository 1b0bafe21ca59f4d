"""What a one-worker trace cannot measure, measured beside it: transfers and the scheduler's round trip.

A trace of one worker moves nothing between workers, so it holds no bandwidth and no
latency of a transfer, and its tasks rarely wait on the scheduler with a thread idle.
:func:`measure_network` takes both on the traced cluster itself, in about a second:

- **transfers**: the worker fetches a result of its own through Dask's worker-to-worker
  path (``get_data_from_worker``: a connection from its pool, the request, the serialised
  data over loopback TCP and the acknowledgement), at a small size (the latency) and a large
  one (the bandwidth, from the difference), each ``repeats`` times, medians kept;
- **dispatch**: a chain of no-op tasks, traced: the median gap from one task's end to the
  next one's start is one round trip through the scheduler (the report of the end, the
  next task sent) plus the worker's own time to start a task;
- **the scheduler's time per task**: the CPU time of its event-loop thread (``time.thread_time``
  there) over a burst of 200 no-op tasks, per task. One thread does that work for every
  worker: as a cluster grows and tasks end faster, it is what they queue for.

Loopback on one machine is the network a local cluster has; a cluster of several machines
has a slower one, which a question can set (``bandwidth=``, ``latency_s=``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from labkit.common.errors import ParameterError

#: Bytes of the small and the large probe transfer.
SMALL, LARGE = 1024, 16 * 2**20
#: No-op tasks over which the scheduler's time per task is taken.
BURST = 200


@dataclass(frozen=True)
class Network:
    """Measured on the traced cluster: ``latency_s`` and ``bandwidth`` of one transfer between
    workers; ``gap_s``, a task's end to the next dependent task's start on an idle thread; and
    ``scheduler_s``, the CPU time of the scheduler's event-loop thread per task."""

    latency_s: float
    bandwidth: float
    gap_s: float
    scheduler_s: float
    note: str


def _ones(nbytes: int) -> Any:
    import numpy as np

    return np.ones(max(1, nbytes // 8))


def _noop(*inputs: Any) -> int:
    return 0


async def _fetch_own(dask_worker: Any, keys: list[str], repeats: int) -> dict[str, list[float]]:
    from distributed.worker import get_data_from_worker

    times: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(repeats):
        for k in keys:
            t = time.perf_counter()
            await get_data_from_worker(dask_worker.rpc, [k], dask_worker.address, who=dask_worker.address)
            times[k].append(time.perf_counter() - t)
    return times


def _transfers(client: Any, repeats: int) -> tuple[float, float]:
    worker = next(iter(client.scheduler_info()["workers"]))
    futures = [client.submit(_ones, n, key=f"labkit-probe-{n}", workers=[worker], pure=False) for n in (SMALL, LARGE)]
    client.gather(futures)  # results on the worker, not kept by the client
    keys = [f.key for f in futures]
    times = client.run(_fetch_own, keys=keys, repeats=repeats, workers=[worker])[worker]
    small, large = (statistics.median(times[k]) for k in keys)
    del futures
    return small, (LARGE - SMALL) / max(large - small, 1e-9)


def _chain_gap(client: Any, links: int) -> float:
    from labkit.measure.trace import TraceRecorder

    dsk: dict[str, Any] = {"labkit-chain-0": (_noop,)}
    for i in range(1, links + 1):
        dsk[f"labkit-chain-{i}"] = (_noop, f"labkit-chain-{i - 1}")
    client.get(dsk, f"labkit-chain-{links}")  # warm: the function is known to the worker
    with TraceRecorder(client) as rec:
        client.get(dsk, f"labkit-chain-{links}")
    trace = rec.trace()
    order = sorted(range(trace.tasks), key=lambda i: trace.start[i])
    gaps = [trace.start[b] - trace.stop[a] for a, b in zip(order, order[1:])]
    return max(0.0, statistics.median(gaps))


def _thread_s(dask_scheduler: Any = None) -> float:
    return time.thread_time()


def _scheduler_time(client: Any, tasks: int) -> float:
    """Seconds of the scheduler's event-loop thread per task, over a burst of no-op tasks."""
    keys = [f"labkit-burst-{i}" for i in range(tasks)]
    dsk: dict[str, Any] = {k: (_noop,) for k in keys}
    dsk["labkit-burst"] = (_noop, *keys)
    client.get(dsk, "labkit-burst")  # warm
    before = client.run_on_scheduler(_thread_s)
    client.get(dsk, "labkit-burst")
    return max(0.0, client.run_on_scheduler(_thread_s) - before) / (tasks + 1)


def measure_network(lab: Any, *, repeats: int = 5, links: int = 30) -> Network:
    """Transfer latency and bandwidth, and the dispatch gap, on ``lab``'s cluster (see the
    module's docstring). Run it right after the traced runs, on the same cluster."""
    for name, value, low in (("repeats", repeats, 3), ("links", links, 5)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParameterError(name, value, f"a whole number >= {low}")
    client = getattr(lab, "client", lab)
    latency, bandwidth = _transfers(client, repeats)
    gap = _chain_gap(client, links)
    scheduler = _scheduler_time(client, BURST)
    note = (
        f"measured on loopback: {repeats} fetches of {SMALL} B and of {LARGE // 2**20} MiB by a worker from itself, "
        f"a chain of {links} no-op tasks, the scheduler's thread over {BURST} no-op tasks"
    )
    return Network(latency, bandwidth, gap, scheduler, note)
