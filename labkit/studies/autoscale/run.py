"""Bursty load on fixed and adaptive clusters: arrivals in waves, each task's latency, workers over time, cold start.

A *bursty load* submits sleeping tasks on a seeded schedule of bursts and quiet gaps
(:func:`~labkit.studies.autoscale.analysis.wave_schedule`): sleeping tasks use no CPU, so worker
counts beyond the cores measure scheduling and scaling, not a share of the cores. Each task
reports its start, end (worker clock: this machine's for a local cluster) and worker; a
thread samples the scheduler's workers and the load's queued and processing tasks.
:class:`BurstyComparison` runs one schedule on fixed clusters of ``minimum`` and ``maximum``
workers and an adaptive one between (``Lab.adapt``: Dask's ``Cluster.adapt``) in seeded
shuffled rounds, and stores each run as it ends (a trial whose metric ``record``
:func:`~labkit.studies.autoscale.analysis.run_frames` reads back). :func:`cold_start` times asking
for one more worker until its first task.

>>> BurstyComparison(waves=0)
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: waves=0 is not allowed: an integer >= 1
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common import checks
from labkit.common.errors import ClusterError, ParameterError
from labkit.common.scheduler import run_on_scheduler, scheduler_workers
from labkit.experiment.lifecycle import RecordedRun, StudyCode
from labkit.store import ResultStore, Trial, check_store_path
from labkit.studies.autoscale import analysis as an
from labkit.studies.autoscale import figures as plots
from labkit.studies.autoscale.analysis import check_name

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

PREFIX = "autoscale-sleep"
"""Key prefix of the load's tasks: one prefix, so the scheduler learns their duration."""
_QUEUED = ("released", "waiting", "queued", "no-worker")


def sleep_task(task_s: float) -> tuple[float, float, str]:
    """The task of a bursty load: sleep ``task_s`` seconds; return its start and end (epoch s) and its worker."""
    from distributed import get_worker

    start = time.time()
    time.sleep(task_s)
    return start, time.time(), get_worker().address


def _scheduler_state(dask_scheduler: Any, prefix: str) -> tuple[int, int, int]:
    states = [ts.state for key, ts in list(dask_scheduler.tasks.items()) if str(key).startswith(prefix)]
    return len(dask_scheduler.workers), sum(s in _QUEUED for s in states), states.count("processing")


def _sample(lab: Any, prefix: str, step: float, rows: list[tuple[float, ...]], stop: threading.Event) -> None:
    """Every ``step`` s until ``stop``: (time, workers, workers asked for, queued, processing) into ``rows``."""
    spec = getattr(lab.cluster, "worker_spec", None)  # the workers the cluster has asked for
    while True:
        before = time.time()
        try:
            workers, queued, processing = run_on_scheduler(lab.client, _scheduler_state, 5.0, prefix=prefix)
            asked = math.nan if spec is None else len(spec)
            rows.append(((before + time.time()) / 2, workers, asked, queued, processing))
        except Exception:  # noqa: BLE001 - a missed sample is a gap in the record, not a failed run
            pass
        if stop.wait(max(0.0, step - (time.time() - before))):
            return


def _run_load(lab: Any, schedule: pd.DataFrame, task_s: float, sample_s: float, timeout_s: float) -> dict[str, Any]:
    """Submit ``schedule``'s arrivals and wait for every task: the run's record (see ``run_frames``)."""
    client, n = lab.client, len(schedule)
    prefix = f"{PREFIX}-{time.time_ns()}-"
    offsets = schedule["offset_s"].to_numpy(float)
    results: list[Any] = [None] * n
    submit, futures, errors, rows = np.full(n, math.nan), {}, [], []
    done, all_done, stop = itertools.count(1), threading.Event(), threading.Event()

    def on_done(i: int, fut: Any) -> None:
        try:
            results[i] = fut.result()
        except BaseException as e:  # noqa: BLE001 - kept, and raised by the caller
            errors.append(e)
        futures.pop(i, None)  # its result is read: the cluster may forget it
        if next(done) == n:
            all_done.set()

    load, load_at = (os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan), time.time()
    sampler = threading.Thread(target=_sample, args=(lab, prefix, sample_s, rows, stop), daemon=True)
    sampler.start()
    try:
        while not rows:  # a first sample before the schedule's zero
            if not sampler.is_alive() or stop.wait(0.005) or time.time() - load_at > 30.0:
                raise ClusterError("bursty load: the scheduler did not answer the sampler within 30 s")
        t0 = time.time()
        for i, offset in enumerate(offsets):
            time.sleep(max(0.0, t0 + offset - time.time()))
            submit[i] = time.time()
            futures[i] = fut = client.submit(sleep_task, task_s, key=f"{prefix}{i}", pure=False)
            fut.add_done_callback(functools.partial(on_done, i))
        if not all_done.wait(timeout_s):
            raise ClusterError(f"bursty load: {len(futures)} of {n} tasks unfinished after {timeout_s:g} s")
    finally:
        stop.set()
        sampler.join(10.0)
        if futures:
            client.cancel(list(futures.values()))
    if errors:
        raise errors[0]
    start, end, worker = zip(*results)
    tasks = {"task": schedule["task"].tolist(), "wave": schedule["wave"].tolist(), "offset_s": offsets.tolist()}
    tasks |= {k: (np.asarray(v) - t0).tolist() for k, v in (("submit_s", submit), ("start_s", start), ("end_s", end))}
    samples = dict(zip(("t_s", "workers", "asked", "queued", "processing"), np.asarray(rows, float).T.tolist()))
    samples["t_s"], tasks["worker"] = [t - t0 for t in samples["t_s"]], list(worker)
    return {"t0": t0, "end_s": max(tasks["end_s"]), "load": load, "tasks": tasks, "samples": samples}


