"""Running every probe: in the client, on each worker with its threads, on the whole host, and on a GPU.

A speedup means little until it is set against what the machine can do. This module
measures, in the client process, on each Dask worker, on all workers of one host at once
and on a CUDA GPU when there is one:

- memory bandwidth (copy and triad, each credited with the bytes it really moves: see
  :mod:`labkit.probes.kernels`; best of ``repeats`` iterations, median kept too);
- matrix-multiply FLOP/s per dtype (``2 n**3`` flops per product);
- Dask's task overhead, split by a least-squares fit ``T = a + b * tasks`` into a fixed cost
  per ``compute`` (``a``) and a cost per task (``b``);
- network bandwidth between pairs of workers, with the echo benchmark behind
  :meth:`distributed.Client.benchmark_hardware`;
- the cores' own scaling ceiling, ``k`` single-thread matmuls at once against one alone
  (:mod:`labkit.probes.concurrency`).

Given a ``watch`` (``labkit probe`` gives one), the outside load over the whole probe is
read too: a probe taken while other processes loaded the machine is flagged ``under_load``,
said so in its table, and never cached.

Each worker is probed on its own (the others idle), with as many threads running the kernel
at once as it has: that is its per-worker limit. When every worker shares one host, all of
them then run each kernel at the same moment (:mod:`labkit.probes.node`): the host's
ceiling, which the per-worker limits times the worker count may exceed. The client's
figures describe the client process only (one thread for memory; matmul with whatever BLAS
threads it has) and never stand in for a worker's.

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
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from labkit.cluster import backends
from labkit.common import checks
from labkit.common.errors import LabkitError, ParameterError, ParameterTypeError
from labkit.common.format import format_probe_value
from labkit.common.scheduler import scheduler_workers

from .records import HardwareProbe, NodeCeiling

if TYPE_CHECKING:
    from distributed import Client

from .concurrency import DEFAULT_ROUNDS, LoadWatch, cluster_pids, concurrency_ceiling, load_words, start_watch
from .dask_costs import DEFAULT_TASK_COUNTS, check_task_counts, network_bandwidth, task_overhead
from .kernels import COPY_ARRAYS, matmul_flops, stream_bandwidth
from .node import node_ceiling

T = TypeVar("T")


MATMUL_DTYPES = ("float32", "float64")


def run_probes(
    client: Client | None = None,
    *,
    array_mb: float = 64,
    matmul_n: int = 1024,
    repeats: int = 5,
    task_counts: tuple[int, ...] = DEFAULT_TASK_COUNTS,
    network_duration: float = 0.5,
    watch: LoadWatch | None = None,
) -> HardwareProbe:
    """Measure memory bandwidth, matmul FLOP/s, task overhead and network bandwidth.

    Without a client, only the client process (and a GPU, if one is usable) is probed;
    the rest, the per-worker limits included, is recorded as missing with the reason.

    Parameters
    ----------
    client : distributed.Client, optional
        Workers must be able to import labkit (true of local clusters).
    array_mb : float, default 64
        MiB per array (three per location; a worker splits them over its threads). Arrays
        should be well beyond the last-level cache; a note says when they fit in it.
    matmul_n : int, default 1024
        Matrix side for the FLOP/s probe (float32 and float64).
    repeats : int, default 5
        Timed iterations of each memory and matmul probe.
    task_counts : tuple of int, default (1, 10, 25, 50, 100, 200)
        Task counts for the task-overhead fit.
    network_duration : float, default 0.5
        Seconds per message size for the network probe.
    watch : LoadWatch, optional
        Reads the outside load over the probe (``labkit probe`` passes one): a probe under
        load is flagged ``under_load`` and never cached. Without it the load is not measured.

    Returns
    -------
    HardwareProbe
    """
    import numpy as np

    nbytes = _check_args(client, array_mb, matmul_n, repeats, task_counts, network_duration)
    start = time.perf_counter()
    pids = None if watch is None else cluster_pids(client)
    finish = start_watch(watch, pids)
    # The probe's dicts are filled as figures arrive; the finished record is made by replace().
    probe = HardwareProbe(
        params={"array_mb": array_mb, "matmul_n": matmul_n, "repeats": repeats},
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    _record(probe, "client", _probe_process(np, nbytes, matmul_n, repeats))
    cache = probe.notes.get("client")
    probe.notes["client"] = "the client process: memory with 1 thread, matmul with its BLAS threads; " + (
        "never a worker's limit" + (f"; {cache}" if cache else "")
    )
    _probe_gpu(probe, nbytes, matmul_n, repeats)
    over = net = node = None
    if client is None:
        why = "no Dask client given: call run_probes(client)"
        probe.missing.update({f"{loc}/{name}": why for loc in ("workers", "node") for name in ("memory", "matmul")})
        probe.missing.update({f"cluster/{name}": why for name in ("task_overhead", "network")})
    else:
        found = _probe_workers(probe, client, nbytes, matmul_n, repeats)
        probed = {a: (t, probe.memory[a], probe.matmul[a]["float64"]) for a, (t, _) in found.items()}
        node = _attempt(probe.missing, "node/memory", lambda: node_ceiling(client, probed, nbytes, matmul_n, repeats))
        if node is None:
            probe.missing["node/matmul"] = probe.missing["node/memory"]
        else:
            _note_node(probe, node, max((llc or 0 for _, llc in found.values()), default=0))
        over = _attempt(probe.missing, "cluster/task_overhead", lambda: task_overhead(client, task_counts))
        net = _attempt(probe.missing, "cluster/network", lambda: network_bandwidth(client, duration=network_duration))
    rounds = max(repeats, DEFAULT_ROUNDS)
    measure = lambda: concurrency_ceiling(rounds=rounds, pids=pids, watch=watch)  # noqa: E731
    cores = _attempt(probe.missing, "cores/concurrency", measure)
    load, under = finish()
    if under or not load:
        end = "these figures are not this machine's ceiling; not cached" if under else "pass watch= to read it"
        probe.notes["load"] = f"{load_words(load, under)}: {end}"
    return replace(
        probe,
        task_overhead=over,
        network=net,
        node=node,
        concurrency=cores,
        load=load,
        under_load=under,
        duration_s=time.perf_counter() - start,
    )


def _probe_process(xp: ModuleType, nbytes: int, matmul_n: int, repeats: int, threads: int = 1) -> dict[str, Any]:
    """Memory and matmul figures of the process (or device) this runs in, ``threads`` at once."""
    return {
        "memory": stream_bandwidth(xp, nbytes, repeats, threads),
        "matmul": {dt: matmul_flops(xp, matmul_n, dt, repeats, threads) for dt in MATMUL_DTYPES},
        "llc": _last_level_cache() if xp.__name__ == "numpy" else None,
    }


def _probe_worker(nbytes: int, matmul_n: int, repeats: int, threads: int) -> dict[str, Any]:
    import numpy as np

    return _probe_process(np, nbytes, matmul_n, repeats, threads)


def _record(probe: HardwareProbe, loc: str, result: dict[str, Any]) -> None:
    probe.memory[loc] = result["memory"]
    probe.matmul[loc] = result["matmul"]
    llc, total = result["llc"], 3 * result["memory"].nbytes
    if llc and total <= llc:
        probe.notes[loc] = (
            f"the 3 arrays ({total / 2**20:g} MiB) fit in the {llc / 2**20:g} MiB "
            "last-level cache: the memory figures may be partly cache bandwidth"
        )


def _probe_gpu(probe: HardwareProbe, nbytes: int, matmul_n: int, repeats: int) -> None:
    status = backends.gpu_status()
    if not status.available:
        why = f"no usable GPU: {status.reason}"
        probe.missing.update({"gpu/memory": why, "gpu/matmul": why})
        return
    xp = backends.array_module("cupy")
    _record(probe, "gpu", _probe_process(xp, nbytes, matmul_n, repeats))


def _probe_workers(
    probe: HardwareProbe, client: Client, nbytes: int, matmul_n: int, repeats: int
) -> dict[str, tuple[int, int | None]]:
    """Each worker's own figures, with all its threads at once; (threads, last-level cache bytes) of each probed."""
    # One worker at a time: on one host, workers probed together would share the memory
    # bus and each would report a fraction of it (the node ceiling measures that). client.run
    # runs outside the task queue, so the probe does not wait behind (or compete with) tasks;
    # it does hold the worker's event loop for its ~0.5 s, which is why the sizes are small.
    threads = {addr: int(info.get("nthreads") or 1) for addr, info in scheduler_workers(client).items()}
    found: dict[str, tuple[int, int | None]] = {}
    for addr in sorted(threads):
        try:
            result = client.run(_probe_worker, nbytes, matmul_n, repeats, threads[addr], workers=[addr])[addr]
        except Exception as e:  # noqa: BLE001 - one failing worker must not lose the other figures
            why = f"probe failed on the worker: {type(e).__name__}: {e}"
            probe.missing.update({f"{addr}/memory": why, f"{addr}/matmul": why})
            continue
        _record(probe, addr, result)
        found[addr] = (threads[addr], result["llc"])
    return found


