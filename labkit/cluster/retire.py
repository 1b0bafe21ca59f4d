"""The lab's own worker processes: every one seen since the lab started, until it exits.

A worker the lab retires (a scale-down) leaves the scheduler at once but its process may take
seconds to exit, still using CPU; one the lab starts uses CPU before the scheduler lists it.
Both are the lab's, not someone else's load. :func:`remember` keeps the pids of the workers
(per scheduler, per host) as they are seen; :func:`known` gives those still running (an
exited one is pruned; on this machine a pid reused by another process is told apart by its
start time). :func:`settle` is what :meth:`Lab.scale <labkit.cluster.lab.Lab.scale>` waits
for after a rescale: the retired processes gone and the new workers idle, within a bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from labkit.common.scheduler import run_on_scheduler

#: The longest wait, after a rescale, for retired workers to exit and new ones to be idle.
SETTLE_S = 10.0

_lock = threading.Lock()
_seen: dict[str, dict[tuple[str, int], float | None]] = {}  # scheduler -> (host, pid) -> start time here


def _key(client: Any) -> str:
    return str(getattr(getattr(client, "scheduler", None), "address", None) or id(client))


def local_hosts() -> set[str]:
    """Names and addresses of this machine."""
    import socket

    import psutil

    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    return names | {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}


def _started(pid: int) -> float | None:
    """The start time of a process on this machine (None: gone)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def remember(client: Any, processes: Iterable[tuple[str, int]], here: set[str]) -> None:
    """Keep ``(host, pid)`` of worker processes as the lab's own (``here``: this machine's names)."""
    with _lock:
        seen = _seen.setdefault(_key(client), {})
        for host, pid in processes:
            if not pid or (host, pid) in seen:
                continue
            if host not in here:
                seen[(host, pid)] = None
            elif (t := _started(pid)) is not None:
                seen[(host, pid)] = t


def known(client: Any, here: set[str]) -> list[tuple[str, int]]:
    """``(host, pid)`` of the worker processes seen so far that still run (those on this
    machine checked now; those elsewhere until :func:`prune` says they are gone)."""
    with _lock:
        seen = _seen.get(_key(client), {})
        for (host, pid), t in list(seen.items()):
            if host in here and (t is None or _started(pid) != t):
                del seen[(host, pid)]
        return sorted(seen)


def prune(client: Any, host: str, alive: Iterable[int]) -> None:
    """Forget the processes on another machine that a reading there did not find."""
    alive = set(alive)
    with _lock:
        seen = _seen.get(_key(client), {})
        for h, pid in [k for k in seen if k[0] == host and k[1] not in alive]:
            del seen[(h, pid)]


def spawned(client: Any) -> list[int]:
    """Pids of the worker processes the nannies of an in-process cluster (a LocalCluster) have
    spawned, including those the scheduler does not list yet (starting) or any more (retiring).

    A SpecCluster adds a new worker to ``cluster.workers`` only once it has started, and its
    process spends that second or two importing at a full core: the nannies it has created
    (``cluster._created``, Dask's own record of them) are read too, so that a starting worker
    is the lab's from its first moment, not someone else's load."""
    cluster = getattr(client, "cluster", None)
    try:
        nannies = [*getattr(cluster, "workers", {}).values(), *list(getattr(cluster, "_created", ()))]
    except Exception:  # noqa: BLE001 - changed meanwhile by the event loop: none this time
        return []
    pids = [getattr(getattr(n, "process", None), "pid", None) for n in nannies]
    return sorted({p for p in pids if isinstance(p, int) and p > 0})


def processes(client: Any, timeout: float = 5.0) -> dict[str, tuple[str, int, int]]:
    """``address -> (host, pid, tasks processing)`` of every worker, as the scheduler knows them."""

    def workers(dask_scheduler: Any) -> dict[str, Any]:  # nested: cloudpickle sends it by value
        return {a: (ws.host, ws.pid, len(ws.processing)) for a, ws in dask_scheduler.workers.items()}

    return run_on_scheduler(client, workers, timeout=timeout)


