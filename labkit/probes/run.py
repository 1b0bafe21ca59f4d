"""Running every probe: in the client, on each worker one at a time, and on a GPU when usable.

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
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from labkit.cluster import backends
from labkit.common.errors import LabkitError, ParameterError, ParameterTypeError
from labkit.common.scheduler import scheduler_workers

from .records import HardwareProbe

if TYPE_CHECKING:
    from distributed import Client

from .dask_costs import DEFAULT_TASK_COUNTS, check_int, check_task_counts, network_bandwidth, task_overhead
from .kernels import matmul_flops, stream_bandwidth

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
) -> HardwareProbe:
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
    probe = HardwareProbe(
        params={"array_mb": array_mb, "matmul_n": matmul_n, "repeats": repeats},
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
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
    check_int("matmul_n", matmul_n, 1)
    check_int("repeats", repeats, 1)
    check_task_counts(task_counts)
    if isinstance(network_duration, bool) or not isinstance(network_duration, (int, float)) or not network_duration > 0:
        raise ParameterError("network_duration", network_duration, "seconds > 0")
    return max(8, int(array_mb * 2**20))
