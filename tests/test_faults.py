"""Faults during a sweep, for real: a worker process killed mid-trial by its PID, a run
interrupted as Jupyter interrupts it, a trial past its timeout. No mocks: real processes,
real signals, a real store."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest

import labkit
from labkit import Work


@pytest.fixture(scope="module")
def flab() -> Iterator[labkit.Lab]:
    """This module's own 2-worker cluster with nannies: it kills their worker processes."""
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def _nap(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


class Naps(labkit.workloads.BaseWorkload):
    """``tasks`` naps of ``seconds`` each over the workers, gathered."""

    name = "test-naps"
    defaults = {"tasks": 24, "seconds": 0.08}

    def setup(self, lab: labkit.Lab, **params: object) -> tuple:
        return lab.client, params

    def run(self, state: tuple) -> Work:
        client, p = state
        client.gather(client.map(_nap, range(p["tasks"]), seconds=p["seconds"], pure=False))
        return Work(p["tasks"], "tasks")


def _trials(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as conn:
        return conn.execute(
            "SELECT repeat, status, workers, error, metrics_json FROM trials ORDER BY trial_id"
        ).fetchall()


def test_a_worker_killed_mid_trial_degrades_that_trial_only(flab: labkit.Lab, tmp_path: Path) -> None:
    store = tmp_path / "faults.db"
    pids = flab.client.run(os.getpid)  # worker address -> its process (the nanny's child)
    victim, pid = sorted(pids.items())[0]
    killed = threading.Event()

    def kill_during_the_second_trial() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                done = len(_trials(store)) if store.exists() else 0
            except sqlite3.OperationalError:  # the store is being created
                done = 0
            if done >= 1:
                time.sleep(0.4)  # the second run is under way (it takes about a second)
                os.kill(pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_during_the_second_trial, daemon=True)
    killer.start()
    sweep = labkit.Sweep(Naps(), grid={"tasks": [24]}, repeats=4, warmup=0, store=store, experiment="faults")
    results = sweep.run(flab, live=False)
    killer.join(5)
    assert killed.is_set()

    rows = _trials(store)
    statuses = [r[1] for r in rows]
    assert statuses.count("degraded") == 1, rows
    assert statuses.count("ok") == 4  # the degraded repeat ran again: the point still has its 4
    degraded = next(r for r in rows if r[1] == "degraded")
    assert victim in degraded[3] and "2 workers at its start" in degraded[3], degraded[3]
    assert degraded[2] == 2 and '"workers_lost": 1' in degraded[4]
    after = rows[rows.index(degraded) + 1 :]
    assert after and all(r[1] == "ok" and r[2] == 2 for r in after)  # on the restored count
    assert flab.workers == 2 and victim not in flab.client.run(os.getpid)
    # Analysis takes the ok trials only, and the results say what was left out.
    assert len(results.ok) == 4 and results.summary()[["ok", "failed"]].values.tolist() == [[4, 0]]
    assert len(results.degraded) == 1 and victim in results.degraded["error"].iloc[0]
    assert any("lost a worker mid-run" in n for n in results.notes())


class Pinned(labkit.workloads.BaseWorkload):
    """Naps pinned strictly to one worker's address: a task that can never run once that
    worker is gone (its nanny restarts it under a new address)."""

    name = "test-pinned"
    defaults = {"seconds": 1.5}

    def setup(self, lab: labkit.Lab, **params: object) -> tuple:
        return lab.client, params

    def run(self, state: tuple) -> Work:
        client, p = state
        first = sorted(client.scheduler_info()["workers"])[0]
        client.submit(_nap, 0, p["seconds"], workers=[first], allow_other_workers=False, pure=False).result()
        return Work(1, "tasks")


def _kill_during_a_timed_run(
    client: distributed.Client, store: Path, victim: str, pid: int, stop: threading.Event
) -> None:
    """SIGKILL the worker ``victim`` once a timed run is under way on it: after the first trial
    is stored (setup and the first run are over), the first moment the scheduler shows it
    processing a task. Where the signal lands does not depend on how busy the machine is."""
    while not stop.wait(0.02):
        try:
            stored = store.is_file() and any(r[1] == "ok" for r in _trials(store))
        except sqlite3.Error:  # the sweep is creating the store
            stored = False
        if stored and client.processing(workers=[victim]).get(victim):
            os.kill(pid, signal.SIGKILL)
            return


@pytest.mark.parametrize("workload", ["synthetic", "pinned", "stream-latency"])
def test_a_lost_worker_ends_its_trial_as_degraded_whatever_the_workload(
    flab: labkit.Lab, tmp_path: Path, workload: str
) -> None:
    """A worker killed during a timed run of 1.5 s (its tasks pinned to it, or a study's
    workload's): the trial ends degraded as soon as the lab sees it go, and the rest is measured
    (no timeout_s given: nothing but the watch stops the pinned run)."""
    store = tmp_path / "lost.db"
    pids = flab.client.run(os.getpid)
    victim, pid = sorted(pids.items())[0]
    stop = threading.Event()
    killer = threading.Thread(target=_kill_during_a_timed_run, args=(flab.client, store, victim, pid, stop))
    sweeps = {
        "synthetic": lambda: labkit.Sweep("synthetic", grid={"workers": [2]}, params={"work_s": 1.5}, **repeats),
        "pinned": lambda: labkit.Sweep(Pinned(), grid={"seconds": [1.5]}, **repeats),
        # a study's workload (notebook 04's): 1500 records at 1000 a second, about 1.5 s a run
        "stream-latency": lambda: labkit.Sweep(
            "stream-latency", grid={"workers": [2]}, params={"records": 1500, "rate": 1000.0, "layers": 2}, **repeats
        ),
    }
    repeats = {"repeats": 6, "warmup": 0, "store": store}
    sweep = sweeps[workload]()
    killer.start()
    try:
        t0 = time.monotonic()
        results = sweep.run(flab, live=False)
        took = time.monotonic() - t0
    finally:
        stop.set()
        killer.join()
    rows = _trials(store)
    statuses = [r[1] for r in rows]
    assert statuses.count("degraded") >= 1 and statuses.count("ok") == 6, rows
    assert victim in results.degraded["error"].iloc[0]
    assert took < 300  # not a timing claim: the run ended at all, long before any default limit of 600 s
    assert flab.workers == 2
    # The figures name workers by their slot: the restarted worker (a new address) is worker 1 or 2 again
    fig = results.plot()
    labels = {t for ax in fig.axes for t in ax.get_legend_handles_labels()[1] if t.startswith("worker ")}
    assert labels and labels <= {"worker 1", "worker 2"}, labels


def test_the_default_time_limit_follows_the_points_own_times() -> None:
    from labkit.experiment.faults import FIRST_LIMIT_S, default_limit

    assert default_limit([]) == FIRST_LIMIT_S
    assert default_limit([0.1, 0.2]) == 60.0 and default_limit([30.0]) == 600.0


def test_a_trial_past_its_timeout_is_cancelled_on_the_cluster(flab: labkit.Lab, tmp_path: Path) -> None:
    store = tmp_path / "timeout.db"
    sweep = labkit.Sweep(
        Naps(),
        grid={"seconds": [0.05, 3.0]},
        params={"tasks": 4},
        repeats=2,
        warmup=1,  # untimed: the workers import this module the first time they run _nap
        timeout_s=1.5,
        store=store,
        experiment="runaway",
    )
    results = sweep.run(flab, live=False)
    frame = results.frame
    slow, fast = frame[frame["seconds"] == 3.0], frame[frame["seconds"] == 0.05]
    assert set(slow["status"]) == {"timeout"} and slow["error"].str.contains("its tasks were cancelled").any()
    assert (fast["status"] == "ok").all() and len(fast) == 2, fast[["status", "error"]].to_string()
    # The cluster is usable after, with nothing of the runaway trial left on it.
    assert flab.wait_idle(10) and flab.client.submit(sum, [1, 2]).result() == 3


def test_an_interrupted_run_cancels_its_tasks(flab: labkit.Lab) -> None:
    """What Jupyter's interrupt does: KeyboardInterrupt in the thread that waits on the run."""
    from labkit.experiment.faults import call_timed

    client = flab.client

    def run(_: object) -> None:
        futures = client.map(_nap, range(8), seconds=5.0, pure=False)
        threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,)).start()
        client.gather(futures)

    # Python's own handler, as in a kernel: a test run earlier in this process may have set another.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for timeout_s in (None, 60.0):
            with pytest.raises(KeyboardInterrupt):
                call_timed(run, None, timeout_s, flab)
            # The naps were cancelled: the workers are idle long before 8 × 5 s of naps would end.
            assert flab.wait_idle(10), distributed.get_client().processing()
    finally:
        signal.signal(signal.SIGINT, previous)


