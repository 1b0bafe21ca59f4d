"""Straggler alerts: a worker whose tasks took longer than the same tasks elsewhere, and only that."""

from __future__ import annotations

import time
from collections.abc import Iterator

import distributed
import numpy as np
import pytest

import labkit
from labkit.measure.alerts import Alert, AlertRules
from labkit.measure.monitor import Monitor
from labkit.measure.timesplit import TrialSpan, WorkerBusy, find_stragglers


@pytest.fixture(scope="module")
def alab() -> Iterator[labkit.Lab]:
    """This module's own 2-worker cluster (its tests pin tasks to workers)."""
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def _workers(lab: labkit.Lab) -> list[str]:
    return sorted(lab.client.sync(lab.client.scheduler.identity, n_workers=-1)["workers"])


def _sleepy(i: int, slow: str) -> int:
    time.sleep(0.12 if distributed.get_worker().address == slow else 0.03)
    return i


def test_a_slow_worker_is_flagged_and_the_fast_one_is_not(alab: labkit.Lab) -> None:
    client = alab.client
    slow, fast = _workers(alab)
    alerts: list[Alert] = []
    monitor = Monitor(alab, on_alert=alerts.append)  # not started: sample_once ticks in this thread
    described = "sleepy, workers=2, repeat 0"
    with monitor.trial(description=described) as window, TrialSpan(alab, "slow", description=described) as span:
        client.gather(client.map(_sleepy, range(24), slow=slow, pure=False))
    split = span.read()
    assert window.trial == "trial-0"
    assert split.stragglers == [slow]
    assert split.workers[fast].straggler is None  # it was less busy and quicker: never a straggler
    assert split.workers[slow].slowdown == pytest.approx(4.0, rel=0.3)  # 0.12 s against 0.03 s
    assert split.workers[fast].slowdown == pytest.approx(0.25, rel=0.3)
    fired = monitor.check_stragglers(split, window)
    assert [a.worker for a in fired] == [slow]
    assert described in fired[0].message and "sleepy tasks" in fired[0].message and "trial-0" not in fired[0].message
    assert monitor.check_stragglers(split, window) == []  # same episode: no second alert
    assert [a.kind for a in alerts] == ["straggler"] and window.alerts == alerts
    summary = monitor.summary(window, timeout=10)  # without the thread, it samples here
    assert summary.measurements >= 1 and summary.cpu_percent_mean is not None


@pytest.mark.parametrize(
    "params",
    [
        # the serial task makes one worker busier, and the other's single task shorter
        {"work_s": 0.16, "serial_fraction": 0.5, "tasks_per_worker": 1},
        {"work_s": 0.4, "serial_fraction": 0.1, "tasks_per_worker": 6},
    ],
)
def test_equal_sleeps_raise_no_straggler_alert(alab: labkit.Lab, params: dict) -> None:
    wl = labkit.workloads.get("synthetic")
    state = wl.setup(alab, **{**wl.defaults, **params})
    monitor = Monitor(alab)
    for i in range(4):
        with TrialSpan(alab, f"synthetic-{i}") as span:
            wl.run(state)
        split = span.read()
        assert sum(w.tasks for w in split.workers.values()) == 1 + 2 * params["tasks_per_worker"]
        assert split.stragglers == [] and monitor.check_stragglers(split) == []
    assert monitor.alerts == []


def _tasks(durations: dict[str, list[float]]) -> dict[str, dict[str, tuple[int, float, list[float]]]]:
    return {w: {"chunk": (len(d), sum(d), sorted(d))} for w, d in durations.items()}


def _judge(durations: dict[str, list[float]], rules: AlertRules | None = None) -> list[str]:
    workers = {w: WorkerBusy(w, 1, len(d), sum(d)) for w, d in durations.items()}
    return find_stragglers(workers, _tasks(durations), rules or AlertRules())


def test_stragglers_are_judged_against_the_spread_of_the_same_tasks() -> None:
    rng = np.random.default_rng(0)
    same = {w: list(0.05 * rng.lognormal(0, 0.05, 20)) for w in ("a", "b", "c")}
    assert _judge(same) == []
    slow = {**same, "c": list(0.10 * rng.lognormal(0, 0.05, 20))}  # twice as long, beyond the spread
    assert _judge(slow) == ["c"]
    fast = {**same, "c": list(0.02 * rng.lognormal(0, 0.05, 20))}  # shorter is never straggling
    assert _judge(fast) == []
    # 1.3x longer is real here, but below the 1.5x a straggler must lose
    assert _judge({**same, "c": list(0.065 * rng.lognormal(0, 0.05, 20))}) == []
    # twice as long in the median, but tasks this spread out cannot tell
    wide = {w: list(0.05 * rng.lognormal(0, 1.5, 6)) for w in ("a", "b")}
    wide["c"] = list(0.10 * rng.lognormal(0, 1.5, 6))
    assert _judge(wide) == []
    # one task on the slow worker is too few to tell
    assert _judge({**same, "c": [0.5]}) == []
    # a real slowdown that costs less than straggler_min_s in all is not worth an alert
    short = {w: [0.001] * 20 for w in ("a", "b")} | {"c": [0.002] * 20}
    assert _judge(short) == [] and _judge(short, AlertRules(straggler_min_s=0.01)) == ["c"]


class SlowOnOne(labkit.workloads.BaseWorkload):
    """24 sleeps per run; those on the named worker take four times as long."""

    name = "slow-on-one"
    defaults = {"slow": "", "size": 24}

    def setup(self, lab: labkit.Lab, **params: object) -> tuple:
        return lab.client, params

    def run(self, state: tuple) -> labkit.Work:
        client, params = state
        client.gather(client.map(_sleepy, range(params["size"]), slow=params["slow"], pure=False))
        return labkit.Work(params["size"], "tasks")


def test_a_sweep_names_the_straggler_by_worker_and_point(alab: labkit.Lab, tmp_path) -> None:
    slow, _ = _workers(alab)
    sweep = labkit.Sweep(
        SlowOnOne(),
        grid={"size": [24]},
        params={"slow": slow},
        repeats=1,
        warmup=0,
        store=tmp_path / "s.db",
        experiment="stragglers",
    )
    results = sweep.run(alab, live=False)
    alerts = results.alerts()
    stragglers = alerts[alerts["kind"] == "straggler"]
    assert not stragglers.empty, alerts
    message = stragglers["message"].iloc[0]
    assert slow in message and "slow-on-one, size=24" in message, message
    assert f"{results.run_id}-" not in message  # never by the internal trial label


def test_the_top_outside_processes_include_one_started_between_the_readings() -> None:
    """A process born between two readings used its whole CPU in between; one of the lab's own
    (its pid among the readings' ``pids`` or ``lab_pids``) is never named."""
    from labkit.measure.alerts import top_processes

    prev = {"time": 100.0, "procs": {1: ("init", 5.0, 1.0), 7: ("lab", 1.0, 50.0)}, "pids": [7], "lab_pids": []}
    now = {
        "time": 101.0,
        "procs": {1: ("init", 5.1, 1.0), 7: ("lab", 1.9, 50.0), 9: ("hog", 0.6, 100.2), 3: ("old", 4.0, 20.0)},
        "pids": [7],
        "lab_pids": [],
    }
    top = top_processes(prev, now)
    assert [(name, pid) for name, pid, _ in top] == [("hog (started meanwhile)", 9), ("init", 1)]
    assert top[0][2] == 60.0 and abs(top[1][2] - 10.0) < 1e-9  # "old" was there before, unseen: not counted