@dataclass
class ScalingResult:
    """The runs of a comparison as tidy frames (:func:`~labkit.studies.autoscale.analysis.run_frames`), their answer and figures."""

    tasks: pd.DataFrame
    samples: pd.DataFrame
    runs: pd.DataFrame
    run_id: str | None = None

    def describe(self) -> str:
        return an.describe_autoscaling(self.tasks, self.samples, self.runs)

    def timeline_figure(self, repeat: int = 0) -> Figure:
        return plots.timeline_figure(self.tasks, self.samples, self.runs, repeat=repeat)

    def latency_figure(self) -> Figure:
        return plots.latency_figure(an.latency_table(self.tasks, self.samples, self.runs))

    def worker_seconds_figure(self) -> Figure:
        latency = an.latency_table(self.tasks, self.samples, self.runs)
        return plots.worker_seconds_figure(an.worker_seconds_table(self.runs), self.runs, latency)


def _add(run: RecordedRun, rec: dict[str, Any], wall_s: float, load: dict[str, Any]) -> None:
    """One measured run (or cold-start try) as a trial, in its own transaction, with the run's
    fingerprint and the outside load over it (``under_load``, as a sweep's trials carry it)."""
    if run.store is not None:
        kw = {"workers": rec.get("workers"), "threads": None, "backend": None, "status": "ok", "wall_s": wall_s}
        kw |= {"started_at": rec["t0"], "ended_at": rec["t0"] + wall_s, "metrics": {"record": rec, **load}}
        point = {"config": rec["config"]}
        kw["fingerprint"] = run.fingerprint.key
        run.store.add_trial(
            Trial(run.run_id, run.experiment, "bursty-load", json.dumps(point), point, rec["repeat"], **kw)
        )


