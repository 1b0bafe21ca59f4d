"""The replay engine: a task graph with measured durations run on a virtual cluster, by events.

Why an engine of its own rather than simpy: the events are "a task ends", "a task is ready
on the scheduler", "a task reaches its worker" and "its inputs are there" (transfers and
spill reads are charged as times, not as processes), so a heap of event times is the whole
simulator: deterministic, checked exactly (tests/test_whatif.py: list-scheduling bounds
over random graphs) and fast enough to replay a 10,000-task graph the dozens of times an
interval needs. simpy would add a dependency and a coroutine per task for the same schedule.

The policy, after Dask's documented scheduling
(https://distributed.dask.org/en/stable/scheduling-policies.html) and its code
(``decide_worker``, ``worker-saturation``):

- **Dispatch.** The scheduler's one thread hears of each task's end in turn, ``scheduler_s``
  each (where tasks end faster, they wait in line: Dask's per-task overhead as the cluster
  grows); a task is ready on a worker ``dispatch_s`` after the scheduler heard of its last
  input (the rest of the round trip: the report travelling, the answer back).
- **Root tasks** (no inputs) wait on the scheduler and go, in priority order (``dask.order``'s,
  as the trace recorded it), to the worker with the fewest tasks, while it has fewer than
  ``saturation`` × threads (Dask's queuing; rounded up): a thread that ends a task finds the
  next one waiting, and the one sent to refill the worker takes a dispatch to arrive.
- **Other tasks** go at once to the worker, among those holding an input, where they would
  start soonest: its queued work (``occupancy`` / threads) plus the bytes it lacks over the
  bandwidth, ties to the worker with less in memory, then the lowest index. Their missing
  inputs start to travel then, while the worker's threads run other tasks; each worker's
  incoming link carries one transfer at a time (``latency_s + nbytes / bandwidth``).
- **Threads.** A worker's free thread takes its highest-priority task whose inputs are there;
  each task holds its thread ``overhead_s`` longer than its own duration (what the scheduler
  and the worker spend between two tasks).
- **Memory** (:mod:`.holdings`): results stay in a worker's memory until every task that
  needs them has run; past ``spill_at`` × ``memory_limit`` the oldest spill to disk.
- **An instant network** (``bandwidth=None``): where data never has to move, the place of a
  task has nothing to weigh, so every task waits on the scheduler like a root task and goes to
  the first free thread; with ``dispatch_s`` 0 a worker gets one task per thread. With no
  overhead and no dispatch either, the replay is then a list schedule, which is what makes it
  exact: never below max(critical path, work / slots) and never above Graham's bound.

Where it departs from Dask: no work stealing (Dask's balances every second by default,
``distributed.scheduler.work-stealing-interval``, longer than most replayed runs), no pausing
at the ``pause`` threshold, no limit on transfers at once, the scheduler's estimate of a task's
duration is the task's own; inputs persisted before the run are spread over the virtual
workers round-robin (Dask spreads the tasks that make them over the workers with the fewest
tasks), except on a cluster of the traced one's worker count, where they stay where the
trace found them.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from labkit.common.errors import ParameterError

from .holdings import Holdings


def _positive(name: str, value: object, *, zero: bool = False, none: bool = False) -> None:
    if value is None and none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if not ok or value < 0 or (value == 0 and not zero):
        allowed = "a number >= 0" if zero else "a number > 0"
        raise ParameterError(name, value, allowed + (" or None" if none else ""))


@dataclass(frozen=True)
class VirtualCluster:
    """A cluster to replay on.

    Parameters
    ----------
    workers, threads : int
        Workers, and threads per worker.
    bandwidth : float or None
        Bytes per second between two workers; None: an instant network.
    latency_s : float, default 0
        Fixed time of each transfer between workers.
    memory_limit : float or None
        Bytes per worker; None: no limit (nothing spills).
    overhead_s : float, default 0
        Time each task holds its thread beyond its own duration.
    disk_bandwidth : float, default 500e6
        Bytes per second of spilling (write and read).
    spill_at : float, default 0.6
        Share of ``memory_limit`` past which results spill (Dask's ``memory.target``).
    dispatch_s : float, default 0
        From a task's last input ending to the task reaching a worker: the report to the
        scheduler and its message back (one round trip).
    saturation : float, default 1.1
        Tasks without inputs sent to a worker per thread (Dask's
        ``distributed.scheduler.worker-saturation``); with ``dispatch_s`` 0, one per thread.
    scheduler_s : float, default 0
        Time of the scheduler's one thread per task: it hears of a task's end after the ends
        before it, so where tasks end faster than it keeps up, dispatches wait in line.
    """

    workers: int
    threads: int = 1
    bandwidth: float | None = None
    latency_s: float = 0.0
    memory_limit: float | None = None
    overhead_s: float = 0.0
    disk_bandwidth: float = 500e6
    spill_at: float = 0.6
    dispatch_s: float = 0.0
    saturation: float = 1.1
    scheduler_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(name, value, "a whole number >= 1")
        _positive("bandwidth", self.bandwidth, none=True)
        _positive("latency_s", self.latency_s, zero=True)
        _positive("memory_limit", self.memory_limit, none=True)
        _positive("overhead_s", self.overhead_s, zero=True)
        _positive("disk_bandwidth", self.disk_bandwidth)
        _positive("dispatch_s", self.dispatch_s, zero=True)
        _positive("saturation", self.saturation)
        _positive("scheduler_s", self.scheduler_s, zero=True)
        if not (isinstance(self.spill_at, (int, float)) and 0 < self.spill_at <= 1):
            raise ParameterError("spill_at", self.spill_at, "a share of the memory limit, > 0 and <= 1")

    @property
    def slots(self) -> int:
        return self.workers * self.threads


@dataclass
class Graph:
    """What the engine replays: per task its duration (s), dependencies (an index ``>= len``
    names input ``index - len``), result bytes and priority rank; inputs as ``(nbytes, worker)``,
    ``workers`` the traced cluster's worker count (inputs keep their worker on a cluster of
    that many; on any other, they are spread round-robin, as a setup run there would make them)."""

    durations: list[float]
    deps: list[list[int]]
    nbytes: list[int] = field(default_factory=list)
    priority: list[int] = field(default_factory=list)
    inputs: list[tuple[int, int]] = field(default_factory=list)
    workers: int = 0

    def __post_init__(self) -> None:
        n = len(self.durations)
        self.nbytes = list(self.nbytes) or [0] * n
        self.priority = list(self.priority) or list(range(n))
        if len(self.deps) != n or len(self.nbytes) != n or len(self.priority) != n:
            raise ParameterError("graph", n, "one entry of deps, nbytes and priority per task")
        if any(d < 0 for d in self.durations):
            raise ParameterError("durations", min(self.durations), "durations >= 0")

    def critical_path(self) -> float:
        """The longest chain of durations (the graph must be acyclic, in any index order)."""
        finish: dict[int, float] = {}
        for i in _topological(self):
            finish[i] = self.durations[i] + max((finish[d] for d in self.deps[i] if d < len(self.durations)), default=0)
        return max(finish.values(), default=0.0)

    def work(self) -> float:
        return float(sum(self.durations))


def _topological(g: Graph) -> list[int]:
    n = len(g.durations)
    left = [sum(1 for d in deps if d < n) for deps in g.deps]
    users: list[list[int]] = [[] for _ in range(n)]
    for i, deps in enumerate(g.deps):
        for d in deps:
            if d < n:
                users[d].append(i)
    order, todo = [], [i for i in range(n) if left[i] == 0]
    while todo:
        i = todo.pop()
        order.append(i)
        for u in users[i]:
            left[u] -= 1
            if left[u] == 0:
                todo.append(u)
    if len(order) != n:
        raise ParameterError("graph", n, "an acyclic graph (its dependencies hold a cycle)")
    return order


@dataclass
class Schedule:
    """A replay's outcome: when the last task ended, and what moved."""

    makespan: float
    start: list[float]
    worker: list[int]
    transferred: float = 0.0
    spilled: float = 0.0