CALLS = {"n": 0}


@labkit.workload("test-interruptible")
def interruptible(lab, n: int = 1, interrupt_at: int = 0):
    """Counts its calls; the ``interrupt_at``-th raises KeyboardInterrupt, as Jupyter's interrupt does."""
    CALLS["n"] += 1
    if CALLS["n"] == interrupt_at:
        raise KeyboardInterrupt
    return Work(lab.client.submit(sum, range(n)).result(), "items")


def test_an_interrupted_sweep_keeps_its_trials_and_resumes(flab: labkit.Lab, tmp_path: Path) -> None:
    store = tmp_path / "interrupted.db"
    grid = {"n": [1, 2, 3]}
    CALLS["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        labkit.Sweep("test-interruptible", grid=grid, params={"interrupt_at": 4}, repeats=2, warmup=0, store=store).run(
            flab, live=False
        )
    with sqlite3.connect(store) as conn:  # the store opens cleanly: closed by the sweep
        runs = conn.execute("SELECT status FROM runs").fetchall()
        kept = conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'ok'").fetchone()[0]
    assert runs == [("interrupted",)] and kept == 3  # the three runs before the interrupt
    CALLS["n"] = 0
    results = labkit.Sweep(
        "test-interruptible", grid=grid, params={"interrupt_at": 4}, repeats=2, warmup=0, store=store
    ).run(flab, live=False)
    assert CALLS["n"] == 3  # only the three runs not yet measured
    assert len(results.ok) == 6 and any("3 of 6" in n or "reused" in n for n in results.notes())