@dataclass(frozen=True)
class BurstyComparison:
    """One bursty load on fixed clusters of ``minimum`` and ``maximum`` workers and an adaptive one between.

    Every parameter is checked when the comparison is made, before any cluster work.

    Parameters
    ----------
    minimum, maximum : int
        The small and large fixed clusters' worker counts, and the adaptive one's bounds.
    waves, tasks_per_wave, task_s, burst_s, gap_s, seed
        The schedule (:func:`~labkit.studies.autoscale.analysis.wave_schedule`) and each task's sleep (s).
    repeats : int
        Rounds; each runs the three configurations once, in an order shuffled by ``seed``.
    interval, wait_count, target_duration
        Dask's ``Adaptive``: seconds between decisions, decisions in a row before a worker
        is retired, seconds of queued work it aims to finish in.
    sample_s : float
        Seconds between two samples of the scheduler's state.
    warmup : bool
        First one untimed burst on ``maximum`` workers, so that the scheduler knows the
        tasks' duration (Dask's adaptive target depends on it) before any timed run.
    store, experiment
        Each run is recorded as it ends under ``f"{experiment}/bursty"`` when ``store`` is given,
        through :class:`~labkit.experiment.lifecycle.RecordedRun`: the stored run has a
        fingerprint and ends ``finished``, ``failed`` or ``interrupted``; each trial carries
        the outside load over its run (``under_load``). Stored runs are not reused: the
        adaptive cluster's decisions depend on what this session's scheduler has learned of
        the tasks (the warm-up, the runs before), which no fingerprint holds, and the
        comparison's rounds are meant to put the three clusters under the same conditions,
        so every comparison measures its runs afresh.
    timeout_s : float, optional
        Longest wait for one run (default: the schedule, the whole load on ``minimum``
        workers, and 120 s).
    """

    minimum: int = 1
    maximum: int = 4
    waves: int = 3
    tasks_per_wave: int = 10
    task_s: float = 0.4
    burst_s: float = 0.5
    gap_s: float = 4.5
    repeats: int = 5
    seed: int = 0
    interval: float = 0.25
    wait_count: int = 3
    target_duration: float = 1.0
    sample_s: float = 0.25
    warmup: bool = True
    store: Any = None
    experiment: str = "autoscale"
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        checks.count("minimum", self.minimum)
        if checks.count("maximum", self.maximum) <= self.minimum:
            raise ParameterError("maximum", self.maximum, f"an integer > minimum ({self.minimum})")
        schedule = an.wave_schedule(self.waves, self.tasks_per_wave, self.burst_s, self.gap_s, self.seed)
        for name in ("task_s", "interval", "target_duration", "sample_s"):
            checks.seconds(name, getattr(self, name))
        checks.count("repeats", self.repeats), checks.count("wait_count", self.wait_count)
        if not isinstance(self.warmup, bool):
            raise ParameterError("warmup", self.warmup, "True or False")
        check_name(self.experiment)
        if self.store is not None and not isinstance(self.store, ResultStore):
            check_store_path(self.store)
        work = len(schedule) * self.task_s / self.minimum
        timeout = schedule["offset_s"].max() + work + 120.0 if self.timeout_s is None else self.timeout_s
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "run_timeout_s", checks.seconds("timeout_s", float(timeout)))

    @property
    def configs(self) -> list[tuple[str, str, int | None]]:
        """``(name, kind, workers)``, in rank order: the small fixed, the adaptive, the large fixed cluster."""
        lo, hi = self.minimum, self.maximum
        return [(f"fixed-{lo}", "fixed", lo), (f"adaptive-{lo}-{hi}", "adaptive", None), (f"fixed-{hi}", "fixed", hi)]

    def run(self, lab: Any) -> ScalingResult:
        """Every round on ``lab``'s cluster, resized for each run, then scaled back to its size at the start."""
        if getattr(lab, "cluster", None) is None:
            raise ClusterError("comparing cluster sizes scales the cluster: this Lab has no cluster object to scale")
        start, records = lab.workers, []
        config = {k: v for k, v in vars(self).items() if k not in ("store", "schedule")}
        code = StudyCode("bursty-load", _run_load)
        name, scale_back = f"{self.experiment}/bursty", [lambda: lab.scale(start)]
        with RecordedRun(self.store, name, code, lab, config=config, cleanup=scale_back) as recorded:
            if self.warmup:
                lab.scale(self.maximum)
                keys = [f"{PREFIX}-{time.time_ns()}-warmup-{i}" for i in range(2 * self.maximum)]
                lab.client.gather(lab.client.map(sleep_task, [self.task_s] * len(keys), key=keys, pure=False))
            rng = np.random.default_rng(self.seed)
            for repeat in range(self.repeats):
                for position, c in enumerate(rng.permutation(len(self.configs))):
                    with recorded.load_window() as load:
                        records.append(self._one(lab, int(c), repeat, position))
                    records[-1]["under_load"] = load.get("under_load")  # None: not measured
                    _add(recorded, records[-1], records[-1]["end_s"], load)
        run_id = recorded.run_id
        return ScalingResult(*an.run_frames(records), run_id=run_id)

    def _one(self, lab: Any, c: int, repeat: int, position: int) -> dict[str, Any]:
        name, kind, workers = self.configs[c]
        lab.scale(workers or self.minimum)
        lab.barrier()
        adaptive = None
        try:
            if kind == "adaptive":
                options = {k: getattr(self, k) for k in ("interval", "wait_count", "target_duration")}
                adaptive = lab.adapt(self.minimum, self.maximum, **options)
            rec = _run_load(lab, self.schedule, self.task_s, self.sample_s, self.run_timeout_s)
        finally:
            if adaptive is not None:

                async def stop() -> None:  # Adaptive.stop() leaves a decision in flight to scale after it
                    adaptive.stop(reason="end of a labkit adaptive run")
                    while getattr(adaptive, "_adapting", False):
                        await asyncio.sleep(0.02)

                lab.cluster.sync(stop, callback_timeout=120)
        keys = dict(config=name, kind=kind, rank=c, repeat=repeat, position=position, workers=workers)
        return {**rec, **keys}


def compare_scaling(lab: Any, **params: Any) -> ScalingResult:
    """``BurstyComparison(**params).run(lab)``: see :class:`BurstyComparison`."""
    return BurstyComparison(**params).run(lab)


