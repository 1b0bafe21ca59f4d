"""Costs of Dask itself: the fixed and per-task overhead of a compute, and worker-to-worker bandwidth."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from labkit.common import checks
from labkit.common.errors import LabkitError, ParameterError
from labkit.common.scheduler import scheduler_workers

from .records import NetworkResult, TaskOverhead

if TYPE_CHECKING:
    from distributed import Client


DEFAULT_TASK_COUNTS = (1, 10, 25, 50, 100, 200)


DEFAULT_NETWORK_SIZES = ("1 MiB", "10 MiB", "50 MiB")


def task_overhead(client: Client, task_counts: tuple[int, ...] = DEFAULT_TASK_COUNTS, repeats: int = 3) -> TaskOverhead:
    """Fit Dask's cost of ``client.compute`` on ``tasks`` no-op tasks: ``T = a + b * tasks``.

    Each count is timed ``repeats`` times (counts interleaved, so drift in a shared
    machine's load spreads over all of them) from ``client.compute(..., sync=True)`` to
    results back; building the graph is not timed. The fit is ordinary least squares on the
    median time per count, since noise on a shared machine comes as one-sided spikes.

    Parameters
    ----------
    client : distributed.Client
    task_counts : tuple of int, default (1, 10, 25, 50, 100, 200)
        At least 3 distinct positive counts, so that the fit has a standard error.
    repeats : int, default 3

    Returns
    -------
    TaskOverhead
    """
    from scipy import stats

    counts = check_task_counts(task_counts)
    checks.count("repeats", repeats)
    # A builtin as the task: nothing to import or unpickle on the workers, and no work.
    # client.map submits one graph of independent tasks, as a real workload would; a list
    # of separate delayed objects would also time the client's per-collection handling.
    client.gather(client.map(abs, range(max(counts)), pure=False))
    times: dict[int, list[float]] = {c: [] for c in counts}
    for _ in range(repeats):
        for count in counts:
            start = time.perf_counter()
            client.gather(client.map(abs, range(count), pure=False))
            times[count].append(time.perf_counter() - start)
    medians = [statistics.median(times[c]) for c in counts]
    fit = stats.linregress(counts, medians)
    return TaskOverhead(
        fixed_s=float(fit.intercept),
        fixed_stderr_s=float(fit.intercept_stderr),
        per_task_s=float(fit.slope),
        per_task_stderr_s=float(fit.stderr),
        task_counts=counts,
        times_s=tuple(medians),
        repeats=repeats,
    )


def network_bandwidth(
    client: Client, sizes: tuple[str, ...] = DEFAULT_NETWORK_SIZES, duration: float = 0.5
) -> NetworkResult:
    """Bandwidth between pairs of workers, by Dask's own echo benchmark.

    :meth:`distributed.Client.benchmark_hardware` returns ``{"disk": ..., "memory": ...,
    "network": {size: bytes/s}}``; its network part pairs the workers and has each pair
    echo messages for 1 s per size, counting bytes both ways. It also benchmarks disk and
    memory for ~6 s more (~14 s in all on a 2-core machine), so this calls the same
    ``distributed.worker.benchmark_network`` on the same pairs, with the sizes and duration
    given. Pairs run at once, as in ``benchmark_hardware``.

    Parameters
    ----------
    client : distributed.Client
    sizes : tuple of str, default ("1 MiB", "10 MiB", "50 MiB")
        Message sizes (as ``dask.utils.parse_bytes`` reads them).
    duration : float, default 0.5
        Seconds of echoing per size.

    Returns
    -------
    NetworkResult

    Raises
    ------
    LabkitError
        With fewer than 2 workers (``benchmark_hardware`` then returns no network figure).
    """
    workers = sorted(scheduler_workers(client))
    if len(workers) < 2:
        raise LabkitError(
            f"the cluster has {len(workers)} worker(s); network bandwidth needs a pair "
            "of workers (Client.benchmark_hardware() returns no network figure either)"
        )
    peers = dict(zip(workers[0::2], workers[1::2]))
    results = client.run(_echo_peer, peers=peers, sizes=tuple(sizes), duration=duration, workers=list(peers))
    by_size = {s: statistics.fmean(r[s] for r in results.values()) for s in sizes}
    return NetworkResult(bandwidth=max(by_size.values()), by_size=by_size, pairs=len(peers), duration_s=duration)


async def _echo_peer(
    dask_worker: Any, peers: dict[str, str], sizes: tuple[str, ...], duration: float
) -> dict[str, float]:
    from distributed.worker import benchmark_network

    return await benchmark_network(
        address=peers[dask_worker.address], rpc=dask_worker.rpc, sizes=sizes, duration=duration
    )


def check_task_counts(task_counts: object) -> tuple[int, ...]:
    allowed = "at least 3 distinct positive integers, e.g. (1, 10, 25, 50, 100, 200)"
    try:
        counts = tuple(sorted(set(task_counts)))  # type: ignore[call-overload]
    except TypeError:
        raise ParameterError("task_counts", task_counts, allowed) from None
    if len(counts) < 3 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise ParameterError("task_counts", task_counts, allowed)
    return counts
