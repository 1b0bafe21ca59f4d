"""The whole host at once: every worker on one machine running a kernel together, for the node's ceiling.

Workers on one host share its memory bus (and its cores): each worker's own figure, measured
while the others are idle, overstates what all of them get together. Here every worker runs
the kernel with all its threads at the same moment, in two steps: first each worker's
threads build their inputs and run a warm-up, then wait; then every worker is sent the same
start times, one per iteration. The processes of one host share ``time.perf_counter``, so a
common start time is the barrier. Each iteration counts everything moved (or computed) over
the time from the first thread's start to the last one's end. Iterations are spaced by the
per-worker figures (a quarter longer than all workers' iterations run back to back would
take), so one iteration's stragglers seldom run into the next; the spread of starts (median
over iterations) is kept with the figures, so late starts show.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import LabkitError

from .kernels import COPY_ARRAYS, TRIAD_ARRAYS, Spans, run_kernel
from .records import MatmulResult, NodeCeiling, StreamResult

if TYPE_CHECKING:
    from distributed import Client

CLOCK_TOLERANCE_S = 0.005
"""Workers whose wall-minus-perf_counter clocks differ by more than this do not share a clock."""
START_LEAD_S = 0.2
"""Time between asking for the start times and the first start: enough for the message to reach every worker."""
WAIT_S = 120.0
"""The longest a worker's threads wait for their inputs or their start times."""


def host_identity() -> tuple[str, str, float]:
    """This process's host name, Linux boot id (``""`` elsewhere) and wall-minus-perf_counter clock offset."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return socket.gethostname(), boot, time.time() - time.perf_counter()


def node_ceiling(
    client: Client,
    workers: dict[str, tuple[int, StreamResult, MatmulResult]],
    nbytes: int,
    matmul_n: int,
    repeats: int,
) -> NodeCeiling:
    """Copy, triad and float64 matmul with every worker of one host running at once.

    Parameters
    ----------
    client : distributed.Client
    workers : dict
        Worker address -> (threads, its own memory figures, its own float64 matmul figures),
        from the per-worker probes; they size the iteration slots.
    nbytes, matmul_n, repeats : int
        Bytes per array on each worker, matrix side, timed iterations (as for the per-worker figures).

    Raises
    ------
    LabkitError
        With the reason, when fewer than 2 workers were probed, when they are on several
        hosts or do not share a clock, or when the start times reached a worker too late.
    """
    addrs = sorted(workers)
    host = _shared_host(client, addrs)
    threads = {a: workers[a][0] for a in addrs}
    alone = {  # seconds one iteration took each worker on its own (median)
        "copy": max(COPY_ARRAYS * m.nbytes / m.copy_median for _, m, _ in workers.values()),
        "triad": max(TRIAD_ARRAYS * m.nbytes / m.triad_median for _, m, _ in workers.values()),
        "matmul": max(t * 2.0 * f.n**3 / f.median for t, _, f in workers.values()),
    }
    rates, used, spreads = {}, {}, []
    for kernel, single in alone.items():
        size = matmul_n if kernel == "matmul" else nbytes
        rates[kernel], gaps = _run_together(client, addrs, kernel, size, repeats, threads, single)
        used[kernel] = len(gaps)
        spreads += gaps
    total = sum(threads.values())
    return NodeCeiling(
        host=host,
        workers=len(addrs),
        threads=total,
        memory=StreamResult(
            nbytes=nbytes * len(addrs),
            repeats=min(used["copy"], used["triad"]),
            threads=total,
            copy_best=max(rates["copy"]),
            copy_median=statistics.median(rates["copy"]),
            triad_best=max(rates["triad"]),
            triad_median=statistics.median(rates["triad"]),
        ),
        matmul=MatmulResult(
            n=matmul_n,
            dtype="float64",
            repeats=used["matmul"],
            threads=total,
            best=max(rates["matmul"]),
            median=statistics.median(rates["matmul"]),
        ),
        start_spread_s=statistics.median(spreads),
    )


def _shared_host(client: Client, addrs: list[str]) -> str:
    """The host name of the workers ``addrs``, once checked that they are at least 2, on one
    host, and share one clock (a LabkitError with the reason otherwise)."""
    if len(addrs) < 2:
        raise LabkitError(f"{len(addrs)} worker probed: a whole-node figure would repeat the worker's own")
    ids = client.run(host_identity, workers=addrs)
    hosts = {(name, boot) for name, boot, _ in ids.values()}
    if len(hosts) > 1:
        raise LabkitError(
            f"the workers are on {len(hosts)} hosts: a whole-node ceiling is measured only when every worker "
            "shares one host"
        )
    offsets = [offset for *_, offset in ids.values()]
    if max(offsets) - min(offsets) > CLOCK_TOLERANCE_S:
        raise LabkitError(
            f"the workers' clocks differ by {max(offsets) - min(offsets):.3g} s: they cannot be started together"
        )
    return next(iter(hosts))[0]


def _run_together(
    client: Client, addrs: list[str], kernel: str, size: int, repeats: int, threads: dict[str, int], single: float
) -> tuple[list[float], list[float]]:
    """Run ``kernel`` on every worker of ``addrs`` at once, ``repeats`` times: per iteration every worker
    started in time for, everything moved (or computed) per second and the spread of the threads'
    starts (see :func:`_combine`).

    ``single`` is the seconds one iteration took the slowest worker on its own: it sizes the slots.
    """
    token = uuid.uuid4().hex
    try:
        client.run(_prepare, token, kernel, size, repeats, threads, workers=addrs)
        # W workers sharing the host take at most ~W times one worker's time: slots leave 25% more.
        starts = _schedule(client, addrs[0], START_LEAD_S, 1.25 * len(addrs) * single + 0.005, repeats)
        done = client.run(_go, token, starts, workers=addrs)
    except BaseException:
        client.run(_abandon, token, workers=addrs)
        raise
    return _combine([spans for spans, _ in done.values()], starts, done)


def _schedule(client: Client, addr: str, lead: float, slot: float, repeats: int) -> list[float]:
    """Start times on the host's ``perf_counter`` clock: the first ``lead`` seconds from now, then one per ``slot``."""
    asked = time.perf_counter()
    now = client.run(time.perf_counter, workers=[addr])[addr]
    first = now + (time.perf_counter() - asked) + lead
    return [first + k * slot for k in range(repeats)]