def _note_node(probe: HardwareProbe, node: NodeCeiling, llc: int) -> None:
    """Caveats on the node's figures: arrays that fit in cache; starts spread (median) over more
    than a tenth of its fastest iteration."""
    notes, total = [], 3 * node.memory.nbytes
    if total <= llc:
        notes.append(
            f"all workers' arrays together ({total / 2**20:g} MiB) fit in the {llc / 2**20:g} MiB last-level cache: "
            "the node figures may be partly cache bandwidth"
        )
    fastest = COPY_ARRAYS * node.memory.nbytes / node.memory.copy_best
    if node.start_spread_s > 0.1 * fastest:
        notes.append(
            f"the threads' starts were {format_probe_value(node.start_spread_s, 's')} apart (median) "
            f"({node.start_spread_s / fastest:.0%} of a copy iteration): some ran while others had not started, "
            "so the node figures may understate the host"
        )
    if notes:
        probe.notes["node"] = "; ".join(notes)


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


def _check_args(
    client: object, array_mb: object, matmul_n: object, repeats: object, task_counts: object, network_duration: object
) -> int:
    """Validate run_probes' arguments; return bytes per STREAM array."""
    if client is not None:
        from distributed import Client

        if not isinstance(client, Client):
            raise ParameterTypeError("client", client, "a distributed.Client or None")
    if (
        isinstance(array_mb, bool)
        or not isinstance(array_mb, (int, float))
        or not math.isfinite(array_mb)
        or array_mb <= 0
    ):
        raise ParameterError("array_mb", array_mb, "a number of MiB > 0 (64 exceeds most CPU caches)")
    checks.count("matmul_n", matmul_n)
    checks.count("repeats", repeats)
    check_task_counts(task_counts)
    if isinstance(network_duration, bool) or not isinstance(network_duration, (int, float)) or not network_duration > 0:
        raise ParameterError("network_duration", network_duration, "seconds > 0")
    return max(8, int(array_mb * 2**20))
