"""Faults on purpose: what losing a worker mid-run costs, and what an interrupted sweep keeps.

- :func:`recomputation`: a :class:`Chain` of array steps (inputs and intermediates on the
  workers) run cleanly and with one worker SIGKILLed part way (its nanny starts it again),
  interleaved; what Dask recomputed comes from the scheduler's task stream
  (:func:`distributed.get_task_stream`). Every run is stored, a faulty one as ``degraded``.
- :func:`~labkit.studies.recovery.interrupt.interrupted_sweep` (in :mod:`.interrupt`): a
  small sweep interrupted as Jupyter interrupts a kernel; run again, it resumes.
- ``Sweep(Chain(kill_in_run=k), ...)``: an ordinary sweep that loses a worker during its run
  ``k``, which it records as ``degraded``, leaves out of the analysis, and runs again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ClusterError, ParameterError
from labkit.experiment.faults import DEGRADED, WorkerWatch, call_timed, degraded_reason, restore_workers
from labkit.experiment.lifecycle import RecordedRun, load_flags
from labkit.measure.host import host_reader
from labkit.measure.load import LOAD_METRICS, load_rates
from labkit.store import Trial, check_store_path
from labkit.studies.recovery.analysis import RECOMPUTED, recomputed
from labkit.workloads import BaseWorkload, Work, check_value

if TYPE_CHECKING:
    import pandas as pd

    from labkit.cluster import Lab

SEED = 20261125
MiB = 2**20
TASKS = (100, 200, 400, 800)
"""Task counts of :func:`resumable_sweep`'s grid."""


def _input_block(seed: int, block_info: dict | None = None) -> np.ndarray:
    """One block of the chain's input: the same numbers for the same block, whoever computes it."""
    info = block_info[None]  # type: ignore[index]
    return np.random.default_rng([seed, info["chunk-location"][0]]).random(info["chunk-shape"][0])


def _step(block: np.ndarray) -> np.ndarray:
    return np.cos(block) * 0.5 + np.sqrt(block + 1.0)


