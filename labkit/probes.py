"""Hardware probes: the limits a scaling curve is measured against.

A speedup means little until it is set against what the machine can do. This module
measures, in the client process, on each Dask worker and on a CUDA GPU when there is one:

- memory bandwidth as STREAM measures it (copy and triad; STREAM's byte counts, best of
  ``repeats`` iterations, median kept too);
- matrix-multiply FLOP/s per dtype (``2 n**3`` flops per product);
- Dask's task overhead, split by a least-squares fit ``T = a + b * tasks`` into a fixed cost
  per ``compute`` (``a``) and a cost per task (``b``);
- network bandwidth between pairs of workers, with the echo benchmark behind
  :meth:`distributed.Client.benchmark_hardware`.

Every figure that could not be measured is recorded in :attr:`HardwareProbe.missing` with
the reason, and :meth:`HardwareProbe.table` prints it as ``not measured: <reason>``::

    from distributed import Client, LocalCluster
    from labkit.probes import run_probes

    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        probe = run_probes(client)
    print(probe.table())
    probe.to_frame()          # one row per figure
    probe.to_dict()           # JSON-serialisable, for the result store's cache

The small probe functions (:func:`stream_bandwidth`, :func:`matmul_flops`,
:func:`task_overhead`, :func:`network_bandwidth`) are public so that benchmarks and tests
call exactly what :func:`run_probes` calls. They take the array module ``xp`` (NumPy or CuPy)
so that the CPU and GPU figures come from one code path.
"""

from __future__ import annotations

import datetime
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from . import backends
from .cluster import scheduler_workers
from .hardware import HardwareProbe, MatmulResult, NetworkResult, StreamResult, TaskOverhead
from .errors import LabkitError, ParameterError, ParameterTypeError

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "HardwareProbe",
    "MatmulResult",
    "NetworkResult",
    "StreamResult",
    "TaskOverhead",
    "matmul_flops",
    "network_bandwidth",
    "run_probes",
    "stream_bandwidth",
    "task_overhead",
]

T = TypeVar("T")
MATMUL_DTYPES = ("float32", "float64")
DEFAULT_TASK_COUNTS = (1, 10, 25, 50, 100, 200)
DEFAULT_NETWORK_SIZES = ("1 MiB", "10 MiB", "50 MiB")
TRIAD_SCALAR = 3.0


# ----------------------------------------------------------------------------- probes


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
    triad_t = [_timed(xp, lambda: (xp.multiply(c, TRIAD_SCALAR, out=a), xp.add(a, b, out=a))) for _ in range(repeats + 1)][1:]
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
    return MatmulResult(n=n, dtype=str(dtype), repeats=repeats,
                        best=flops / min(times), median=flops / statistics.median(times))


def _timed(xp: ModuleType, op: Any) -> float:
    """Wall time of ``op()`` from idle device to finished device work."""
    backends.synchronize(xp)
    start = time.perf_counter()
    op()
    backends.synchronize(xp)
    return time.perf_counter() - start


def task_overhead(client: Client, task_counts: tuple[int, ...] = DEFAULT_TASK_COUNTS,
                  repeats: int = 3) -> TaskOverhead:
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

    counts = _check_task_counts(task_counts)
    _check_int("repeats", repeats, 1)
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
        fixed_s=float(fit.intercept), fixed_stderr_s=float(fit.intercept_stderr),
        per_task_s=float(fit.slope), per_task_stderr_s=float(fit.stderr),
        task_counts=counts, times_s=tuple(medians), repeats=repeats,
    )


def network_bandwidth(client: Client, sizes: tuple[str, ...] = DEFAULT_NETWORK_SIZES,
                      duration: float = 0.5) -> NetworkResult:
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
        raise LabkitError(f"the cluster has {len(workers)} worker(s); network bandwidth needs a pair "
                          "of workers (Client.benchmark_hardware() returns no network figure either)")
    peers = dict(zip(workers[0::2], workers[1::2]))
    results = client.run(_echo_peer, peers=peers, sizes=tuple(sizes), duration=duration, workers=list(peers))
    by_size = {s: statistics.fmean(r[s] for r in results.values()) for s in sizes}
    return NetworkResult(bandwidth=max(by_size.values()), by_size=by_size, pairs=len(peers), duration_s=duration)


