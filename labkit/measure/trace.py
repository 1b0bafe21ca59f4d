"""A trial's trace: every task of a run with its worker, thread, compute and transfer intervals,
result size and dependencies, and the cluster it ran on, compact enough to store with the trial.

>>> with TraceRecorder(lab) as rec:                        # doctest: +SKIP
...     x.sum().compute()                                  # the timed run
>>> trace = rec.trace()                                    # doctest: +SKIP
>>> Trace.from_bytes(trace.to_bytes()).tasks               # doctest: +SKIP
1234

A small scheduler plugin (added on first use, idle while no recorder is open) keeps, for
each task that finishes while a recorder is open, what the scheduler already knows at that
moment: the worker and thread that ran it, its ``startstops`` (compute, transfers of its
inputs, spill reads and writes), its result's size, its dependencies and its priority
(``dask.order``'s). Dependencies that are not tasks of the trace (inputs persisted before
the run) are kept as *inputs*, with their size and the worker holding them. On leaving, the
recorder reads those records and each worker's ``transfer_incoming_log`` (the measured
worker-to-worker bandwidth) and closes its window on the scheduler.

Times are kept relative to the recorder's start, in microseconds, and the whole trace is
zlib-compressed JSON of columns: a 10,000-task graph's trace takes a few hundred kB.

The per-task overhead is the mean gap, on one thread, between a task's end and the start
of the next task that was already ready then (its inputs were all in memory): what the
scheduler and the worker spend between tasks, as Beránek and Böhm measure it. Worker and
client clocks are taken to agree (true on one machine; across machines, their skew enters
the intervals).
"""

from __future__ import annotations

import json
import statistics
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.common.errors import ClusterError, DataError

#: The scheduler plugin's name.
PLUGIN = "labkit-trace"
#: What a trace holds, by version (a stored trace of another version is refused, not misread).
VERSION = 1
_IO = {"transfer": 0, "disk-read": 1, "disk-write": 2}


