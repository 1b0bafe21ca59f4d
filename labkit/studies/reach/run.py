"""The cost of reaching a cluster through its manager: first worker, per-task overhead, adaptive growth.

:func:`measure_reach` takes a Lab that adopted a cluster object (any manager's) and measures,
in this order, each stored as a trial of workload ``reach`` (point: ``manager`` and
``measure``) under ``f"{experiment}/reach"`` through the one recorded-run path:

1. ``first-worker``: from ``scale(1)`` on a cluster scaled to no workers until the scheduler
   lists a worker (job script, submission, process start, registration);
2. ``adapt-add``: from submitting a burst of sleeping tasks to a cluster adapting between 1
   and 2 workers (``lab.adapt``) until the scheduler lists the second worker; then the
   burst is cancelled and adaptive scaling turned off (the cluster keeps 2 workers);
3. ``noop`` and ``shuffle``: the same graph on every manager at 2 workers, ``repeats`` times
   each, behind a barrier: ``tasks`` no-op tasks, and an all-to-all shuffle of
   ``partitions`` partitions (:mod:`.graph`); per-task overhead is the wall time over tasks.

>>> measure_reach(None, tasks=0)
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: tasks=0 is not allowed: an integer >= 1
"""

from __future__ import annotations

import json
import time
from typing import Any

from labkit.cluster import managers
from labkit.common import checks
from labkit.common.errors import ClusterError, ParameterError
from labkit.common.scheduler import scheduler_workers
from labkit.experiment.lifecycle import RecordedRun, StudyCode, check_lab
from labkit.store import ResultStore, Trial, check_store_path

from . import graph
from .results import Reach

WORKERS = 2  # the graph runs at 2 workers, the most adapt adds to


def check_inputs(params: dict[str, Any]) -> None:
    """Every parameter of :func:`measure_reach` but the Lab, before any cluster work."""
    for name, least in (("tasks", 1), ("partitions", 2), ("rows", 1), ("repeats", 1), ("burst", 2)):
        checks.count(name, params[name], least=least)
    checks.seconds("task_s", params["task_s"])
    checks.seconds("timeout_s", params["timeout_s"])
    if params["manager"] is not None and not (isinstance(params["manager"], str) and params["manager"].strip()):
        raise ParameterError("manager", params["manager"], "None or a non-empty name")
    if not isinstance(params["experiment"], str) or not params["experiment"].strip():
        raise ParameterError("experiment", params["experiment"], "a non-empty name")
    if params["store"] is not None and not isinstance(params["store"], ResultStore):
        check_store_path(params["store"])


def _wait_workers(lab: Any, done: Any, timeout_s: float, what: str) -> float:
    """Ask the scheduler every 10 ms until ``done(workers)``; the time.time() it held."""
    start = time.monotonic()
    while not done(len(scheduler_workers(lab.client))):
        if time.monotonic() - start > timeout_s:
            raise ClusterError(f"{what}: not within {timeout_s:g} s (the scheduler lists {lab.workers} workers)")
        time.sleep(0.01)
    return time.time()


def first_worker(lab: Any, timeout_s: float) -> tuple[float, float]:
    """Scale to no workers, then time ``scale(1)`` until the scheduler lists a worker: (start, seconds)."""
    lab.cluster.scale(0)
    _wait_workers(lab, lambda n: n == 0, timeout_s, "scaling to no workers")
    asked = time.time()
    lab.cluster.scale(1)
    return asked, _wait_workers(lab, lambda n: n >= 1, timeout_s, "the first worker") - asked


def adapt_add(lab: Any, burst: int, task_s: float, timeout_s: float) -> tuple[float, float]:
    """From a burst on an adaptive cluster of 1 to 2 workers until the second is listed: (start, seconds)."""
    lab.scale(1)
    lab.barrier()
    handle = lab.adapt(1, WORKERS, **managers.adapt_options(lab.cluster, 0.5))
    try:
        asked = time.time()
        futures = lab.client.map(graph.sleeper, [task_s] * burst, range(burst), pure=False)
        added = _wait_workers(lab, lambda n: n >= WORKERS, timeout_s, "adapt adding a worker to a burst") - asked
        lab.client.cancel(futures)
        del futures
    finally:
        managers.stop_adapt(lab.cluster, handle)
    lab.scale(WORKERS)
    return asked, added


