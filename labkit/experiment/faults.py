"""Faults during a timed run: a worker lost mid-run, a worker restarted past its memory limit.

A trial during which a worker left the cluster is not a clean measurement of the worker
count it started with: Dask recomputed what the lost worker held, inside the timed region,
on fewer workers for a while. Such a trial is recorded with status ``"degraded"`` and the
reason (which workers were lost, how many workers it started and ended with), so that
analysis, which takes ``status == "ok"``, leaves it out, and the results say how many were
set aside. The sweep then waits for the cluster to regain its worker count before the next
run.

The lab sees a worker go while the run is still going: :func:`call_timed` asks the scheduler
every :data:`POLL_S` seconds, and as soon as a worker of the start is gone it cancels the
run's tasks and ends the trial as degraded, whatever the workload does (a task pinned to the
lost worker's address could otherwise wait for it forever). A worker its nanny restarted
past its memory limit is left to Dask, whose retries or KilledWorker say more. Every run has a time limit: the
Sweep's ``timeout_s`` where given, else :func:`default_limit` of the point's own times.

A worker whose memory passes Dask's terminate threshold is restarted by its nanny, which
logs a ``worker-restart-memory`` event on the scheduler; a trial that fails because its
workers died says so when such an event falls inside it.

>>> degraded_reason(["tcp://127.0.0.1:4001"], 2, 1, [])
'a worker left the cluster during the run (tcp://127.0.0.1:4001): 2 workers at its start, 1 at its end; what it held was recomputed inside the timed region'
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

from labkit.cluster import retire
from labkit.common.errors import ClusterError, TrialTimeout
from labkit.common.scheduler import scheduler_workers

logger = logging.getLogger("labkit.faults")

DEGRADED = "degraded"
POLL_S = 0.5
"""Seconds between two looks at the cluster's workers while a run goes on."""
FIRST_LIMIT_S = 600.0
"""The limit of a point's first run, before any of its own times are known."""
RESTART_WAIT_S = 30.0
"""How long a lost worker's nanny has to bring it back before a new worker takes its place."""


class WorkerLost(Exception):
    """A worker of the run's start left the cluster while the run went on."""

    def __init__(self, lost: list[str]) -> None:
        self.lost = lost
        super().__init__(f"worker(s) left the cluster during the run: {', '.join(lost)}")


def default_limit(times: list[float]) -> float:
    """The time limit of a run with no ``timeout_s``: 20 times the slowest run of its point so
    far (warm-ups included), and at least 60 s; :data:`FIRST_LIMIT_S` before any is known.

    >>> default_limit([]), default_limit([0.5, 1.2]), default_limit([10.0])
    (600.0, 60.0, 200.0)
    """
    return max(60.0, 20 * max(times)) if times else FIRST_LIMIT_S


MEMORY_EVENT = "worker-restart-memory"  # logged by distributed's nanny before it restarts a worker


class WorkerWatch:
    """The cluster's workers at the start of a run, to compare with those at its end."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.started = time.time()
        self.before = self._addresses()

    def _addresses(self) -> set[str] | None:
        try:
            return set(scheduler_workers(self.client))
        except Exception:  # noqa: BLE001 - a scheduler that cannot be asked: not measured
            return None

    def lost_now(self) -> list[str]:
        """The workers of the start that are gone now ([] where the scheduler cannot say)."""
        after = self._addresses()
        return sorted(self.before - after) if self.before is not None and after is not None else []

    def check(self) -> tuple[list[str], int | None, list[dict[str, Any]]]:
        """``(lost, workers_now, memory_restarts)``: the workers of the start that are gone
        (a restarted worker comes back under a new address), the count now, and the nanny's
        memory restarts since the start."""
        after = self._addresses()
        lost = sorted(self.before - after) if self.before is not None and after is not None else []
        return lost, None if after is None else len(after), memory_restarts(self.client, self.started)


def memory_restarts(client: Any, since: float) -> list[dict[str, Any]]:
    """The nanny's ``worker-restart-memory`` events since ``since`` (epoch seconds)."""
    try:
        events = client.get_events(MEMORY_EVENT)
    except Exception:  # noqa: BLE001 - an old or remote scheduler: none known
        return []
    return [dict(msg) for t, msg in events if t >= since - 0.5 and isinstance(msg, dict)]


def _memory_text(restarts: list[dict[str, Any]]) -> str:
    if not restarts:
        return ""
    who = ", ".join(sorted({str(r.get("worker")) for r in restarts}))
    return f"; the nanny restarted {who} past its memory limit (Dask's memory terminate threshold)"