async def _echo_peer(dask_worker: Any, peers: dict[str, str], sizes: tuple[str, ...], duration: float) -> dict[str, float]:
    from distributed.worker import benchmark_network

    return await benchmark_network(address=peers[dask_worker.address], rpc=dask_worker.rpc,
                                   sizes=sizes, duration=duration)


# ----------------------------------------------------------------------------- run_probes


def run_probes(client: Client | None = None, *, array_mb: float = 64, matmul_n: int = 1024,
               repeats: int = 5, task_counts: tuple[int, ...] = DEFAULT_TASK_COUNTS,
               network_duration: float = 0.5) -> HardwareProbe:
    """Measure memory bandwidth, matmul FLOP/s, task overhead and network bandwidth.

    Without a client, only the client process (and a GPU, if one is usable) is probed;
    the rest is recorded as missing with the reason. Takes ~6 s with the defaults on a
    2-core machine and a 2-worker cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        Workers must be able to import labkit (true of local clusters).
    array_mb : float, default 64
        MiB per STREAM array (three per location). STREAM wants arrays well beyond the
        last-level cache; a note says when they fit in it.
    matmul_n : int, default 1024
        Matrix side for the FLOP/s probe (float32 and float64).
    repeats : int, default 5
        Timed iterations of each memory and matmul probe.
    task_counts : tuple of int, default (1, 10, 25, 50, 100, 200)
        Task counts for the task-overhead fit.
    network_duration : float, default 0.5
        Seconds per message size for the network probe.

    Returns
    -------
    HardwareProbe
    """
    import numpy as np

    nbytes = _check_args(client, array_mb, matmul_n, repeats, task_counts, network_duration)
    start = time.perf_counter()
    # The probe's dicts are filled as figures arrive; the finished record is made by replace().
    probe = HardwareProbe(params={"array_mb": array_mb, "matmul_n": matmul_n, "repeats": repeats},
                          created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    _record(probe, "client", _probe_process(np, nbytes, matmul_n, repeats))
    _probe_gpu(probe, nbytes, matmul_n, repeats)
    over = net = None
    if client is None:
        why = "no Dask client given: call run_probes(client)"
        probe.missing.update({f"workers/{name}": why for name in ("memory", "matmul")})
        probe.missing.update({f"cluster/{name}": why for name in ("task_overhead", "network")})
    else:
        _probe_workers(probe, client, nbytes, matmul_n, repeats)
        over = _attempt(probe.missing, "cluster/task_overhead", lambda: task_overhead(client, task_counts))
        net = _attempt(probe.missing, "cluster/network", lambda: network_bandwidth(client, duration=network_duration))
    return replace(probe, task_overhead=over, network=net, duration_s=time.perf_counter() - start)


def _probe_process(xp: ModuleType, nbytes: int, matmul_n: int, repeats: int) -> dict[str, Any]:
    """Memory and matmul figures of the process (or device) this runs in."""
    return {
        "memory": stream_bandwidth(xp, nbytes, repeats),
        "matmul": {dt: matmul_flops(xp, matmul_n, dt, repeats) for dt in MATMUL_DTYPES},
        "llc": _last_level_cache() if xp.__name__ == "numpy" else None,
    }


def _probe_worker(nbytes: int, matmul_n: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    return _probe_process(np, nbytes, matmul_n, repeats)


def _record(probe: HardwareProbe, loc: str, result: dict[str, Any]) -> None:
    probe.memory[loc] = result["memory"]
    probe.matmul[loc] = result["matmul"]
    llc, total = result["llc"], 3 * result["memory"].nbytes
    if llc and total <= llc:
        probe.notes[loc] = (f"the 3 arrays ({total / 2**20:g} MiB) fit in the {llc / 2**20:g} MiB "
                            "last-level cache: the memory figures may be partly cache bandwidth")


def _probe_gpu(probe: HardwareProbe, nbytes: int, matmul_n: int, repeats: int) -> None:
    status = backends.gpu_status()
    if not status.available:
        why = f"no usable GPU: {status.reason}"
        probe.missing.update({"gpu/memory": why, "gpu/matmul": why})
        return
    xp = backends.array_module("cupy")
    _record(probe, "gpu", _probe_process(xp, nbytes, matmul_n, repeats))


def _probe_workers(probe: HardwareProbe, client: Client, nbytes: int, matmul_n: int, repeats: int) -> None:
    # One worker at a time: on one host, workers probed together would share the memory
    # bus and each would report a fraction of it. client.run runs outside the task queue,
    # so the probe does not wait behind (or compete with) tasks; it does hold the worker's
    # event loop for its ~0.5 s, which is why the probe sizes are kept small.
    for addr in sorted(scheduler_workers(client)):
        try:
            result = client.run(_probe_worker, nbytes, matmul_n, repeats, workers=[addr])[addr]
        except Exception as e:  # noqa: BLE001 - one failing worker must not lose the other figures
            why = f"probe failed on the worker: {type(e).__name__}: {e}"
            probe.missing.update({f"{addr}/memory": why, f"{addr}/matmul": why})
            continue
        _record(probe, addr, result)


def _attempt(missing: dict[str, str], key: str, measure: Callable[[], T]) -> T | None:
    """``measure()``, or None with the reason it failed recorded as ``missing[key]``."""
    try:
        return measure()
    except LabkitError as e:
        missing[key] = str(e)
    except Exception as e:  # noqa: BLE001 - a failed probe is reported, not fatal
        missing[key] = f"probe failed: {type(e).__name__}: {e}"
    return None


def _last_level_cache() -> int | None:
    """Bytes of this CPU's largest cache, from Linux sysfs (None elsewhere)."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * mult)
    return max(sizes, default=None)


# ----------------------------------------------------------------------------- checks


def _check_args(client: object, array_mb: object, matmul_n: object, repeats: object,
                task_counts: object, network_duration: object) -> int:
    """Validate run_probes' arguments; return bytes per STREAM array."""
    if client is not None:
        from distributed import Client

        if not isinstance(client, Client):
            raise ParameterTypeError("client", client, "a distributed.Client or None")
    if isinstance(array_mb, bool) or not isinstance(array_mb, (int, float)) or not math.isfinite(array_mb) or array_mb <= 0:
        raise ParameterError("array_mb", array_mb, "a number of MiB > 0 (64 exceeds most CPU caches)")
    _check_int("matmul_n", matmul_n, 1)
    _check_int("repeats", repeats, 1)
    _check_task_counts(task_counts)
    if isinstance(network_duration, bool) or not isinstance(network_duration, (int, float)) or not network_duration > 0:
        raise ParameterError("network_duration", network_duration, "seconds > 0")
    return max(8, int(array_mb * 2**20))


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(name, value, f"an integer >= {minimum}")


def _check_task_counts(task_counts: object) -> tuple[int, ...]:
    allowed = "at least 3 distinct positive integers, e.g. (1, 10, 25, 50, 100, 200)"
    try:
        counts = tuple(sorted(set(task_counts)))  # type: ignore[call-overload]
    except TypeError:
        raise ParameterError("task_counts", task_counts, allowed) from None
    if len(counts) < 3 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise ParameterError("task_counts", task_counts, allowed)
    return counts


def cached_probes(lab: Any = None, store: Any = None, *, refresh: bool = False, **params: Any) -> HardwareProbe:
    """:func:`run_probes`, cached in the result store per environment and cluster shape.

    The key is the environment fingerprint (host, CPU, memory, GPUs, package versions),
    the cluster's workers and threads, and the probe parameters: a probe is re-run when
    any of them changes, or with ``refresh=True``.
    """
    import json

    from .env import capture, fingerprint
    from .store import ResultStore

    shape = {} if lab is None else {k: v for k, v in lab.info().items() if k in ("workers", "threads", "memory_limit")}
    key = "probe:" + fingerprint(capture()) + ":" + json.dumps({**shape, **params}, sort_keys=True)
    own = not isinstance(store, ResultStore)
    db = ResultStore(store) if own else store
    try:
        hit = None if refresh else db.cache_get(key)
        if hit is not None:
            try:
                return HardwareProbe.from_dict(hit)
            except ParameterError:  # an older probe format: measure again
                pass
        probe = run_probes(None if lab is None else lab.client, **params)
        db.cache_put(key, probe.to_dict())
        return probe
    finally:
        if own:
            db.close()
