"""The chunk-size question: a workload's wall time predicted at a chunk size it was not traced at.

:func:`predict_chunks` rebuilds the graph at the new parameters (:func:`.rechunk.rebuild`),
gives each task a duration and result size from the traced tasks of its kind at other chunk
sizes (:func:`.rechunk.estimate`) and replays it on the traced cluster or a virtual one.
The run's fixed part (submitting and ordering the graph, gathering the result) grows with
the number of tasks: it is a straight line through the traces' (tasks, wall − span).
The prediction is an estimate, with the 2.5–97.5% range of replays over resampled fits (the
tasks of each kind resampled, and the traces for the fixed part), each replay's wall time
scaled by one traced run's ratio to the median of its size (the machine's run-to-run spread:
pass every traced run at each size, :func:`~.analysis.traces_of`, so that it is in it);
:func:`chunks_ignore` says what it leaves out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.intervals import Estimate, median_estimate
from labkit.analysis.trust import admit
from labkit.common.errors import ParameterError
from labkit.measure.trace import Trace

from .analysis import replays
from .engine import VirtualCluster, simulate
from .probe import Network
from .rechunk import REBUILDERS, estimate, fixed_at, rebuild, traced_tasks
from .replay import Prediction, cluster_of, ignored, spread

if TYPE_CHECKING:
    import pandas as pd


def predict_chunks(
    traces: list[Trace],
    workload: str,
    params: dict[str, Any],
    cluster: VirtualCluster | None = None,
    *,
    network: Network | None = None,
    samples: int = 40,
    seed: int = 0,
) -> Prediction:
    """Predict ``workload``'s wall time at ``params`` from ``traces`` of it at other chunk sizes.

    Parameters
    ----------
    traces : list of Trace
        Of ``workload`` at two chunk sizes or more, on one cluster (``trace_of`` per size).
    workload : str
        One of :data:`.rechunk.REBUILDERS` (``array-sum``, ``matmul``).
    params : dict
        The parameters to predict (the workload's defaults fill the rest).
    cluster : VirtualCluster, optional
        Default: the first trace's cluster (:func:`~.replay.cluster_of` with ``network``).
    samples, seed
        Replays over resampled fits for the interval (>= 10), and their seed.
    """
    if not traces or not all(isinstance(t, Trace) for t in traces):
        raise ParameterError("traces", traces, "a list of Traces of the workload at other chunk sizes")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 10:
        raise ParameterError("samples", samples, "a whole number of replays >= 10")
    shape = rebuild(workload, params)
    table = traced_tasks(traces)
    cluster = cluster_of(traces[0], network) if cluster is None else cluster
    tasks = len(shape["kinds"])
    fixed = fixed_at(traces, tasks)
    central = simulate(estimate(shape, table), cluster)
    rng = np.random.default_rng(seed)
    noise, walls = run_to_run(traces), []
    for _ in range(samples):
        picked = [traces[j] for j in rng.integers(0, len(traces), len(traces))]
        span = simulate(estimate(shape, table, rng), cluster).makespan
        walls.append((span + fixed_at(picked, tasks)) * float(rng.choice(noise)))
    wall = spread(central.makespan + fixed, walls)
    return Prediction(cluster, wall, central.makespan, fixed, central.transferred, central.spilled, samples)


def run_to_run(traces: list[Trace]) -> np.ndarray:
    """Each traced run's wall time over the median of the runs of its graph (its task count):
    the machine's run-to-run spread, which each replay of the interval draws once.

    >>> from labkit.measure.trace import Trace
    >>> t = lambda w: Trace([], [], [], [], [0.0], [0.0], [0], [0], [0, 0], [], [], [], [], wall_s=w)
    >>> run_to_run([t(1.0), t(1.2), t(0.8)]).round(2).tolist()
    [1.0, 1.2, 0.8]
    """
    by_size: dict[int, list[float]] = {}
    for t in traces:
        by_size.setdefault(t.tasks, []).append(float(t.wall_s or t.span_s))
    ratios = [w / float(np.median(walls)) for walls in by_size.values() for w in walls if np.median(walls) > 0]
    return np.asarray(ratios or [1.0])


def chunks_ignore(cluster: VirtualCluster, workload: str) -> list[str]:
    """What a chunk-size prediction leaves out, in words (then the replay's own list)."""
    knob = REBUILDERS[workload][1] if workload in REBUILDERS else "the chunk size"
    return [
        f"a task's time and result size at a new {knob} follow a power law of its input bytes fitted per kind "
        "to the traced sizes: a chunk that fits a cache the traced ones did not, or one past them, may run at "
        "another rate per byte (beyond the traced sizes it is an extrapolation)",
        "the time to submit and order the graph is a straight line in its task count through the traced runs",
        *ignored(cluster),
    ]


def describe_chunks(measured: pd.DataFrame, prediction: Prediction, workload: str, asked: str) -> str:
    """The chunk-size prediction in words (an estimate, with the range of its replays), beside
    the median of ``measured`` (the trials run at that size; those under outside load are
    left out of the comparison, which then says so), then what the estimate ignores."""
    w = prediction.wall
    lines = [f"{workload} at {asked}: predicted {replays(w.value, w.lo, w.hi, 'the rebuilt graph')}."]
    kept = admit(measured)
    walls = kept.frame["wall_s"].dropna().to_numpy(float)
    if walls.size:
        m = median_estimate(walls).value
        est = Estimate(w.value / m, w.lo / m, w.hi / m, w.note)
        words = ratio_words(est, "the measured median", ("above it", "below it"), narrow="more traced runs")
        lines.append(f"Against {walls.size} runs at that size: the prediction is {words}.")
    elif kept.loaded:
        lines.append(f"Measured time: no comparison claimed ({kept.note}).")
    else:
        lines.append("Measured time: not measured (no ok run at that size).")
    lines.append("The estimate ignores: " + "; ".join(chunks_ignore(prediction.cluster, workload)) + ".")
    return "\n".join(lines)
