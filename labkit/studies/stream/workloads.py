"""Stream workload: records arrive at a set rate and are processed per record, in micro-batches,
or as one batch; the latency from each record's arrival to its result, and the throughput.

``records`` records arrive at ``rate`` records per second, evenly spaced
(``arrivals="uniform"``) or as a Poisson process (``"poisson"``, seeded). The client
plays the source: as soon as the last record of a batch of ``batch`` records has arrived,
it submits the batch, spread over the workers (one task per worker, or one per record if
the batch is smaller). ``batch=1`` is per-record processing, ``batch >= records`` one batch
of the whole stream. Each record is a vector of ``features`` floats, made on the worker
from a seed (no record data passes through the client), put through ``layers`` dense
``tanh`` layers. A record's latency runs from its arrival to the moment the client learns
that its task finished (``perf_counter`` on the client; the result stays on the worker).

The wall time of a run spans the whole stream, so throughput (records per second) is at
most about the arrival rate; where the rate outruns the cluster, batches queue, throughput stays
at what the cluster can do, and latency grows through the run. :meth:`StreamLatency.metrics`
gives, for the last run: ``latency_p50_s``, ``latency_p95_s``, ``latency_p99_s``,
``latency_max_s``, ``latency_mean_s``, ``records_per_s`` (first arrival to last result),
``latency_growth_s`` (the mean latency of the last tenth of the records, by arrival, less
that of the first tenth: near 0 while the cluster keeps up, growing with the stream once it
does not, negative for one batch, where the first records wait longest) and
``dispatch_lag_max_s`` (the most the client's submission trailed an arrival). The
client keeps one arrival and one latency per record (16 bytes each) to give exact
percentiles.

>>> arrival_times(4, rate=2.0, arrivals="uniform").tolist()
[0.0, 0.5, 1.0, 1.5]
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.workloads.registry import BaseWorkload, Work
from labkit.workloads.tables import partition_rows

ARRIVALS = ("uniform", "poisson")


@functools.lru_cache(maxsize=4)
def layer_weights(features: int) -> np.ndarray:
    """The dense layer's weights (scaled so that activations stay of order one)."""
    return np.random.default_rng(18).standard_normal((features, features)) / np.sqrt(features)


def process(first: int, count: int, features: int, layers: int) -> float:
    """Make records ``first .. first+count-1`` from their seed and put them through the layers;
    the sum of their scores."""
    x = np.random.default_rng([19, first]).standard_normal((count, features))
    w = layer_weights(features)
    for _ in range(layers):
        x = np.tanh(x @ w)
    return float(x.sum())


def arrival_times(records: int, rate: float, arrivals: str) -> np.ndarray:
    """Seconds from the start of the stream at which each record arrives."""
    if arrivals == "poisson":
        gaps = np.random.default_rng(20).exponential(1.0 / rate, records)
        return np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return np.arange(records) / rate


def latency_summary(latency: np.ndarray, arrival: np.ndarray, last_done: float) -> dict[str, float | None]:
    """Percentiles, throughput and the latency's trend through the run (see the module's notes).

    >>> s = latency_summary(np.array([0.1, 0.2, 0.3]), np.array([0.0, 1.0, 2.0]), 2.3)
    >>> round(s["latency_growth_s"], 3), round(s["records_per_s"], 3)
    (0.2, 1.304)
    """
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    by_arrival = latency[np.argsort(arrival, kind="stable")]
    tenth = max(1, len(latency) // 10)
    return {
        "latency_p50_s": float(p50),
        "latency_p95_s": float(p95),
        "latency_p99_s": float(p99),
        "latency_max_s": float(latency.max()),
        "latency_mean_s": float(latency.mean()),
        "records_per_s": len(latency) / last_done if last_done > 0 else None,
        "latency_growth_s": float(by_arrival[-tenth:].mean() - by_arrival[:tenth].mean()),
    }


@dataclass
class StreamState:
    client: Any
    params: dict[str, Any]
    workers: int
    stop: threading.Event = field(default_factory=threading.Event)
    last: dict[str, Any] = field(default_factory=dict)


class _Tracker:
    """Completion times of the tasks of one run, set from Dask's callback thread."""

    def __init__(self, tasks: int) -> None:
        self.done = np.full(tasks, np.nan)
        self.left = tasks
        self.failed: Any = None
        self.finished = threading.Event()
        self.futures: dict[int, Any] = {}
        self.lock = threading.Lock()

    def watch(self, index: int, future: Any) -> None:
        self.futures[index] = future
        future.add_done_callback(functools.partial(self._done, index))

    def _done(self, index: int, future: Any) -> None:
        now = time.perf_counter()
        with self.lock:
            self.done[index] = now
            if future.status != "finished" and self.failed is None:
                self.failed = future
            self.futures.pop(index, None)  # releases the result on the worker
            self.left -= 1
            if self.left == 0:
                self.finished.set()


class StreamLatency(BaseWorkload):
    """``records`` records arriving at ``rate`` per second, processed in batches of ``batch``."""

    name = "stream-latency"
    description = "records at a set rate, per record, micro-batches or one batch: latency and throughput"
    defaults = {"records": 2000, "rate": 1000.0, "batch": 10, "features": 256, "layers": 4, "arrivals": "uniform"}
    choices = {"arrivals": ARRIVALS}
    minimum = {"records": 1, "rate": 1e-3, "batch": 1, "features": 1, "layers": 0}

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Tasks per run: each batch becomes one task per worker (fewer for a small batch)."""
        batch = min(params["batch"], params["records"])
        full, rest = divmod(params["records"], batch)
        return full * min(batch, workers) + (min(rest, workers) if rest else 0)

    def setup(self, lab: Any, **params: Any) -> StreamState:
        from labkit.common.scheduler import scheduler_workers

        lab.client.run(layer_weights, params["features"])  # each worker makes its weights once, untimed
        return StreamState(lab.client, params, max(1, len(scheduler_workers(lab.client))))

    def run(self, state: StreamState) -> Work:
        p, client = state.params, state.client
        n, batch = p["records"], min(p["batch"], p["records"])
        arrival = arrival_times(n, float(p["rate"]), p["arrivals"])
        tracker = _Tracker(self.tasks(p, state.workers))
        counts = np.zeros(tracker.done.size, dtype=np.int64)  # records of each task, in record order
        lag = 0.0
        task = 0
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            size = min(batch, n - s)
            due = t0 + arrival[s + size - 1]
            while (wait := due - time.perf_counter()) > 0 and not state.stop.is_set():
                time.sleep(min(wait, 0.05))
            if state.stop.is_set():
                raise RuntimeError("the stream was stopped before every record had arrived")
            lag = max(lag, time.perf_counter() - due)
            first = s
            for count in partition_rows(size, min(size, state.workers)):
                counts[task] = count
                tracker.watch(task, client.submit(process, first, count, p["features"], p["layers"], pure=False))
                first += count
                task += 1
        tracker.finished.wait()
        if tracker.failed is not None:
            tracker.failed.result()  # raises the task's own exception
        latency = np.repeat(tracker.done, counts) - (t0 + arrival)
        state.last = latency_summary(latency, arrival, float(np.nanmax(tracker.done)) - t0)
        state.last.update(dispatch_lag_max_s=float(lag), tasks=task)
        return Work(float(n), "items")

    def metrics(self, state: StreamState) -> dict[str, Any]:
        """Latency percentiles and trend, records per second, dispatch lag and tasks of the last run."""
        return dict(state.last)

    def teardown(self, state: StreamState) -> None:
        state.stop.set()