@dataclass
class Trace:
    """The tasks of one run and the cluster they ran on (times in seconds from the run's start).

    Tasks are columns, one entry per task: ``prefix`` (an index into ``prefixes``, the
    task's name without its key), ``worker`` (into ``workers``), ``thread`` (a small number per
    worker), ``start`` and ``stop`` of its compute, ``nbytes`` of its result and ``priority``
    (its rank in Dask's order). ``dep_ptr``/``dep_idx`` hold its dependencies (CSR: task ``i``
    depends on ``dep_idx[dep_ptr[i]:dep_ptr[i+1]]``; an index ``>= tasks`` is input
    ``index - tasks``). ``io`` lists ``[task, kind, start, stop]`` of each transfer (kind 0),
    spill read (1) and write (2). ``inputs`` are ``[nbytes, worker]`` (worker -1: not known).
    """

    prefixes: list[str]
    prefix: list[int]
    worker: list[int]
    thread: list[int]
    start: list[float]
    stop: list[float]
    nbytes: list[int]
    priority: list[int]
    dep_ptr: list[int]
    dep_idx: list[int]
    io: list[list[float]]
    inputs: list[list[int]]
    workers: list[dict[str, Any]]
    bandwidth: dict[str, Any] = field(default_factory=dict)
    overhead_s: float | None = None
    wall_s: float | None = None
    version: int = VERSION
    #: Whether the traced trial ran under outside load (set by whoever reads it with its trial).
    under_load: bool | None = None

    @property
    def tasks(self) -> int:
        return len(self.start)

    @property
    def span_s(self) -> float:
        """First compute start to last compute stop (0 for an empty trace)."""
        return max(self.stop) - min(self.start) if self.start else 0.0

    def deps(self, i: int) -> list[int]:
        """Task ``i``'s dependencies (indices ``>= tasks`` are inputs)."""
        return self.dep_idx[self.dep_ptr[i] : self.dep_ptr[i + 1]]

    def to_bytes(self) -> bytes:
        """The trace as zlib-compressed JSON, times in whole microseconds."""
        d = asdict(self)
        for k in ("start", "stop"):
            d[k] = [round(t * 1e6) for t in d[k]]
        d["io"] = [[int(a), int(b), round(c * 1e6), round(e * 1e6)] for a, b, c, e in d["io"]]
        return zlib.compress(json.dumps(d, separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> Trace:
        """A trace back from :meth:`to_bytes`."""
        try:
            d = json.loads(zlib.decompress(data))
        except (zlib.error, ValueError, TypeError) as e:
            raise DataError(f"not a labkit trace: {e}") from None
        if d.get("version") != VERSION:
            raise DataError(f"a trace of version {d.get('version')}; this labkit reads version {VERSION}")
        for k in ("start", "stop"):
            d[k] = [t / 1e6 for t in d[k]]
        d["io"] = [[a, b, c / 1e6, e / 1e6] for a, b, c, e in d["io"]]
        return cls(**d)


def per_task_overhead(trace: Trace) -> float | None:
    """The mean gap on a thread between a task's end and the next ready task's start (None:
    no such pair, e.g. every thread ran one task)."""
    done = {}
    for i in range(trace.tasks):
        done[i] = trace.stop[i]
    by_thread: dict[tuple[int, int], list[int]] = {}
    for i in range(trace.tasks):
        by_thread.setdefault((trace.worker[i], trace.thread[i]), []).append(i)
    gaps = []
    for ids in by_thread.values():
        ids.sort(key=lambda i: trace.start[i])
        for a, b in zip(ids, ids[1:]):
            ready = max((done[d] for d in trace.deps(b) if d < trace.tasks), default=-1.0)
            if ready <= trace.stop[a] and trace.start[b] >= trace.stop[a]:
                gaps.append(trace.start[b] - trace.stop[a])
    return statistics.fmean(gaps) if gaps else None


class TraceRecorder:
    """Record the tasks that finish while the block runs (see the module's docstring).

    Parameters
    ----------
    lab : Lab or distributed.Client
        Where the work runs.

    Entering and leaving cost a scheduler round trip each, leaving also one to every worker
    (their transfer logs): keep them outside the timed region. :meth:`trace` raises
    :class:`~labkit.common.errors.ClusterError` where the scheduler could not be asked.
    """

    def __init__(self, lab: Any) -> None:
        self.client = getattr(lab, "client", lab)
        self.t0 = 0.0
        self.t1 = 0.0
        self._first: int | None = None
        self._raw: dict[str, Any] | None = None
        self._logs: dict[str, list[dict[str, Any]]] = {}
        self._error: Exception | None = None

    def __enter__(self) -> TraceRecorder:
        try:
            self._first = self.client.run_on_scheduler(_open_scheduler(), name=PLUGIN)
        except Exception as e:  # noqa: BLE001 - a trace never fails a trial
            self._error = e
        self.t0 = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.t1 = time.time()
        if self._first is None:
            return
        try:
            self._raw = self.client.run_on_scheduler(_close_scheduler(), name=PLUGIN, first=self._first)
            self._logs = self.client.run(_transfer_log, since=self.t0)
        except Exception as e:  # noqa: BLE001
            self._error = e

    def trace(self, wall_s: float | None = None) -> Trace:
        """The block's trace; ``wall_s`` is the run's own wall time where it was timed apart."""
        if self._raw is None:
            raise ClusterError(f"no trace: the scheduler could not be asked ({self._error})")
        return build_trace(self._raw, self._logs, self.t0, wall_s if wall_s is not None else self.t1 - self.t0)


def build_trace(raw: dict[str, Any], logs: dict[str, list[dict[str, Any]]], t0: float, wall_s: float) -> Trace:
    """A :class:`Trace` from the scheduler's records and the workers' transfer logs."""
    from dask.utils import key_split

    records, workers = raw["records"], raw["workers"]
    addresses = [w["address"] for w in workers]
    where = {a: i for i, a in enumerate(addresses)}
    index = {r["key"]: i for i, r in enumerate(records)}
    prefixes: dict[str, int] = {}
    threads: dict[tuple[int, Any], int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in ("prefix", "worker", "thread", "start", "stop", "nbytes")}
    dep_ptr, dep_idx, io, inputs, input_of = [0], [], [], [], {}
    for i, r in enumerate(records):
        w = where.setdefault(r["worker"], len(addresses))
        if w == len(addresses):
            addresses.append(r["worker"])
            workers.append({"address": r["worker"], "threads": 1, "memory_limit": None})
        th = threads.setdefault((w, r["thread"]), sum(1 for k in threads if k[0] == w))
        compute = [s for s in r["startstops"] if s["action"] == "compute"] or r["startstops"][-1:]
        cols["prefix"].append(prefixes.setdefault(key_split(r["key"]), len(prefixes)))
        cols["worker"].append(w)
        cols["thread"].append(th)
        cols["start"].append(min(s["start"] for s in compute) - t0)
        cols["stop"].append(max(s["stop"] for s in compute) - t0)
        cols["nbytes"].append(int(r["nbytes"] or 0))
        for s in r["startstops"]:
            if s["action"] in _IO:
                io.append([i, _IO[s["action"]], s["start"] - t0, s["stop"] - t0])
        for dep, nbytes, holder in r["deps"]:
            if dep in index:
                dep_idx.append(index[dep])
                continue
            if dep not in input_of:
                input_of[dep] = len(inputs)
                inputs.append([int(nbytes or 0), where.get(holder, -1)])
            dep_idx.append(len(records) + input_of[dep])
        dep_ptr.append(len(dep_idx))
    order = sorted(range(len(records)), key=lambda i: records[i]["priority"])
    priority = [0] * len(records)
    for rank, i in enumerate(order):
        priority[i] = rank
    trace = Trace(
        list(prefixes), **cols, priority=priority, dep_ptr=dep_ptr, dep_idx=dep_idx, io=io, inputs=inputs,
        workers=workers, bandwidth=measured_bandwidth(logs), wall_s=wall_s,
    )  # fmt: skip
    trace.overhead_s = per_task_overhead(trace)
    return trace


def measured_bandwidth(logs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Worker-to-worker bandwidth from the workers' transfer logs: bytes over seconds of all
    transfers, the median transfer's latency floor; ``bytes_per_s`` None where none happened."""
    entries = [e for log in logs.values() for e in log]
    if not entries:
        return {"bytes_per_s": None, "transfers": 0, "note": "not measured: no transfer between workers"}
    total = sum(e["total"] for e in entries)
    seconds = sum(e["duration"] for e in entries)
    return {
        "bytes_per_s": total / seconds if seconds > 0 else None,
        "transfers": len(entries),
        "bytes": total,
        "median_s": statistics.median(e["duration"] for e in entries),
        "note": "measured: the workers' transfer logs",
    }


# Run on the scheduler and the workers; built in factories so cloudpickle sends them by value.


def _open_scheduler() -> Any:
    def open_(dask_scheduler: Any, name: str) -> int:
        from distributed.diagnostics.plugin import SchedulerPlugin

        class Recorder(SchedulerPlugin):
            def __init__(self) -> None:
                self.name, self.records, self.base, self.open = name, [], 0, 0

            def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
                if not self.open or start != "processing" or finish != "memory" or not kw.get("startstops"):
                    return
                ts = dask_scheduler.tasks.get(key)
                deps = []
                for d in ts.dependencies if ts is not None else ():
                    holder = next(iter(d.who_has)).address if d.who_has else None
                    deps.append((str(d.key), d.nbytes, holder))
                priority = list(ts.priority) if ts is not None and ts.priority else [len(self.records)]
                self.records.append(
                    {"key": str(key), "worker": kw.get("worker"), "thread": kw.get("thread"),
                     "startstops": kw["startstops"], "nbytes": kw.get("nbytes"), "deps": deps, "priority": priority}
                )  # fmt: skip

        plugin = dask_scheduler.plugins.get(name)
        if plugin is None:
            plugin = Recorder()
            dask_scheduler.add_plugin(plugin)
        plugin.open += 1
        return plugin.base + len(plugin.records)

    return open_


def _close_scheduler() -> Any:
    def close(dask_scheduler: Any, name: str, first: int) -> dict[str, Any]:
        plugin = dask_scheduler.plugins[name]
        records = plugin.records[max(0, first - plugin.base) :]
        plugin.open -= 1
        if plugin.open <= 0:  # nobody records: forget what was kept
            plugin.base += len(plugin.records)
            plugin.records, plugin.open = [], 0
        workers = [
            {"address": a, "threads": ws.nthreads, "memory_limit": ws.memory_limit}
            for a, ws in dask_scheduler.workers.items()
        ]
        return {"records": records, "workers": workers}

    return close


def _transfer_log(dask_worker: Any, since: float) -> list[dict[str, Any]]:
    return [
        {"start": e["start"], "duration": e["duration"], "total": e["total"], "who": e["who"]}
        for e in dask_worker.transfer_incoming_log
        if e["stop"] >= since
    ]
