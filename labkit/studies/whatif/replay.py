"""Predictions from a trace: its graph replayed on a virtual cluster, with an interval.

The predicted wall time is the replay's span (first task start to last task end, by
:mod:`.engine`) plus the traced run's *fixed* part, its wall time less its span (submitting
the graph, the first task's dispatch, gathering the result), taken to be the same on every
cluster. The interval carries the spread of the measured task durations: each task of a
kind (its key's prefix) takes, in each of ``samples`` replays, the median duration of its
kind times a ratio drawn from that kind's measured ratios to their median; the interval is
the 2.5th to 97.5th percentile of those replays (widened to hold the replay with the traced
durations). It says nothing of run-to-run noise of the whole machine, and where every kind's
tasks took the same time there is no interval, and the prediction says so.

The cluster replayed (:func:`cluster_of`) takes from the trace its shape, memory limit,
the time a worker takes between two tasks (:func:`overhead_of`) and the round trip a
dependent task waits (:func:`gap_of`), and from :func:`~.probe.measure_network` what a
one-worker trace cannot hold: a transfer's latency and bandwidth, the scheduler's time per
task (and the round trip, where the trace shows it too seldom).

The replay keeps each task's traced duration and each of those times on any cluster: more
threads or workers on the same cores, memory bandwidth shared by more tasks, a GIL held by
Python code are not modelled (see :func:`ignored`). On a machine with fewer cores than the
cluster has processes, the times between tasks grow with the cluster, as its own processes
wait for a core; :func:`hops_of` measures them in a run, to set beside a replay's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from labkit.analysis.intervals import Estimate
from labkit.common.errors import DataError, ParameterError
from labkit.measure.trace import Trace

from .engine import Graph, VirtualCluster, simulate
from .probe import Network

#: Replays per interval by default.
SAMPLES = 40


def graph_of(trace: Trace) -> Graph:
    """The trace's tasks as the engine's graph."""
    if not isinstance(trace, Trace):
        raise ParameterError("trace", trace, "a labkit.measure.trace.Trace (whatif.traces_of(results) reads them)")
    if trace.tasks == 0:
        raise DataError("the trace holds no task: nothing to replay")
    durations = [max(0.0, b - a) for a, b in zip(trace.start, trace.stop)]
    deps = [trace.deps(i) for i in range(trace.tasks)]
    inputs = [(int(b), int(w)) for b, w in trace.inputs]
    return Graph(durations, deps, trace.nbytes, trace.priority, inputs, len(trace.workers))


def bandwidth_of(trace: Trace, network: Network | None = None) -> tuple[float, str]:
    """Bandwidth between workers: measured in the trace, else by :func:`~.probe.measure_network`,
    else Dask's configured estimate; and which it is."""
    measured = (trace.bandwidth or {}).get("bytes_per_s")
    if measured:
        return float(measured), f"measured in the trace ({trace.bandwidth.get('transfers')} transfers)"
    if network is not None:
        return network.bandwidth, "measured beside the trace on loopback (whatif.measure_network)"
    import dask
    from dask.utils import parse_bytes

    assumed = float(parse_bytes(dask.config.get("distributed.scheduler.bandwidth")))
    return assumed, "assumed: Dask's distributed.scheduler.bandwidth (the trace moved nothing between workers)"


def _previous_stop(trace: Trace) -> dict[int, float]:
    """For each task, when the task before it on its thread stopped."""
    on: dict[tuple[int, int], list[int]] = {}
    for i in sorted(range(trace.tasks), key=lambda i: trace.start[i]):
        on.setdefault((trace.worker[i], trace.thread[i]), []).append(i)
    return {b: trace.stop[a] for ids in on.values() for a, b in zip(ids, ids[1:])}


def _idle_starts(trace: Trace) -> list[tuple[int, float]]:
    """Tasks with inputs that found their thread idle: (task, its start less its last input's end)."""
    n, before, out = trace.tasks, _previous_stop(trace), []
    for i in range(n):
        ready = max((trace.stop[d] for d in trace.deps(i) if d < n), default=None)
        if ready is not None and before.get(i, -math.inf) <= ready:
            out.append((i, trace.start[i] - ready))
    return out