def _kill(pid: int, t0: float, killed: list[float]) -> None:
    """SIGKILL to ``pid``; the seconds since ``t0`` (perf_counter) go to ``killed``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        killed.append(time.perf_counter() - t0)


@dataclass
class ChainState:
    client: Any
    x: Any
    params: dict[str, Any]
    pids: dict[str, int]  # worker address -> its process, read at setup (untimed)
    result: float | None = None
    kill_s: float | None = None


class Chain(BaseWorkload):
    """A chain of ``steps`` elementwise steps over a persisted random array, each step
    persisted before the next (intermediates live on the workers), then summed.

    Every setup and run names its keys afresh, so a task that finishes twice within one
    setup and run was recomputed. ``metrics`` gives the run's sum (the same for every run)
    and ``kill_s``: with ``kill_in_run=k`` the first worker's process is sent SIGKILL
    ``kill_after_s`` seconds into this object's run ``k`` (0 the first, warm-ups included),
    unless that run ends first; ``kill_s`` says when it was (None: no kill in that run).
    """

    name = "recovery-chain"
    defaults = {"size_mb": 128.0, "chunk_mb": 8.0, "steps": 4}
    minimum = {"size_mb": 1e-3, "chunk_mb": 1e-3, "steps": 1}
    maximum = {"steps": 64}

    def __init__(self, kill_in_run: int | None = None, kill_after_s: float = 0.3) -> None:
        if kill_in_run is not None:
            _check_number("kill_in_run", kill_in_run, 0, integer=True)
        _check_number("kill_after_s", kill_after_s, 0.0)
        self.kill_in_run, self.kill_after_s, self.runs = kill_in_run, float(kill_after_s), 0

    def check_params(self, params: dict[str, Any]) -> None:
        """A block is at most the whole array."""
        if params["chunk_mb"] > params["size_mb"]:
            raise ParameterError("chunk_mb", params["chunk_mb"], f"at most size_mb ({params['size_mb']:g})")

    def setup(self, lab: Any, **params: Any) -> ChainState:
        import dask.array as da
        from distributed import wait

        n = max(1, int(params["size_mb"] * MiB) // 8)
        chunk = max(1, min(n, int(params["chunk_mb"] * MiB) // 8))
        chunks = ((chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ()),)
        name = f"recovery-input-{uuid.uuid4().hex[:12]}"
        x = lab.client.persist(
            da.map_blocks(_input_block, SEED, chunks=chunks, dtype="float64", name=name, meta=np.empty(0))
        )
        wait(x)
        return ChainState(lab.client, x, params, lab.client.run(os.getpid))

    def run(self, state: ChainState) -> Work:
        from distributed import wait

        timer, killed = None, []
        if self.runs == self.kill_in_run:
            pid = sorted(state.pids.items())[0][1]  # the first worker's process
            timer = threading.Timer(self.kill_after_s, _kill, (pid, time.perf_counter(), killed))
            timer.start()
        self.runs += 1
        token, y, held = uuid.uuid4().hex[:12], state.x, []
        try:
            for s in range(state.params["steps"]):
                y = state.client.persist(y.map_blocks(_step, name=f"recovery-step{s}-{token}", dtype="float64"))
                wait(y)
                held.append(y)
            state.result = float(state.client.compute(y.sum()).result())
        finally:
            if timer is not None:
                timer.cancel()
                timer.join()
            state.kill_s = killed[0] if killed else None
        return Work(state.params["steps"] * state.x.nbytes, "bytes")

    def metrics(self, state: ChainState) -> dict[str, Any]:
        return {"result": state.result, "kill_s": state.kill_s}

    def teardown(self, state: ChainState) -> None:
        state.x = None


def _check_killable(lab: Any) -> None:
    """A Lab that started its own local cluster of at least two workers, each under a nanny."""
    from distributed import Nanny

    nannies = getattr(getattr(lab, "cluster", None), "workers", {}) or {}
    own = getattr(lab, "owns_cluster", False) and getattr(lab, "kind", "") == "local"
    if not own or len(nannies) < 2 or not all(isinstance(w, Nanny) for w in nannies.values()):
        raise ParameterError("lab", lab, "a Lab that started its own local cluster of 2 or more worker processes")


def _check_number(name: str, value: Any, lo: float, hi: float | None = None, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not (lo <= value and (hi is None or value < hi)):
        what = "an integer" if integer else "a number"
        raise ParameterError(name, value, f"{what} >= {lo:g}" + (f" and < {hi:g}" if hi is not None else ""))


def _one_run(lab: Lab, wl: Chain, params: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Set up and time one run inside a task-stream window: what it did, the workers it lost,
    what it recomputed."""
    from distributed import get_task_stream

    read = host_reader()  # outside load on this machine, around the timed run (see labkit.measure.load)
    with get_task_stream(client=lab.client) as stream:
        state = wl.setup(lab, **params)
        lab.barrier()
        own = (os.getpid(), *state.pids.values())
        watch, started, before = WorkerWatch(lab.client), time.time(), read(list(own), own[1:])
        work, wall = call_timed(wl.run, state, timeout_s, lab)
        load = load_flags(load_rates(before, read(list(own), own[1:])))  # under_load, as a sweep's trials
        lab.barrier()
        lost, now, restarts = watch.check()
    wl.teardown(state)
    measured = {**recomputed(stream.data), **load, "kill_s": state.kill_s, "result": state.result}
    return {"work": work, "wall": wall, "started": started, "lost": lost, "now": now, "restarts": restarts, **measured}