@dataclass
class _Prepared:
    """A kernel set up on one worker, its threads waiting for their start times."""

    threads: int
    ready: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0
    plan: list[float] = field(default_factory=list)
    outcome: list[Any] = field(default_factory=list)
    runner: threading.Thread | None = None

    def starts(self) -> list[float]:
        """Called by each kernel thread once ready: blocks until :func:`_go` gives the start times."""
        with self.lock:
            self.waiting += 1
            if self.waiting == self.threads:
                self.ready.set()
        if not self.go.wait(WAIT_S):
            raise LabkitError(f"no start times came within {WAIT_S:g} s")
        return self.plan

    def fail(self, error: BaseException) -> None:
        """A thread failed: release the others (an empty plan stops them) and the waiting caller."""
        self.go.set()
        self.ready.set()


_PREPARED: dict[tuple[str, str], _Prepared] = {}


async def _prepare(
    token: str, kernel: str, size: int, repeats: int, threads: dict[str, int], dask_worker: Any = None
) -> float:
    """On a worker: its threads build their inputs and warm up, then wait; returns once all are ready.

    A coroutine, as is :func:`_go`: workers that share one event loop (a cluster of threads in
    one process) are then served at once, and a worker's event loop is not held meanwhile.
    """
    import numpy as np

    state = _Prepared(threads=threads.get(dask_worker.address, 1))

    def run() -> None:
        try:
            state.outcome.append(
                run_kernel(
                    np, kernel, size, repeats=repeats, threads=state.threads, starts=state.starts, on_error=state.fail
                )
            )
        except BaseException as e:  # noqa: BLE001 - handed to _go's caller
            state.outcome.append(e)
            state.ready.set()

    state.runner = threading.Thread(target=run, name="labkit-node-probe", daemon=True)
    _PREPARED[(token, dask_worker.address)] = state
    state.runner.start()
    if not await asyncio.to_thread(state.ready.wait, WAIT_S):
        raise LabkitError(f"the worker's threads were not ready within {WAIT_S:g} s")
    if state.go.is_set() or state.outcome:  # a thread failed
        _PREPARED.pop((token, dask_worker.address), None)
        await asyncio.to_thread(state.runner.join)
        raise state.outcome[0]
    return time.perf_counter()


async def _go(token: str, starts: list[float], dask_worker: Any = None) -> tuple[Spans, float]:
    """On a worker: hand the start times to its waiting threads; their spans, and when the times arrived."""
    arrived = time.perf_counter()
    state = _PREPARED.pop((token, dask_worker.address))
    state.plan[:] = starts
    state.go.set()
    if state.runner is not None:
        await asyncio.to_thread(state.runner.join)
    if isinstance(state.outcome[0], BaseException):
        raise state.outcome[0]
    return state.outcome[0], arrived


def _abandon(token: str, dask_worker: Any = None) -> None:
    """On a worker: release threads still waiting for start times (an empty plan makes them stop)."""
    state = _PREPARED.pop((token, dask_worker.address), None)
    if state is not None:
        state.go.set()


def _combine(
    spans: list[Spans], starts: list[float], done: dict[str, tuple[Spans, float]]
) -> tuple[list[float], list[float]]:
    """Per iteration every worker started in time for, everything moved over first start to last
    end, and the gap between the first and the last thread's start."""
    arrived = max(at for _, at in done.values())
    keep = [k for k, start in enumerate(starts) if start >= arrived]
    if not keep:
        raise LabkitError("the start times reached a worker after they had passed: the host is too busy")
    amount = sum(s.amount for s in spans)
    rates, gaps = [], []
    for k in keep:
        first = min(s.starts[k] for s in spans)
        rates.append(amount / (max(s.ends[k] for s in spans) - first))
        gaps.append(max(s.last_starts[k] for s in spans) - first)
    return rates, gaps