def simulate(graph: Graph, cluster: VirtualCluster, durations: list[float] | None = None) -> Schedule:
    """Replay ``graph`` on ``cluster`` (with ``durations`` in place of the graph's own)."""
    return _Replay(graph, cluster, graph.durations if durations is None else durations).run()


_END, _HEARD, _ARRIVE, _RELEASE, _SEND = 0, 1, 2, 3, 4


class _Replay:
    def __init__(self, g: Graph, c: VirtualCluster, durations: list[float]) -> None:
        n, self.g, self.c, self.d = len(g.durations), g, c, durations
        self.n, self.data = n, Holdings(g, c)
        self.left = [sum(1 for d in deps if d < n) for deps in g.deps]
        self.dependents: list[list[int]] = [[] for _ in range(n)]
        for i, deps in enumerate(g.deps):
            for d in deps:
                if d < n:
                    self.dependents[d].append(i)
        self.local = c.bandwidth is not None  # data has a place: Dask's locality rule applies
        self.cap = c.threads if c.dispatch_s == 0 else max(c.threads, math.ceil(c.saturation * c.threads))
        self.queued: list[tuple[int, int]] = []  # (priority, task): on the scheduler, waiting for room
        self.released = [0.0] * n
        self.runnable: list[list[tuple[int, int]]] = [[] for _ in range(c.workers)]  # inputs there
        self.sent = [0] * c.workers  # tasks on the worker, not ended (Dask's ``processing``)
        self.busy = [0] * c.workers
        self.occupancy = [0.0] * c.workers
        self.events: list[tuple[float, int, int, int]] = []  # (time, kind, task, worker)
        self.start, self.worker = [0.0] * n, [-1] * n
        self.scheduler_free = 0.0

    def run(self) -> Schedule:
        for i in range(self.n):
            if self.left[i] == 0:
                self._release(i, 0.0)
        now = end = 0.0
        while True:
            self._assign(now)
            self._run_ready(now)
            if not self.events:
                break
            now = self.events[0][0]
            while self.events and self.events[0][0] == now:
                _, kind, i, w = heapq.heappop(self.events)
                if kind == _END:
                    end = now
                    self._ended(i, w, now)
                elif kind == _HEARD:
                    self._heard(i, w, now)
                elif kind == _ARRIVE:
                    heapq.heappush(self.runnable[w], (self.g.priority[i], i))
                elif kind == _SEND:
                    self._send(i, w, now, counted=True)
                else:
                    self._release(i, now)
        if any(x > 0 for x in self.left):
            raise ParameterError("graph", self.n, "an acyclic graph (its dependencies hold a cycle)")
        return Schedule(end, self.start, self.worker, self.data.moved, self.data.spilled)

    def _release(self, i: int, now: float) -> None:
        """Task ``i`` is ready on the scheduler at ``now``: a task with inputs goes at once to a
        worker holding some (where a network makes place matter); others wait for room."""
        self.released[i] = now
        if self.local and self.g.deps[i]:
            self._send(i, self._decide(i), now)
        else:
            heapq.heappush(self.queued, (self.g.priority[i], i))

    def _decide(self, i: int) -> int:
        """Dask's ``decide_worker``: of the workers holding an input (all, where none does),
        the one where the task would start soonest, by queued work and bytes to move."""
        c, data = self.c, self.data
        candidates = data.holders(i) or set(range(c.workers))
        bw = c.bandwidth or math.inf
        return min(
            candidates, key=lambda w: (self.occupancy[w] / c.threads + data.missing(i, w) / bw, data.memory[w], w)
        )

    def _send(self, i: int, w: int, now: float, *, counted: bool = False) -> None:
        """Task ``i`` reaches worker ``w`` at ``now``; its inputs travel, then it may run there."""
        self.sent[w] += 0 if counted else 1
        self.occupancy[w] += self.d[i]
        at = self.data.inputs_at(i, w, now, book=True)
        if at > now:
            heapq.heappush(self.events, (at, _ARRIVE, i, w))
        else:
            heapq.heappush(self.runnable[w], (self.g.priority[i], i))

    def _assign(self, now: float) -> None:
        """Tasks waiting on the scheduler go, in priority order, to workers with room: fewer
        tasks than ``saturation`` × threads (Dask's queuing of root tasks). One that waited for
        that room reaches its worker a dispatch later (the report of the task that freed it)."""
        while self.queued:
            room = [w for w in range(self.c.workers) if self.sent[w] < self.cap]
            if not room:
                return
            _, i = heapq.heappop(self.queued)
            w = min(room, key=lambda w, i=i: (self.data.inputs_at(i, w, now, book=False), self.sent[w], w))
            waited = now > self.released[i]
            if waited and self.c.dispatch_s > 0:
                self.sent[w] += 1  # its room is taken while the message travels
                heapq.heappush(self.events, (now + self.c.dispatch_s, _SEND, i, w))
            else:
                self._send(i, w, now)

    def _run_ready(self, now: float) -> None:
        """Each worker's free threads take its runnable tasks, highest priority first."""
        for w in range(self.c.workers):
            while self.busy[w] < self.c.threads and self.runnable[w]:
                _, i = heapq.heappop(self.runnable[w])
                self.busy[w] += 1
                self.start[i], self.worker[i] = now, w
                finish = now + self.c.overhead_s + self.d[i] + self.data.reserve(w, i)
                heapq.heappush(self.events, (finish, _END, i, w))

    def _ended(self, i: int, w: int, now: float) -> None:
        """Task ``i`` ended: its thread is free and its result on ``w``; the scheduler hears of it
        once its one thread is through with the ends before (``scheduler_s`` each)."""
        self.busy[w] -= 1
        self.data.done(i, w)
        if self.c.scheduler_s == 0:
            self._heard(i, w, now)
            return
        self.scheduler_free = max(now, self.scheduler_free) + self.c.scheduler_s
        heapq.heappush(self.events, (self.scheduler_free, _HEARD, i, w))

    def _heard(self, i: int, w: int, now: float) -> None:
        """The scheduler knows task ``i`` ended: its worker has room, its dependents may be ready."""
        self.sent[w] -= 1
        self.occupancy[w] -= self.d[i]
        for j in self.dependents[i]:
            self.left[j] -= 1
            if self.left[j] == 0:
                if self.c.dispatch_s > 0:
                    heapq.heappush(self.events, (now + self.c.dispatch_s, _RELEASE, j, -1))
                else:
                    self._release(j, now)