def bursty_load(
    lab: Any,
    *,
    waves: int,
    tasks_per_wave: int,
    task_s: float,
    gap_s: float,
    burst_s: float = 0.5,
    seed: int = 0,
    sample_s: float = 0.25,
    label: str = "this cluster",
    timeout_s: float = 600.0,
) -> ScalingResult:
    """One run of a bursty load on ``lab``'s cluster as it is (fixed, or adaptive if turned on), as tidy frames.

    The parameters are :class:`BurstyComparison`'s; ``label`` names the run's configuration.
    """
    schedule = an.wave_schedule(waves, tasks_per_wave, burst_s, gap_s, seed)
    checked = [checks.seconds(k, v) for k, v in (("task_s", task_s), ("sample_s", sample_s), ("timeout_s", timeout_s))]
    rec = _run_load(lab, schedule, *checked)
    keys = dict(config=label, kind="run", rank=0, repeat=0, position=0, workers=None)
    return ScalingResult(*an.run_frames([{**rec, **keys}]))


@dataclass
class ColdStart:
    """Tries of asking for one more worker: ``frame`` has ``repeat, from_workers, registered_s, first_task_s, worker``."""

    frame: pd.DataFrame
    run_id: str | None = None

    def describe(self) -> str:
        return an.describe_cold_start(self.frame)


def _cold_try(lab: Any, n: int, timeout_s: float) -> dict[str, Any]:
    """One try: ask for worker ``n + 1`` and time its registration and first task (s since asking)."""
    lab.scale(n)
    lab.barrier()
    before, asked = set(scheduler_workers(lab.client)), time.time()
    lab.cluster.scale(n + 1)
    while not (new := set(scheduler_workers(lab.client)) - before):
        if time.time() - asked > timeout_s:
            raise ClusterError(f"cold start: no new worker within {timeout_s:g} s of asking for one")
        time.sleep(0.005)
    registered, worker = time.time(), sorted(new)[0]
    fut = lab.client.submit(time.time, workers=[worker], allow_other_workers=False, pure=False)
    first = fut.result(timeout=timeout_s)
    fut.release()  # held, its result would be recomputed, and wait for a worker that scale-down removed
    return {"registered_s": registered - asked, "first_task_s": first - asked, "worker": worker, "asked": asked}


def cold_start(
    lab: Any, repeats: int = 7, *, store: Any = None, experiment: str = "autoscale", timeout_s: float = 120.0
) -> ColdStart:
    """The time from asking for one more worker to that worker's first task starting, ``repeats`` times.

    Each try asks the cluster for one worker more than it has (``cluster.scale(n + 1)``),
    asks the scheduler every 5 ms until the new worker is listed, submits a task that may run
    only there (``time.time``, which imports nothing) and takes the worker's clock when it
    ran; then scales back to ``n``.

    Parameters
    ----------
    lab : Lab
        A Lab with a cluster object to scale, and at least one worker.
    repeats : int, default 7
        Tries (5 or more give the median an interval).
    store, experiment : optional
        Each try is recorded under ``f"{experiment}/cold-start"`` when ``store`` is given, in a
        run with a fingerprint and a final status (see :class:`~labkit.experiment.lifecycle.RecordedRun`),
        with the outside load over it. Stored tries are not reused: a cold start measures how
        long this machine takes to start a worker now (its processes, page cache, load), which
        no fingerprint holds, so it is never a repeat of a stored try.
    timeout_s : float, default 120
        Longest wait for the new worker, and for its task.

    Returns
    -------
    ColdStart
        One row per try; ``describe()`` puts the median and its interval in words.
    """
    checks.count("repeats", repeats), checks.seconds("timeout_s", timeout_s), check_name(experiment)
    if store is not None and not isinstance(store, ResultStore):
        check_store_path(store)
    if getattr(lab, "cluster", None) is None:
        raise ClusterError("a cold start asks the cluster for a worker: this Lab has no cluster object to scale")
    n, rows, code = lab.workers, [], StudyCode("bursty-load", _cold_try)  # the tries' workload, as stored before
    config, scale_back = {"repeats": repeats}, [lambda: lab.scale(n)]
    with RecordedRun(store, f"{experiment}/cold-start", code, lab, config=config, cleanup=scale_back) as recorded:
        for repeat in range(repeats):
            with recorded.load_window() as load:
                rows.append({"repeat": repeat, "from_workers": n, **_cold_try(lab, n, timeout_s)})
            asked, first = rows[-1].pop("asked"), rows[-1]["first_task_s"]
            _add(recorded, {**rows[-1], "config": "cold-start", "t0": asked}, first, load)
    run_id = recorded.run_id
    import pandas as pd

    return ColdStart(pd.DataFrame(rows), run_id)