def _hog(mb: int) -> int:
    """Holds ``mb`` MiB, touched 32 MiB at a time, for a moment."""
    import numpy as np

    held = [np.ones(32 * 2**17) for _ in range(mb // 32)]  # 32 MiB of float64 each
    time.sleep(0.5)
    return len(held)


class MemoryHog(labkit.workloads.BaseWorkload):
    name = "test-memory-hog"
    defaults = {"mb": 32}

    def setup(self, lab: labkit.Lab, **params: object) -> tuple:
        return lab.client, params

    def run(self, state: tuple) -> Work:
        client, p = state
        return Work(client.submit(_hog, p["mb"], pure=False).result(), "items")


def test_a_trial_past_the_memory_limit_is_recorded_with_that_reason(tmp_path: Path) -> None:
    import dask

    # One retry, not three: each one waits for the nanny to start a worker again.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        labkit.Lab(workers=1, threads_per_worker=1, memory_limit="700MiB", dashboard=False) as lab,
    ):
        # timeout_s: should the nanny not act, the trial ends as a timeout rather than hanging the test
        sweep = labkit.Sweep(
            MemoryHog(), grid={"mb": [32, 2048]}, repeats=1, warmup=0, timeout_s=240, store=tmp_path / "m.db"
        )
        results = sweep.run(lab, live=False)
        frame = results.frame
        small, big = frame[frame["mb"] == 32], frame[frame["mb"] == 2048]
        assert (small["status"] == "ok").all()
        assert (big["status"] == "error").all()
        error = big["error"].iloc[0]
        assert "KilledWorker" in error and "past its memory limit" in error, error
        # The sweep went on and the cluster is usable after.
        assert lab.client.submit(_hog, 32, pure=False).result() == 1 and lab.workers == 1


def test_an_interrupt_sent_to_the_process_group_leaves_the_workers_up() -> None:
    # Jupyter interrupts a kernel with SIGINT to its process group, local workers included.
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        before = lab.client.run(os.getpid)
        assert len(before) == 2 and os.getpid() not in before.values()
        for pid in before.values():
            os.kill(pid, signal.SIGINT)
        time.sleep(1.0)  # a worker that took it would be closing by now (a plain LocalCluster's do)
        assert lab.client.run(os.getpid) == before  # the same processes, still there
        assert lab.client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3


def test_a_worker_whose_nanny_cannot_bring_it_back_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nanny that failed to restart its worker keeps its slot with no worker in it; the
    sweep's recovery starts a new worker in its place instead of waiting on that slot."""
    from labkit.experiment import faults

    monkeypatch.setattr(faults, "RESTART_WAIT_S", 3.0)
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        name, nanny = sorted(lab.cluster.workers.items())[0]
        lab.cluster.sync(nanny.close, reason="a nanny that gave up")  # its worker gone for good, its slot kept
        deadline = time.monotonic() + 60
        while lab.workers != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lab.workers == 1 and name in lab.cluster.worker_spec
        assert faults.restore_workers(lab, 2) == ""
        assert lab.workers == 2 and nanny not in lab.cluster.workers.values()  # a new nanny (its name may be reused)
        assert lab.client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