def run_graph(lab: Any, which: str, tasks: int, partitions: int, rows: int) -> tuple[float, float, int]:
    """One run of the no-op tasks or the shuffle behind a barrier: (start, seconds, tasks)."""
    from distributed import wait

    lab.barrier()
    start, t0 = time.time(), time.perf_counter()
    if which == "noop":
        futures = lab.client.map(graph.noop, range(tasks), pure=False)
        wait(futures)
        assert [f.status for f in futures].count("finished") == tasks, "a no-op task failed"
        del futures
        return start, time.perf_counter() - t0, tasks
    dsk, outputs = graph.shuffle_graph(partitions, rows, token=f"reach-{time.time_ns()}")
    result = lab.client.get(dsk, outputs)
    wall = time.perf_counter() - t0
    graph.check_shuffle(result, partitions, rows)
    return start, wall, graph.shuffle_tasks(partitions)


def _store(run: RecordedRun, manager: str, measure: str, repeat: int, row: dict[str, Any]) -> None:
    if run.store is None:
        return
    point = {"manager": manager, "measure": measure}
    tasks = row.get("tasks")
    kw = {"workers": row["workers"], "threads": None, "backend": None, "status": "ok", "wall_s": row["wall_s"]}
    kw |= {"amount": float(tasks) if tasks else 1.0, "unit": "tasks" if tasks else "worker"}
    kw |= {"started_at": row["start"], "ended_at": row["start"] + row["wall_s"], "fingerprint": run.fingerprint.key}
    metrics = {k: v for k, v in row.items() if k not in ("start", "wall_s", "workers")}
    run.store.add_trial(
        Trial(
            run.run_id, run.experiment, "reach", json.dumps(point, sort_keys=True), point, repeat, **kw, metrics=metrics
        )
    )


def measure_reach(
    lab: Any,
    *,
    manager: str | None = None,
    tasks: int = 500,
    partitions: int = 8,
    rows: int = 1000,
    repeats: int = 3,
    burst: int = 40,
    task_s: float = 0.5,
    store: Any = None,
    experiment: str = "reach",
    timeout_s: float = 120.0,
) -> Reach:
    """The cost of reaching ``lab``'s adopted cluster: first worker, adapt adding one, per-task overhead.

    Parameters
    ----------
    lab : Lab
        A Lab with a cluster object (``Lab(cluster=...)``): it is scaled to none, 1 and 2
        workers, adapts between 1 and 2, and is left at 2 workers (never closed).
    manager : str, optional
        The name stored with the trials (default: the cluster object's class).
    tasks, partitions, rows : int
        The graph: no-op tasks per run; the shuffle's partitions and integers per partition.
    repeats : int
        Timed runs of each graph.
    burst, task_s
        The adaptive burst: ``burst`` tasks sleeping ``task_s`` seconds each (cancelled once
        the second worker is listed).
    store, experiment
        Trials are stored under ``f"{experiment}/reach"`` when ``store`` is given.
    timeout_s : float
        Longest wait for any worker count.
    """
    params = dict(locals())
    params.pop("lab")
    check_inputs(params)
    check_lab(lab)
    if lab.cluster is None:
        raise ClusterError(
            "measuring a cluster's reach scales it: this Lab has no cluster object (use Lab(cluster=...))"
        )
    name = manager or managers.manager_of(lab.cluster)
    config = {k: v for k, v in params.items() if k != "store"} | {"manager": name}
    rows_out: list[dict[str, Any]] = []
    with RecordedRun(store, f"{experiment}/reach", StudyCode("reach", measure_reach), lab, config=config) as run:
        for measure in ("first-worker", "adapt-add"):
            with run.load_window() as load:
                start, wall = (
                    first_worker(lab, timeout_s)
                    if measure == "first-worker"
                    else adapt_add(lab, burst, task_s, timeout_s)
                )
            workers = 1 if measure == "first-worker" else WORKERS
            rows_out.append(
                {"measure": measure, "repeat": 0, "start": start, "wall_s": wall, "workers": workers, **load}
            )
            _store(run, name, measure, 0, rows_out[-1])
        for measure in ("noop", "shuffle"):
            for repeat in range(repeats):
                with run.load_window() as load:
                    start, wall, n = run_graph(lab, measure, tasks, partitions, rows)
                row = {"measure": measure, "repeat": repeat, "start": start, "wall_s": wall, "tasks": n}
                rows_out.append({**row, "per_task_s": wall / n, "workers": lab.workers, **load})
                _store(run, name, measure, repeat, rows_out[-1])
    return Reach.from_rows(name, rows_out, run.run_id)