def workers_now(client: Any) -> dict[str, tuple[str, int, int]]:
    """:func:`processes`, or nothing where the scheduler cannot be asked (then nothing is waited for)."""
    try:
        return processes(client)
    except Exception:  # noqa: BLE001 - e.g. run_on_scheduler forbidden
        return {}


def settle(client: Any, before: dict[str, tuple[str, int, int]], bound: float = SETTLE_S) -> str | None:
    """Wait, at most ``bound`` seconds, until the worker processes of ``before`` (the workers
    before a rescale) that left have exited on this machine and every worker is idle. None
    when they did; else a sentence saying what was still going on."""
    here = local_hosts()
    remember(client, [(h, p) for h, p, _ in before.values()], here)
    deadline = time.monotonic() + bound
    while True:
        try:
            now = processes(client)
        except Exception:  # noqa: BLE001 - e.g. run_on_scheduler forbidden: cannot tell, do not wait
            return None
        remember(client, [(h, p) for h, p, _ in now.values()], here)
        current = {(h, p) for h, p, _ in now.values()}
        left = [p for h, p in known(client, here) if h in here and (h, p) not in current]
        left += [p for p in spawned(client) if p not in {p for _, p in current} and p not in left]
        busy = sorted(a for a, (_, _, n) in now.items() if n)
        if not left and not busy:
            return None
        if time.monotonic() >= deadline:
            what = [f"retired worker process(es) {', '.join(map(str, sorted(left)))} still running"] if left else []
            what += [f"worker(s) {', '.join(busy)} still busy"] if busy else []
            return f"after the rescale, {' and '.join(what)} after {bound:g} s; the next trials were timed anyway"
        time.sleep(0.05)


def drop_dead_slots(cluster: Any) -> int:
    """Drop the worker slots of a cluster object (a SpecCluster such as LocalCluster) whose
    worker the scheduler does not list: a nanny that could not restart its worker process
    keeps its slot with no worker in it, and ``cluster.scale`` to a count the slots already
    meet starts none. Scaling to the workers the scheduler lists removes such slots first
    (Dask drops slots not yet launched before running ones); a later ``scale(n)`` fills new
    ones. The number of slots dropped (0 where the cluster keeps no slots)."""
    slots = getattr(cluster, "worker_spec", None)
    if not slots:
        return 0
    listed = {w.get("name") for w in cluster.scheduler_info.get("workers", {}).values()}
    dead = len([name for name in slots if name not in listed])
    if dead:
        cluster.scale(len(slots) - dead)
    return dead


def slots_settled(cluster: Any, timeout: float) -> bool:
    """Wait until a cluster object's workers are its slots, no more (those of dropped slots
    closed: a nanny that restarted its worker late, after its slot was dropped, would
    otherwise have that worker join and leave during the next timed run); whether they are.
    True at once for a cluster that keeps no slots."""
    import time

    slots = getattr(cluster, "worker_spec", None)
    deadline = time.monotonic() + timeout
    while slots is not None and set(getattr(cluster, "workers", {})) - set(slots):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


_LAB = ("labkit", "papermill", "jupyter-lab", "jupyter-server", "jupyter-notebook", "jupyterlab", "jupyter_server")


def _runs_the_lab(proc: Any) -> bool:
    """Whether a process is ``labkit`` (``labkit run``), papermill or a Jupyter server, by its program."""
    import os

    words = [os.path.basename(a).removesuffix(".exe") for a in proc.cmdline()[:4]] + [proc.name()]
    return any(w.split(".")[0] in _LAB for w in words)


def lab_parents() -> list[int]:
    """Pids of the processes above this one that run the lab: the chain of parents up to and
    including a ``labkit``/``papermill`` process (``labkit run`` and papermill's engine) or a
    Jupyter server (or, in a kernel a Jupyter server started, ``JPY_SESSION_NAME`` set, its
    parent). None where no such process is above it: a shell or an IDE is not the lab's."""
    import os

    import psutil

    chain: list[int] = []
    try:
        proc = psutil.Process().parent()
        while proc is not None and proc.pid > 1 and len(chain) < 12:
            chain.append(proc.pid)
            if _runs_the_lab(proc):
                return chain
            proc = proc.parent()
    except psutil.Error:
        pass
    return chain[:1] if os.environ.get("JPY_SESSION_NAME") else []