def overhead_of(trace: Trace) -> float | None:
    """The mean gap on a thread between a task's end and the next task's start, over the next
    tasks whose inputs had all ended before the previous one started (so that they waited on the
    worker, not on the scheduler): the time a worker takes between two tasks. None: no such pair.
    (The trace's own ``overhead_s`` counts a task whose input ended during the previous one
    too, and with it a round trip through the scheduler, which the replay charges apart.)"""
    n, on = trace.tasks, {}
    for i in sorted(range(n), key=lambda i: trace.start[i]):
        on.setdefault((trace.worker[i], trace.thread[i]), []).append(i)
    gaps = [
        trace.start[b] - trace.stop[a]
        for ids in on.values()
        for a, b in zip(ids, ids[1:])
        if max((trace.stop[d] for d in trace.deps(b) if d < n), default=-math.inf) <= trace.start[a]
    ]
    return float(np.mean(gaps)) if gaps else None


def gap_of(trace: Trace) -> tuple[float | None, int]:
    """The median time from a task's last input ending to its start, over the traced tasks with
    inputs that found their thread idle (one round trip through the scheduler and the worker's
    start), and how many there were."""
    gaps = [g for _, g in _idle_starts(trace)]
    return (float(np.median(gaps)) if gaps else None), len(gaps)


def hops_of(trace: Trace) -> dict[str, float]:
    """Medians of the time a run spent between tasks, to set beside a replay's parameters:
    ``busy_gap_s``, a thread's end to its next task's start where that task had no input to
    wait for; ``dispatch_gap_s``, a task's last input's end to its start on an idle thread,
    with nothing to fetch; ``transfer_s``, one transfer between workers. NaN where none."""
    n, before = trace.tasks, _previous_stop(trace)
    fetched = {int(t) for t, kind, _, _ in trace.io if kind == 0}
    busy = [
        trace.start[i] - before[i]
        for i in before
        if max((trace.stop[d] for d in trace.deps(i) if d < n), default=-math.inf) <= before[i]
    ]
    idle = [g for i, g in _idle_starts(trace) if i not in fetched]
    moves = [b - a for _, kind, a, b in trace.io if kind == 0]
    return {
        k: float(np.median(v)) if v else math.nan
        for k, v in (("busy_gap_s", busy), ("dispatch_gap_s", idle), ("transfer_s", moves))
    }


#: Tasks that must have started on an idle thread for the trace's own dispatch gap to be used.
GAPS = 3


def cluster_of(trace: Trace, network: Network | None = None, **changes: Any) -> VirtualCluster:
    """The traced cluster as a :class:`~.engine.VirtualCluster` (its workers, threads, memory
    limit, bandwidth, per-task overhead and dispatch), with ``changes`` applied.

    The dispatch is the gap from a task's last input to its start on an idle thread, less
    the per-task overhead and the scheduler's time per task: the gap from the trace where
    :data:`GAPS` tasks or more show it, else from ``network`` (:func:`~.probe.measure_network`),
    else none. ``network`` also gives the scheduler's time per task, the transfer latency and,
    where the trace moved nothing between workers, the bandwidth."""
    threads = max((int(w.get("threads") or 1) for w in trace.workers), default=1)
    limits = [w.get("memory_limit") for w in trace.workers if w.get("memory_limit")]
    own = overhead_of(trace)
    overhead = float(own if own is not None else (trace.overhead_s or 0.0))
    gap, seen = gap_of(trace)
    if seen < GAPS or gap is None:
        gap = network.gap_s if network is not None else overhead
    scheduler = network.scheduler_s if network is not None else 0.0
    base = VirtualCluster(
        workers=max(1, len(trace.workers)),
        threads=threads,
        bandwidth=bandwidth_of(trace, network)[0],
        latency_s=network.latency_s if network is not None else 0.0,
        memory_limit=float(min(limits)) if limits else None,
        overhead_s=overhead,
        dispatch_s=max(0.0, gap - overhead - scheduler),
        scheduler_s=scheduler,
    )
    unknown = sorted(set(changes) - set(VirtualCluster.__dataclass_fields__))
    if unknown:
        raise ParameterError(
            unknown[0], changes[unknown[0]], f"one of {', '.join(VirtualCluster.__dataclass_fields__)}"
        )
    return replace(base, **changes)


