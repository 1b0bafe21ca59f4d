"""Where a replay's data is: results and inputs on virtual workers, transfers, memory and spilling.

The replay engine (:mod:`.engine`) keeps the order of events; this part keeps the bytes:
which workers hold each result, when a task's inputs reach the worker it was sent to (each
worker's incoming link carries one transfer at a time, ``latency_s + nbytes / bandwidth``
each, reading a spilled input from the sender's disk first), what each worker holds in
memory, and what spills past ``spill_at`` × ``memory_limit`` (Dask's
``distributed.worker.memory.target``): the oldest results first, written at
``disk_bandwidth`` by the task whose result pushed memory over, read back by the next task
that needs them. A result leaves memory once every task that needs it has run.
"""

from __future__ import annotations

from typing import Any


class Holdings:
    """The bytes of one replay (see the module's docstring)."""

    def __init__(self, g: Any, c: Any) -> None:
        """``g``: the engine's Graph, ``c``: its VirtualCluster (:mod:`.engine`, which uses this)."""
        n = len(g.durations)
        self.n, self.g, self.c = n, g, c
        self.users = [0] * (n + len(g.inputs))
        for deps in g.deps:
            for d in deps:
                self.users[d] += 1
        home = g.workers == c.workers
        self.where: dict[int, set[int]] = {
            n + j: {w if home and 0 <= w < c.workers else j % c.workers} for j, (_, w) in enumerate(g.inputs)
        }
        self.sizes = list(g.nbytes) + [b for b, _ in g.inputs]
        self.link = [0.0] * c.workers
        self.memory = [0.0] * c.workers
        self.held: list[dict[int, None]] = [{} for _ in range(c.workers)]  # in memory, oldest first
        self.spilt: list[set[int]] = [set() for _ in range(c.workers)]
        self.moved = self.spilled = 0.0

    def holders(self, i: int) -> set[int]:
        """The workers that hold any input of task ``i``."""
        return {w for k in self.g.deps[i] for w in self.where.get(k, ())}

    def missing(self, i: int, w: int) -> float:
        """Bytes of task ``i``'s inputs that worker ``w`` does not hold."""
        return float(sum(self.sizes[k] for k in self.g.deps[i] if w not in self.where.get(k, ())))

    def inputs_at(self, i: int, w: int, now: float, *, book: bool) -> float:
        """When task ``i``'s inputs are all on worker ``w``, asked at ``now`` (booking the
        link, the transfers and the reads where ``book``)."""
        c, at, link = self.c, now, self.link[w]
        for k in self.g.deps[i]:
            size = self.sizes[k]
            holders = self.where.get(k, set())
            if w in holders:
                read = size / c.disk_bandwidth if k in self.spilt[w] else 0.0
                at = max(at, now + read)
                if book and read:
                    self.spilt[w].discard(k)
                    self.hold(w, k)
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
                self.hold(w, k)
        if book:
            self.link[w] = link
        return at

    def hold(self, w: int, k: int) -> None:
        self.held[w][k] = None
        self.memory[w] += self.sizes[k]

    def reserve(self, w: int, i: int) -> float:
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

    def done(self, i: int, w: int) -> None:
        """Task ``i`` ended on ``w``: its result is there; inputs no task needs any more are released."""
        self.where[i] = {w}
        self.hold(w, i)
        for k in self.g.deps[i]:
            self.users[k] -= 1
            if self.users[k] == 0 and k < self.n:
                for h in self.where.pop(k, set()):
                    if k in self.held[h]:
                        del self.held[h][k]
                        self.memory[h] -= self.sizes[k]
                    self.spilt[h].discard(k)
