"""The replay engine: a task graph with measured durations run on a virtual cluster, by events.

Why an engine of its own rather than simpy: the only events are "a task ends" (transfers
and spill reads are charged when a task is placed, as times, not as processes), so a heap
of end times is the whole simulator, about a hundred lines that are deterministic, checked
exactly (tests/test_whatif.py: list-scheduling bounds over random graphs) and fast enough to
replay a 10,000-task graph the dozens of times an interval needs. simpy would add a
dependency and a coroutine per task for the same schedule.

The policy, after Dask's documented scheduling
(https://distributed.dask.org/en/stable/scheduling-policies.html):

- **Order.** Ready tasks run in the graph's priority (``dask.order``'s, as the scheduler
  recorded it in the trace); a thread never idles while a task is ready (Dask's workers
  take the next ready task at once; root tasks are queued on the scheduler and sent as
  threads free up).
- **Placement.** A ready task goes to the free thread where it can start earliest: the
  worker that already holds most of its inputs, since every input held elsewhere must first
  travel (``latency_s + nbytes / bandwidth``, each worker's incoming link carrying one
  transfer at a time), which is Dask's ``decide_worker`` objective restricted to idle
  threads. Ties go to the worker with the most free threads, then the lowest index.
- **Overhead.** Each task occupies its thread ``overhead_s`` longer (the scheduler's and the
  worker's time per task).
- **Memory.** Results stay in a worker's memory until every task that needs them has run;
  past ``spill_at`` × ``memory_limit`` (Dask's ``distributed.worker.memory.target``) the
  oldest results are written to disk at ``disk_bandwidth``, which the task that pushed
  memory over pays, and read back by the next task that needs them.

Where it departs from Dask: a thread is held while its task's inputs travel (Dask lets the
thread run other work meanwhile); no work stealing, no pausing at the ``pause`` threshold,
no scheduler-wide limit on tasks per second; inputs persisted before the run are spread over
the virtual workers round-robin (on the traced cluster's own shape, where the trace says).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from labkit.common.errors import ParameterError


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
    """

    workers: int
    threads: int = 1
    bandwidth: float | None = None
    latency_s: float = 0.0
    memory_limit: float | None = None
    overhead_s: float = 0.0
    disk_bandwidth: float = 500e6
    spill_at: float = 0.6

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
        if not (isinstance(self.spill_at, (int, float)) and 0 < self.spill_at <= 1):
            raise ParameterError("spill_at", self.spill_at, "a share of the memory limit, > 0 and <= 1")

    @property
    def slots(self) -> int:
        return self.workers * self.threads


@dataclass
class Graph:
    """What the engine replays: per task its duration (s), dependencies (an index ``>= len``
    names input ``index - len``), result bytes and priority rank; inputs as ``(nbytes, worker)``."""

    durations: list[float]
    deps: list[list[int]]
    nbytes: list[int] = field(default_factory=list)
    priority: list[int] = field(default_factory=list)
    inputs: list[tuple[int, int]] = field(default_factory=list)

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


