"""The cores' own scaling ceiling: ``k`` single-thread compute kernels at once against one alone.

A speedup of 2 workers over 1 mixes two things: what the machine's cores give when two of
them compute at once, and what Dask adds (scheduling, data movement, the Python around the
kernels). This probe measures the first alone. For ``k = 1 ...`` the cores this process may
use, ``k`` threads of this process each multiply their own ``n x n`` float64 matrices at
once (NumPy releases the GIL; BLAS is held to one thread per product with threadpoolctl, as
a nanny holds a Dask worker's), and their flop/s together is set against one product alone.
The operating system spreads ``k`` busy threads over ``k`` cores when it has them free; two
hyperthreads of one core give about 1.2–1.3× one alone, two real cores about 2×.

Each round runs every ``k`` once, the order reversed every other round, so that a slow
stretch of the machine falls on every ``k`` alike; each ``k`` keeps one figure per round
(the median of its ``inner`` timed iterations) so that the ratio's interval comes from the
rounds (``labkit.analysis.intervals.ratio_estimate``, where the ceiling is read: this layer
does not import the analysis).

The outside load over the probe is read by a ``watch`` the caller gives (:data:`LoadWatch`;
``labkit probe`` gives one built on :func:`labkit.measure.host.host_reader` and
:class:`~labkit.measure.alerts.AlertRules`, which this layer may not import): CPU used by
processes other than this one and the cluster's above the rules' thresholds flags the
ceiling ``under_load``: it then measured that load too, and :mod:`labkit.probes.cache`
neither keeps nor serves it. Without a watch the load is not measured (``under_load`` None).

>>> c = concurrency_ceiling(2, n=64, rounds=2, inner=1)
>>> c.ks, len(c.rates[2]), c.ratio(2) > 0
([1, 2], 2, True)
"""

from __future__ import annotations

import datetime
import os
import socket
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING

from labkit.common.errors import ParameterError

from .kernels import run_kernel
from .records import ConcurrencyCeiling

if TYPE_CHECKING:
    from distributed import Client

Pids = tuple[list[int], tuple[int, ...]]
"""The cluster's processes on this machine (this one included) and those of them with a nanny."""
LoadWatch = Callable[[Pids], Callable[[], tuple[dict[str, float | None], bool | None]]]
"""``watch(pids)`` reads the machine now and returns ``finish()``, which reads it again and gives the
outside load in between (metric -> value, None: not measured) and whether it is above the
thresholds (None: not measured), the processes ``pids`` not counted as outside."""

DEFAULT_N = 1024
"""Matrix side: one single-thread float64 product takes tens of milliseconds on a current core."""
DEFAULT_ROUNDS = 7
"""Interleaved rounds: each ``k``'s figure is known from this many repeats (5 at least for an interval)."""
DEFAULT_INNER = 3
"""Timed iterations per ``k`` and round (after one warm-up); the round keeps their median."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def concurrency_ceiling(
    max_k: int | None = None,
    *,
    n: int = DEFAULT_N,
    rounds: int = DEFAULT_ROUNDS,
    inner: int = DEFAULT_INNER,
    pids: Pids | None = None,
    watch: LoadWatch | None = None,
) -> ConcurrencyCeiling:
    """Flop/s of ``k`` single-thread matmuls at once, ``k = 1 ... max_k``, over interleaved rounds.

    Parameters
    ----------
    max_k : int, optional
        Most products at once; default: :func:`usable_cores`.
    n : int, default 1024
        Matrix side.
    rounds : int, default 7
        Interleaved rounds (repeats of each ``k``).
    inner : int, default 3
        Timed iterations per ``k`` and round.
    pids : (list of int, tuple of int), optional
        The cluster's processes on this machine and those of them with a nanny
        (:func:`cluster_pids`), whose CPU is not outside load; this process is always counted.
    watch : LoadWatch, optional
        Reads the outside load over the probe; without it the load is not measured.
    """
    max_k = usable_cores() if max_k is None else max_k
    for name, value, least in (("max_k", max_k, 1), ("n", n, 1), ("rounds", rounds, 1), ("inner", inner, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ParameterError(name, value, f"an integer >= {least}")
    finish = start_watch(watch, pids)
    rates = _rounds(max_k, n, rounds, inner)
    load, under = finish()
    return ConcurrencyCeiling(
        n=n,
        rounds=rounds,
        rates={k: tuple(v) for k, v in rates.items()},
        host=socket.gethostname(),
        load=load,
        under_load=under,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def _rounds(max_k: int, n: int, rounds: int, inner: int) -> dict[int, list[float]]:
    import numpy as np
    from threadpoolctl import threadpool_limits

    ks = list(range(1, max_k + 1))
    rates: dict[int, list[float]] = {k: [] for k in ks}
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(rounds):
            for k in ks if r % 2 == 0 else ks[::-1]:
                spans = run_kernel(np, "matmul", n, repeats=inner, threads=k)
                rates[k].append(statistics.median(spans.rates()))
    return rates


def with_self(pids: Pids | None) -> Pids:
    """``pids`` with this process among the cluster's."""
    own, nannied = pids if pids is not None else ([], ())
    return sorted({os.getpid(), *own}), tuple(nannied)


def start_watch(
    watch: LoadWatch | None, pids: Pids | None
) -> Callable[[], tuple[dict[str, float | None], bool | None]]:
    """``watch(pids)`` with this process counted as the cluster's; without a watch, a ``finish``
    that says the load was not measured."""
    if watch is None:
        return lambda: ({}, None)
    return watch(with_self(pids))


def cluster_pids(client: Client | None) -> Pids:
    """The scheduler's and workers' processes on this machine, and the workers among them (their
    nannies are the cluster's too); empty when they cannot be asked."""
    if client is None:
        return [], ()
    here = socket.gethostname()
    try:
        workers = [pid for host, pid in client.run(_host_pid).values() if host == here]
        host, pid = client.run_on_scheduler(_host_pid)
    except Exception:  # noqa: BLE001 - e.g. run_on_scheduler forbidden: their CPU counts as outside
        return [], ()
    return sorted({*workers, *([pid] if host == here else [])}), tuple(workers)


def _host_pid() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def load_words(load: dict[str, float | None], under: bool | None) -> str:
    """The outside load over a probe in words, e.g. ``"other processes used 0.05 cores, load average 0.4"``."""
    if not load:
        return "outside load not measured"
    outside, avg = load.get("outside_cpu_percent"), load.get("loadavg_1m")
    said = [
        "outside CPU not measured" if outside is None else f"other processes used {outside / 100:.2f} cores",
        None if avg is None else f"load average {avg:.2f}",
    ]
    text = ", ".join(s for s in said if s)
    return f"taken under outside load ({text})" if under else text