def degraded_reason(lost: list[str], start: int, end: int | None, restarts: list[dict[str, Any]]) -> str:
    """Why a trial is degraded, in words."""
    workers = "a worker" if len(lost) == 1 else f"{len(lost)} workers"
    end_text = "not measured" if end is None else str(end)
    return (
        f"{workers} left the cluster during the run ({', '.join(lost)}): {start} workers at its start, "
        f"{end_text} at its end; what {'it' if len(lost) == 1 else 'they'} held was recomputed inside the timed region"
        + _memory_text(restarts)
    )


def failure_reason(error: str, restarts: list[dict[str, Any]]) -> str:
    """A failed run's error, with the memory restarts that fell inside it."""
    return error + _memory_text(restarts)


def restore_workers(lab: Any, n: int, timeout: float = 120.0) -> str:
    """Wait until the cluster has ``n`` workers again: "" when it has, else why not.

    A cluster the Lab owns is asked to scale; where a lost worker's nanny has not brought it
    back within :data:`RESTART_WAIT_S` (its restart failed), its slot is dropped and a new
    worker started in its place (:func:`~labkit.cluster.retire.drop_dead_slots`)."""
    try:
        if getattr(lab, "cluster", None) is None:
            lab.client.wait_for_workers(n, timeout=timeout)
            return ""
        try:
            lab.scale(n, timeout=RESTART_WAIT_S)
            return ""
        except ClusterError:
            if not retire.drop_dead_slots(lab.cluster):
                raise
        logger.warning(
            "a lost worker did not come back within %g s: a new one was started in its place", RESTART_WAIT_S
        )
        lab.scale(n, timeout=timeout)
        return "" if retire.slots_settled(lab.cluster, timeout) else "a dropped worker slot did not close"
    except Exception as e:  # noqa: BLE001 - said in the results; the sweep goes on with what it has
        return f"the cluster did not regain {n} workers: {type(e).__name__}: {e}"


def _cancel_new(lab: Any, before: set[Any]) -> list[Any]:
    """Cancel the futures this client made since ``before``: the point's inputs stay."""
    from distributed import Future

    client = lab.client
    started = [Future(k, client) for k in set(client.futures) - before]
    if started:
        client.cancel(started, force=True)
    return started


def call_timed(
    fn: Callable[[Any], Any], state: Any, timeout_s: float | None, lab: Any, watch: WorkerWatch | None = None
) -> tuple[Any, float]:
    """Run ``fn(state)``, timed with perf_counter; cancel its Dask work past ``timeout_s``
    (:class:`TrialTimeout`), as soon as a worker of ``watch``'s start is gone
    (:class:`WorkerLost`), or when the run is interrupted (Ctrl-C, Jupyter's interrupt)."""

    def timed() -> tuple[Any, float]:
        t0 = time.perf_counter()
        out = fn(state)
        return out, time.perf_counter() - t0

    before = set(lab.client.futures)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="labkit-trial")
    # Dask's span (and other annotations) live in a ContextVar, which a pool thread does
    # not inherit: run the trial in a copy of this context.
    future = pool.submit(contextvars.copy_context().run, timed)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                return future.result(timeout=wait)
            except concurrent.futures.TimeoutError:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                _timed_out(lab, before, timeout_s)
            lost = watch.lost_now() if watch is not None else []
            # A worker its nanny restarted past its memory limit: Dask retries its tasks or
            # raises KilledWorker, which says more than "lost" (and the limit still bounds it).
            if lost and not memory_restarts(lab.client, watch.started):
                _cancel_new(lab, before)
                raise WorkerLost(lost)
    except KeyboardInterrupt:
        _cancel_new(lab, before)  # the pool thread returns once its Dask work is cancelled
        raise
    finally:
        pool.shutdown(wait=False)


def _timed_out(lab: Any, before: set[str], timeout_s: float) -> None:
    _cancel_new(lab, before)
    note = "its tasks were cancelled"
    if not lab.wait_idle(max(10.0, timeout_s)):
        note += "; some still occupy worker threads, so later trials may queue behind them"
    raise TrialTimeout(f"run took longer than timeout_s={timeout_s:g} s; {note}") from None


def quietly(step: Callable[[], Any] | None) -> list[BaseException]:
    """Run a clean-up step; what it raised, as a list (empty when it did not)."""
    if step is None:
        return []
    try:
        step()
    except Exception as e:  # noqa: BLE001 - returned to the caller, which decides
        return [e]
    return []