@dataclass(frozen=True)
class Prediction:
    """A replay's prediction of wall time (an estimate), and what moved."""

    cluster: VirtualCluster
    wall: Estimate
    span_s: float
    fixed_s: float
    transferred: float
    spilled: float
    samples: int


def _draws(trace: Trace, graph: Graph, samples: int, seed: int) -> list[list[float]] | None:
    """Task durations for each sampled replay, or None where no kind's durations vary."""
    kinds: dict[int, list[int]] = {}
    for i, p in enumerate(trace.prefix):
        kinds.setdefault(p, []).append(i)
    base = np.asarray(graph.durations)
    rng = np.random.default_rng(seed)
    out, varies = np.tile(base, (samples, 1)), False
    for ids in kinds.values():
        d = base[ids]
        med = float(np.median(d))
        if len(ids) < 2 or med <= 0 or np.ptp(d) <= 1e-6 * med:
            continue
        varies = True
        out[:, ids] = med * rng.choice(d / med, size=(samples, len(ids)))
    return out.tolist() if varies else None


def predict(
    trace: Trace, cluster: VirtualCluster | None = None, *, samples: int = SAMPLES, seed: int = 0
) -> Prediction:
    """Predict the traced run's wall time on ``cluster`` (default: the traced cluster).

    Parameters
    ----------
    trace : Trace
    cluster : VirtualCluster, optional
        Made with :func:`cluster_of` (``cluster_of(trace, workers=8)``) or by hand.
    samples : int, default 40
        Replays with resampled durations for the interval (>= 10).
    seed : int, default 0
        Seed of the resampling.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 10:
        raise ParameterError("samples", samples, "a whole number of replays >= 10")
    graph = graph_of(trace)
    cluster = cluster_of(trace) if cluster is None else cluster
    if not isinstance(cluster, VirtualCluster):
        raise ParameterError("cluster", cluster, "a VirtualCluster (whatif.cluster_of(trace, workers=...))")
    fixed = max(0.0, (trace.wall_s or trace.span_s) - trace.span_s)
    sched = simulate(graph, cluster)
    value = sched.makespan + fixed
    draws = _draws(trace, graph, samples, seed)
    if draws is None:
        wall = Estimate(value, math.nan, math.nan, "interval not available: the traced task durations do not vary")
    else:
        wall = spread(value, [simulate(graph, cluster, d).makespan + fixed for d in draws])
    return Prediction(cluster, wall, sched.makespan, fixed, sched.transferred, sched.spilled, samples)


def spread(value: float, walls: list[float]) -> Estimate:
    """``value`` with the 2.5–97.5% range of ``walls`` (widened to hold it), or no interval
    where they did not vary.

    >>> spread(1.0, [1.0, 1.0]).note
    'interval not available: the replays did not vary'
    """
    lo, hi = np.percentile(walls, [2.5, 97.5])
    wall = Estimate(value, min(float(lo), value), max(float(hi), value))
    if wall.hi - wall.lo <= 1e-9 * value:
        return Estimate(value, math.nan, math.nan, "interval not available: the replays did not vary")
    return wall


def ignored(cluster: VirtualCluster) -> list[str]:
    """What a replay on ``cluster`` leaves out, in words."""
    out = [
        "each task takes its traced time on any cluster: cores shared by more threads or workers than the "
        "machine has, memory bandwidth shared by more tasks and Python's GIL are not modelled",
        "no work stealing; no limit on transfers at once or on the scheduler's tasks per second; the scheduler "
        "knows each task's duration",
        "the fixed part of the run (submitting the graph, gathering the result) is taken as traced",
    ]
    if cluster.bandwidth is None:
        out.append("the network is instant")
    else:
        out.append("a transfer costs a fixed latency plus its bytes over one bandwidth, one at a time into each worker")
    if cluster.memory_limit is None:
        out.append("memory is unlimited: nothing spills")
    else:
        out.append("spilling costs disk time only; workers never pause or restart at their memory limit")
    return out