class _Replay:
    def __init__(self, g: Graph, c: VirtualCluster, durations: list[float]) -> None:
        n, self.g, self.c, self.d = len(g.durations), g, c, durations
        self.n = n
        self.left = [sum(1 for d in deps if d < n) for deps in g.deps]
        self.users = [0] * (n + len(g.inputs))
        self.dependents: list[list[int]] = [[] for _ in range(n)]
        for i, deps in enumerate(g.deps):
            for d in deps:
                self.users[d] += 1
                if d < n:
                    self.dependents[d].append(i)
        own = {w for _, w in g.inputs}
        self.where: dict[int, set[int]] = {
            n + j: {w if 0 <= w < c.workers and len(own) <= c.workers else j % c.workers}
            for j, (_, w) in enumerate(g.inputs)
        }
        self.sizes = list(g.nbytes) + [b for b, _ in g.inputs]
        self.free = [c.threads] * c.workers
        self.link = [0.0] * c.workers
        self.memory = [0.0] * c.workers
        self.held: list[dict[int, None]] = [{} for _ in range(c.workers)]  # in memory, oldest first
        self.spilt: list[set[int]] = [set() for _ in range(c.workers)]
        self.start, self.worker = [0.0] * n, [-1] * n
        self.moved = self.spilled = 0.0

    def run(self) -> Schedule:
        ready = [(self.g.priority[i], i) for i in range(self.n) if self.left[i] == 0]
        heapq.heapify(ready)
        events: list[tuple[float, int, int]] = []
        now, end = 0.0, 0.0
        while ready or events:
            while ready and any(self.free):
                _, i = heapq.heappop(ready)
                w, begin, finish = self._place(i, now)
                self.start[i], self.worker[i] = begin, w
                self.free[w] -= 1
                heapq.heappush(events, (finish, i, w))
            if not events:
                break
            now, i, w = heapq.heappop(events)
            end = max(end, now)
            self._done(i, w, ready)
            while events and events[0][0] == now:
                _, i, w = heapq.heappop(events)
                self._done(i, w, ready)
        if any(x > 0 for x in self.left):
            raise ParameterError("graph", self.n, "an acyclic graph (its dependencies hold a cycle)")
        return Schedule(end, self.start, self.worker, self.moved, self.spilled)

    def _place(self, i: int, now: float) -> tuple[int, float, float]:
        """The free worker where task ``i`` starts earliest; its start and end there (and the
        transfers, spill reads and writes it costs, booked)."""
        best = None
        for w in range(self.c.workers):
            if self.free[w]:
                ready_at = self._inputs_at(i, w, now, book=False)
                key = (ready_at, -self.free[w], w)
                best = key if best is None or key < best else best
        assert best is not None
        w = best[2]
        ready_at = self._inputs_at(i, w, now, book=True)
        write = self._reserve(w, i)
        return w, now, ready_at + self.c.overhead_s + self.d[i] + write

    def _inputs_at(self, i: int, w: int, now: float, *, book: bool) -> float:
        """When task ``i``'s inputs are all on worker ``w`` (booking the link and the reads)."""
        c, at, link = self.c, now, self.link[w]
        for k in self.g.deps[i]:
            size = self.sizes[k]
            holders = self.where.get(k, set())
            read = size / c.disk_bandwidth if (w in holders and k in self.spilt[w]) else 0.0
            if w in holders:
                at = max(at, now + read)
                if book and read:
                    self._unspill(w, k)
                continue
            if c.bandwidth is None:
                continue
            src = next(iter(holders)) if holders else -1
            read = size / c.disk_bandwidth if src >= 0 and k in self.spilt[src] else 0.0
            link = max(link, now + read) + size / c.bandwidth
            at = max(at, link + c.latency_s)
            if book:
                self.moved += size
                self.where.setdefault(k, set()).add(w)
                self._hold(w, k)
        if book:
            self.link[w] = link
        return at

    def _hold(self, w: int, k: int) -> None:
        self.held[w][k] = None
        self.memory[w] += self.sizes[k]

    def _unspill(self, w: int, k: int) -> None:
        self.spilt[w].discard(k)
        self._hold(w, k)

    def _reserve(self, w: int, i: int) -> float:
        """Room for task ``i``'s result on ``w``: the seconds spent writing older results to disk."""
        limit = self.c.memory_limit
        if limit is None:
            return 0.0
        target, written = self.c.spill_at * limit, 0.0
        while self.memory[w] + self.sizes[i] > target and self.held[w]:
            k = next(iter(self.held[w]))
            del self.held[w][k]
            self.memory[w] -= self.sizes[k]
            self.spilt[w].add(k)
            written += self.sizes[k]
        self.spilled += written
        return written / self.c.disk_bandwidth

    def _done(self, i: int, w: int, ready: list[tuple[int, int]]) -> None:
        self.free[w] += 1
        self.where[i] = {w}
        self._hold(w, i)
        for j in self.dependents[i]:
            self.left[j] -= 1
            if self.left[j] == 0:
                heapq.heappush(ready, (self.g.priority[j], j))
        for k in self.g.deps[i]:
            self.users[k] -= 1
            if self.users[k] == 0 and k < self.n:  # no task needs it any more: released
                for h in self.where.pop(k, set()):
                    if k in self.held[h]:
                        del self.held[h][k]
                        self.memory[h] -= self.sizes[k]
                    self.spilt[h].discard(k)