def recomputation(
    lab: Lab,
    *,
    runs: int = 5,
    kill_at: float = 0.4,
    size_mb: float = 128.0,
    chunk_mb: float = 8.0,
    steps: int = 4,
    store: str | os.PathLike[str] = "results/labkit.db",
    experiment: str = "recovery",
    timeout_s: float = 300.0,
) -> pd.DataFrame:
    """Clean runs and runs that lose a worker, interleaved (clean first); what each cost and recomputed.

    Parameters
    ----------
    lab : Lab
        A Lab that started its own local cluster of 2 or more worker processes (nannies).
    runs : int, default 5
        Runs of each kind (5 or more give the time ratio an interval), after one untimed warm-up.
    kill_at : float, default 0.4
        When to kill, as a share of the median clean run so far (0 < kill_at < 1).
    size_mb, chunk_mb, steps
        The :class:`Chain`: its input's size, block size, and steps.
    store : path, default "results/labkit.db"
    experiment : str, default "recovery"
        The trials are stored under this name (``Chain``'s name as their workload), in a run
        with a fingerprint and a final status (:class:`~labkit.experiment.lifecycle.RecordedRun`),
        each with the outside load over its timed run (``under_load``). Stored runs are not
        reused: a faulty run's kill time comes from the clean runs measured before it in the
        same call, and what the kill costs is read against those clean runs, so the runs of
        one call belong together and are measured afresh.
    timeout_s : float, default 300
        Longest a run may take before it is cancelled.

    Returns
    -------
    DataFrame
        This run's trials (``ResultStore.trials_frame``): ``fault``, ``status`` (``degraded``
        where a worker was lost), ``wall_s``, ``kill_s`` (None where no kill came), ``tasks``,
        ``recomputed_tasks``, ``recomputed_bytes``, ``recomputed_compute_s``, ``result``, ``restore_s``.
    """
    _check_number("runs", runs, 1, integer=True)
    _check_number("kill_at", kill_at, 1e-3, 1.0)
    _check_number("timeout_s", timeout_s, 1.0)
    if not isinstance(experiment, str) or not experiment.strip():
        raise ParameterError("experiment", experiment, "a non-empty name")
    wl, params = Chain(), {"size_mb": size_mb, "chunk_mb": chunk_mb, "steps": steps}
    for key, value in params.items():
        check_value(wl, key, value)
    wl.check_params(params)
    path = check_store_path(store)
    _check_killable(lab)
    config = {**params, "runs": runs, "kill_at": kill_at}
    with RecordedRun(path, experiment, wl, lab, config=config) as recorded:
        _interleaved(recorded, wl, params, timeout_s)
        frame = recorded.store.trials_frame(experiment, run_id=recorded.run_id)  # before the store closes
    return frame


def _interleaved(recorded: RecordedRun, wl: Chain, params: dict[str, Any], timeout_s: float) -> None:
    """A warm-up, then ``runs`` clean and ``runs`` faulty runs (the run's config), alternating, each stored as it ends."""
    lab, workers, clean = recorded.lab, recorded.lab.workers, []
    runs, kill_at = recorded.config["runs"], recorded.config["kill_at"]
    state = wl.setup(lab, **params)  # a warm-up: the workers load the code
    wl.run(state)
    wl.teardown(state)
    for i in range(2 * runs):
        fault = i % 2 == 1
        wl.kill_in_run, wl.kill_after_s = (wl.runs, kill_at * float(np.median(clean))) if fault else (None, 0.0)
        r = _one_run(lab, wl, params, timeout_s)
        t0 = time.perf_counter()
        why = restore_workers(lab, workers) if r["lost"] else ""
        if why:
            raise ClusterError(why)
        r["restore_s"] = time.perf_counter() - t0 if r["lost"] else None
        clean += [] if fault else [r["wall"]]
        recorded.store.add_trial(_trial(recorded, wl, params, r, i, kill_at if fault else None))


def _trial(
    recorded: RecordedRun, wl: Chain, params: dict[str, Any], r: dict[str, Any], i: int, kill_at: float | None
) -> Trial:
    """Run ``i`` as a trial (``degraded`` where it lost a worker) with the run's fingerprint."""
    lab, workers, fault, lost = recorded.lab, recorded.lab.workers, kill_at is not None, r["lost"]
    point = {"workload": wl.name, "workers": workers, **params, "fault": fault}
    metrics = {k: r[k] for k in ("tasks", *RECOMPUTED, *LOAD_METRICS, "under_load")}
    metrics.update(kill_at=kill_at, kill_s=r["kill_s"], result=r["result"])
    metrics.update(workers_end=r["now"], workers_lost=len(lost), restore_s=r["restore_s"])
    trial = {"run_id": recorded.run_id, "experiment": recorded.experiment, "workload": wl.name, "workers": workers}
    trial.update(point=json.dumps(point, sort_keys=True), params={**params, "fault": fault}, repeat=i // 2)
    trial.update(threads=lab.threads, backend="numpy", status=DEGRADED if lost else "ok", metrics=metrics)
    trial.update(wall_s=r["wall"], amount=r["work"].amount, unit=r["work"].unit, started_at=r["started"])
    error = degraded_reason(lost, workers, r["now"], r["restarts"]) if lost else None
    return Trial(**trial, error=error, fingerprint=recorded.fingerprint.key)
