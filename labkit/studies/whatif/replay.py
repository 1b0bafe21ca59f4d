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

The replay keeps each task's traced duration on any cluster: more threads on the same cores,
memory bandwidth shared by more tasks, a GIL held by Python code are not modelled (see
:func:`ignored`).
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
    return Graph(durations, deps, trace.nbytes, trace.priority, inputs)


def bandwidth_of(trace: Trace) -> tuple[float | None, str]:
    """The trace's measured bandwidth between workers, or Dask's configured estimate, and which it is."""
    measured = (trace.bandwidth or {}).get("bytes_per_s")
    if measured:
        return float(measured), f"measured in the trace ({trace.bandwidth.get('transfers')} transfers)"
    import dask
    from dask.utils import parse_bytes

    assumed = float(parse_bytes(dask.config.get("distributed.scheduler.bandwidth")))
    return assumed, "assumed: Dask's distributed.scheduler.bandwidth (the trace moved nothing between workers)"


def cluster_of(trace: Trace, **changes: Any) -> VirtualCluster:
    """The traced cluster as a :class:`~.engine.VirtualCluster` (its workers, threads, memory limit,
    measured bandwidth and per-task overhead), with ``changes`` applied."""
    threads = max((int(w.get("threads") or 1) for w in trace.workers), default=1)
    limits = [w.get("memory_limit") for w in trace.workers if w.get("memory_limit")]
    base = VirtualCluster(
        workers=max(1, len(trace.workers)),
        threads=threads,
        bandwidth=bandwidth_of(trace)[0],
        memory_limit=float(min(limits)) if limits else None,
        overhead_s=float(trace.overhead_s or 0.0),
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
        spans = np.array([simulate(graph, cluster, d).makespan for d in draws]) + fixed
        lo, hi = np.percentile(spans, [2.5, 97.5])
        wall = Estimate(value, min(float(lo), value), max(float(hi), value))
        if wall.hi - wall.lo <= 1e-9 * value:
            wall = Estimate(value, math.nan, math.nan, "interval not available: the replays did not vary")
    return Prediction(cluster, wall, sched.makespan, fixed, sched.transferred, sched.spilled, samples)


def ignored(cluster: VirtualCluster) -> list[str]:
    """What a replay on ``cluster`` leaves out, in words."""
    out = [
        "each task takes its traced time on any cluster: cores shared by more threads, memory bandwidth "
        "shared by more tasks and Python's GIL are not modelled",
        "a task holds its thread while its inputs travel; no work stealing; no scheduler-wide limit on tasks per second",
        "the fixed part of the run (submitting the graph, gathering the result) is taken as traced",
    ]
    if cluster.bandwidth is None:
        out.append("the network is instant")
    if cluster.memory_limit is None:
        out.append("memory is unlimited: nothing spills")
    else:
        out.append("spilling costs disk time only; workers never pause or restart at their memory limit")
    return out
