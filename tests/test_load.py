"""Outside load: seen with each trial, flagged, alerted once per episode, read through workers elsewhere.

The load comes from a CPU hog that the tests start themselves (a bounded busy loop in a
subprocess, killed in a ``finally``). The machine may be busy with other work already: each
test compares the hog's part against its own baseline, read just before the hog starts, and
checks that every flag follows the rule (above the thresholds, and only then), not that the
machine was quiet.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

import labkit
from labkit.measure.alerts import Alert, AlertRules
from labkit.measure.host import host_reader
from labkit.measure.load import load_rates
from labkit.measure.monitor import Monitor

try:
    from .hog import HOG, cpu_hog
except ImportError:
    from hog import HOG, cpu_hog  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def llab() -> Iterator[labkit.Lab]:
    """This module's own 2-worker cluster: the load it sees must be only the tests' own."""
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def outside_now(lab: labkit.Lab, seconds: float = 1.5) -> float:
    """Outside CPU on this machine over the next ``seconds`` (percent of a core), as labkit reads it."""
    monitor = Monitor(lab)
    monitor.sample_once()
    time.sleep(seconds)
    monitor.sample_once()
    reading = monitor.latest_load
    assert reading is not None and reading.outside_cpu_percent is not None
    return reading.outside_cpu_percent


def _room(baseline: float) -> bool:
    """Whether the cores had half a core free for the hog beside other work (``baseline``, % of
    a core): on a saturated machine another process can add nothing to measure."""
    return baseline + 50 <= 100 * (os.cpu_count() or 1)


def test_load_rates_count_other_processes_and_leave_out_the_clusters() -> None:
    read = host_reader()
    with cpu_hog(10) as hog:
        time.sleep(0.3)  # the interpreter has started and is spinning
        a = read([hog.pid], ())  # the hog as if it were the cluster's
        time.sleep(1.0)
        b = read([hog.pid], ())
    assert a["pids"] == b["pids"] == [hog.pid]
    # its own CPU time, as the kernel counts it per process (how much it got depends on what else runs)
    hog_percent = 100 * (b["cluster_cpu_s"] - a["cluster_cpu_s"]) / (b["time"] - a["time"])
    assert hog_percent > 10
    nobody = {"cluster_cpu_s": 0.0}
    outside = load_rates({**a, **nobody}, {**b, **nobody})
    # the machine's busy time includes the hog's (both count in 10 ms ticks: a few percent of slack)
    assert outside["outside_cpu_percent"] >= hog_percent - 5
    assert outside["cpu_percent"] * psutil.cpu_count() >= hog_percent - 5
    assert 0 <= outside["cpu_percent"] <= 100 and outside["loadavg_1m"] >= 0
    counted = load_rates(a, b)["outside_cpu_percent"]  # the hog left out
    assert counted == pytest.approx(max(0.0, outside["outside_cpu_percent"] - hog_percent), abs=1e-6)
    c = read([hog.pid], ())  # the hog has gone: a process set that changed is not measured
    assert c["pids"] == [] and math.isnan(load_rates(b, c)["outside_cpu_percent"])
    assert math.isnan(load_rates(None, c)["outside_cpu_percent"])  # a first reading has no interval
    assert math.isnan(load_rates(b, {**c, "pids": None, "cluster_cpu_s": None})["outside_cpu_percent"])


def test_a_child_that_starts_and_ends_between_two_readings_is_counted_with_its_parent() -> None:
    """A short-lived child (the environment's ``git``, a helper) is in no reading's process set;
    its CPU, which the parent's counters hold once it has waited for it, is the lab's."""
    read, me = host_reader(), (os.getpid(),)
    a = read([], (), (), me)
    work = "sum(range(30_000_000))"  # a fixed amount of work: 0.5-1 s of CPU on any machine
    subprocess.run([sys.executable, "-c", work], check=True)
    b = read([], (), (), me)
    assert a["lab_pids"] == b["lab_pids"]  # the child was never seen
    assert b["lab_cpu_s"] - a["lab_cpu_s"] >= 0.2


def test_a_process_the_lab_starts_between_two_passes_is_the_labs_in_the_next_reading() -> None:
    """The reader passes over every process at most every ``SCAN_EVERY_S``; a child the lab
    starts in between (a server's workers) uses CPU no counted process did, and the next
    reading finds it: the lab's, never outside load until the next scheduled pass."""
    from labkit.measure import host

    read, me = host_reader(), (os.getpid(),)
    first = read([], (), (), me)  # a pass: this process's descendants now
    with cpu_hog(10) as hog:
        time.sleep(0.5)
        second = read([], (), (), me)
    assert second["time"] - first["time"] < host.SCAN_EVERY_S  # not a scheduled pass
    assert hog.pid not in first["lab_pids"] and hog.pid in second["lab_pids"]


def test_a_short_window_is_flagged_only_beyond_what_rounding_can_move_its_figure() -> None:
    from labkit.measure.resources import Sample, resource_summary

    # One process counted, a 0.25 s interval on 2 CPUs: the 10 ms ticks alone (rounding, and
    # the machine's busy time sampled at each tick) move the figure by about 30% of a core.
    cpu = lambda busy: {"user": busy, "system": 0.0, "idle": 100.0 - busy}  # noqa: E731
    a = {"time": 0.0, "cpu": cpu(1.0), "loadavg": 1.0, "cluster_cpu_s": 0.0, "pids": [7], "tick_s": 0.01, "cpus": 2}
    b = {**a, "time": 0.25, "cpu": cpu(1.08)}  # 0.08 s busy, none the cluster's: 32% of a core
    rates = load_rates(a, b)
    assert rates["outside_cpu_percent"] == pytest.approx(32.0) and 20 < rates["outside_resolution_percent"] < 40
    rules = AlertRules()
    assert rules.under_load(rates["outside_cpu_percent"], None)  # above 25% without the rounding
    assert rules.load_flag(rates["outside_cpu_percent"], None, rates["outside_resolution_percent"]) is False

    def summary(outside: float, res: float, end: float) -> Any:
        times = [0.0, 0.25, 0.5, 0.75, 1.0]
        samples = [Sample(t, "client", "outside_cpu_percent", outside) for t in times]
        samples += [Sample(t, "client", "outside_resolution_percent", res) for t in times]
        return resource_summary(samples, 0.3, end)

    short = summary(32.0, 15.0, 0.45)  # within one reading: its whole rounding
    assert short.outside_resolution_percent == pytest.approx(15.0) and short.under_load is False
    assert summary(60.0, 15.0, 0.45).under_load is True  # well beyond it
    # Over three readings their errors add as independent ones: √3 times closer than one.
    long = summary(40.0, 15.0, 0.95)
    assert long.outside_resolution_percent == pytest.approx(15.0 / math.sqrt(3)) and long.under_load is True
    assert summary(32.0, 15.0, 0.95).under_load is False  # 32% is within 25% + 8.7%


def test_an_outside_load_alert_fires_once_per_episode(llab: labkit.Lab) -> None:
    rules = AlertRules()
    baseline = outside_now(llab)
    alerts: list[Alert] = []
    with Monitor(llab, interval=0.25, on_alert=alerts.append) as monitor:
        time.sleep(1.0)
        already = [a for a in alerts if a.kind == "outside-load"]
        assert baseline >= rules.outside_cpu_percent / 2 or not already, (baseline, already)  # quiet: no alert
        with cpu_hog(20):
            time.sleep(2.5)
            reading = monitor.latest_load
            assert reading is not None and reading.under_load is True
            if _room(baseline):  # the hog's share, over the baseline, where the cores had room for it
                assert reading.outside_cpu_percent >= baseline + 25
    fired = [a for a in alerts if a.kind == "outside-load"]
    # ~8 readings above the threshold while the hog ran: one episode, one alert (two where the
    # machine's own load already made an episode that ended before the hog began another)
    assert 1 <= len(fired) <= 1 + len(already)
    assert fired[-1].worker == "client" and "other processes used" in fired[-1].message


def test_machines_with_workers_are_read_through_a_worker(llab: labkit.Lab) -> None:
    monitor = Monitor(llab)
    monitor._load.local_hosts = set()  # as if the workers ran on another machine
    for _ in range(3):
        monitor.sample_once()
        time.sleep(0.3)
    host = next(iter(llab.client.sync(llab.client.scheduler.identity, n_workers=-1)["workers"].values()))["host"]
    assert set(monitor._load.latest) == {"client", f"host:{host}"}
    remote = monitor._load.latest[f"host:{host}"]
    assert remote.outside_cpu_percent is not None and remote.loadavg_1m is not None
    # read there, the cluster's processes are the workers and their nanny, which is also the scheduler's
    # process and this one (a LocalCluster runs its scheduler and nannies in the client's process)
    workers = llab.client.run(os.getpid)
    assert monitor._load._last[f"host:{host}"]["pids"] == sorted({os.getpid(), *workers.values()})


def _ok_trials(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store, timeout=5) as conn:
        try:
            return conn.execute("SELECT count(*) FROM trials WHERE status = 'ok'").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not made yet
            return 0


def test_a_sweep_flags_the_trials_run_under_outside_load(llab: labkit.Lab, tmp_path: Path) -> None:
    store = tmp_path / "load.db"
    hog: dict[str, Any] = {}
    stop = threading.Event()

    def start_hog_after(quiet: int) -> None:
        """Start the hog once ``quiet`` trials have been recorded (by count, not time: the
        trials' pace depends on the machine)."""
        while not stop.is_set():
            if _ok_trials(store) >= quiet:
                hog["at"] = time.time()  # before the fork: its CPU counts from here
                hog["proc"] = subprocess.Popen([sys.executable, "-c", HOG.format(seconds=60)])
                return
            time.sleep(0.05)

    starter = threading.Thread(target=start_hog_after, args=(30,), daemon=True)
    sweep = labkit.Sweep(
        "array-sum", grid={"workers": [2]}, params={"size_mb": 64.0}, repeats=100, warmup=1, store=store
    )
    starter.start()
    try:
        results = sweep.run(llab, live=False)
    finally:
        stop.set()
        starter.join(timeout=10)
        if "proc" in hog:
            hog["proc"].kill()
            hog["proc"].wait(timeout=10)
    assert "at" in hog, "the sweep ended before the hog started"
    at, margin = pd.Timestamp(hog["at"], unit="s", tz="UTC"), pd.Timedelta(seconds=0.6)
    frame = results.ok
    # a trial's load is read over the interval between two readings (<= 0.5 s apart) around it
    before = frame[frame["ended_at"] < at - margin]
    during = frame[frame["started_at"] > at + margin]
    assert len(before) >= 5 and len(during) >= 5, (len(before), len(during))
    rules = AlertRules()
    # Every trial is flagged exactly when its reading is above a threshold by more than the
    # counters' rounding can move it, busy machine or not.
    assert (frame["outside_resolution_percent"] > 0).all()
    for part in (before, during):
        outside = part["outside_cpu_percent"] - part["outside_resolution_percent"]
        above = (outside > rules.outside_cpu_percent) | (part["steal_percent"].fillna(0) > rules.steal_percent)
        assert (part["under_load"].astype(bool) == above).all(), part[["outside_cpu_percent", "steal_percent"]]
    # The hog's part against this test's own baseline: the trials while it ran saw its core.
    assert during["under_load"].tolist() == [True] * len(during), during[["outside_cpu_percent", "under_load"]]
    busy = before["outside_cpu_percent"].median() + 2 * before["cpu_percent_mean"].median()  # others + 2 workers
    if _room(busy):  # beside the workers and other work: at least a tenth of a core
        assert during["outside_cpu_percent"].median() >= before["outside_cpu_percent"].median() + 10
    assert frame["loadavg_1m"].notna().all()
    # Each flagged trial names its outside processes (issue 20), the hog among them.
    named = frame.loc[frame["under_load"].astype(bool), "outside_processes"]
    assert named.map(lambda x: isinstance(x, str) and x != "not read").all(), named
    assert named.str.contains(f"(pid {hog['proc'].pid})", regex=False).any(), named
    assert "Outside processes then (the most in each trial)" in results.conclusion()
    alerts = results.alerts()
    load_alerts = alerts[alerts["kind"] == "outside-load"]
    assert (
        (load_alerts["time"] >= hog["at"]).any()
        or (load_alerts["time"] < hog["at"]).any()
        and (
            before["under_load"].astype(bool).iloc[-3:].all()  # an episode already running when the hog began
        )
    ), load_alerts


# -- the lab's own processes (issue 20): not outside load, reported apart as lab overhead -----------

#: Run on the workers: at its exit, a worker process burns CPU for up to 1.5 s while ``flag`` exists.
EXIT_BURN = (
    "import atexit, os, time\n"
    "def _burn(flag={flag!r}):\n"
    "    t = time.time() + 1.5\n"
    "    while os.path.exists(flag) and time.time() < t: pass\n"
    "atexit.register(_burn)\n"
)


def _spy_readings(monitor: Monitor) -> list[dict[str, Any]]:
    """Every raw reading of the client's machine the monitor takes from now on."""
    readings: list[dict[str, Any]] = []
    read = monitor._load._read

    def spy(*args: Any) -> dict[str, Any]:
        readings.append(reading := read(*args))
        return reading

    monitor._load._read = spy
    return readings


def test_a_worker_exiting_after_a_scale_down_is_the_labs_not_outside_load(llab: labkit.Lab, tmp_path: Path) -> None:
    flag = tmp_path / "burn"
    flag.touch()
    llab.client.run(exec, EXIT_BURN.format(flag=str(flag)), {})
    before = set(llab.client.run(os.getpid).values())
    monitor = Monitor(llab, interval=0.1)
    readings = _spy_readings(monitor)
    try:
        with monitor, monitor.scaling():
            time.sleep(0.6)
            note = llab.scale(1)  # the retiring worker burns CPU while it exits
            time.sleep(0.3)
        (retired,) = before - set(llab.client.run(os.getpid).values())
        # the scale waited until the retired process had exited (it burns 1.5 s at most, the bound is 10 s)
        assert note is None and not psutil.pid_exists(retired)
    finally:
        flag.unlink()
        llab.scale(2)
    exiting = [r for r in readings if r["pids"] is not None and retired not in r["pids"] and retired in r["lab_pids"]]
    # readings came at once (every 0.25 s) while it exited: it was counted as the lab's, never as the cluster's gone
    assert len(exiting) >= 2, [(r["pids"], r["lab_pids"]) for r in readings]
    seen = [load_rates(a, b) for a, b in zip(exiting, exiting[1:])]
    assert all(not math.isnan(x["outside_cpu_percent"]) for x in seen)  # still measured meanwhile
    assert sum(x["lab_cpu_percent"] for x in seen) > 0  # it burned, and that is lab overhead
    # outside is what the machine was busy with beyond the cluster's and the lab's processes
    for a, b in zip(exiting, exiting[1:]):
        rates = load_rates({**a, "lab_cpu_s": 0.0, "lab_pids": []}, {**b, "lab_cpu_s": 0.0, "lab_pids": []})
        as_outside = rates["outside_cpu_percent"]  # had the exiting worker been someone else's
        counted = load_rates(a, b)
        assert counted["outside_cpu_percent"] <= as_outside + 1e-6
        assert counted["outside_cpu_percent"] == pytest.approx(
            max(0.0, as_outside - counted["lab_cpu_percent"]), abs=1e-6
        )


def test_a_cpu_hog_the_client_starts_is_outside_load(llab: labkit.Lab) -> None:
    baseline = outside_now(llab)
    monitor = Monitor(llab)
    readings = _spy_readings(monitor)
    with cpu_hog(20) as hog:
        time.sleep(0.3)
        monitor.sample_once()
        time.sleep(1.5)
        monitor.sample_once()
        # a child of the client process (where the nannies run), but not a worker's: not the lab's
        assert psutil.Process(hog.pid).ppid() == os.getpid()
        assert all(hog.pid not in r["pids"] and hog.pid not in r["lab_pids"] for r in readings)
        reading = monitor.latest_load
        assert reading is not None and reading.outside_cpu_percent is not None
        assert reading.under_load is True
        if _room(baseline):
            assert reading.outside_cpu_percent >= baseline + 25


def test_a_load_window_with_children_counts_the_processes_this_one_started_as_the_clusters(llab: labkit.Lab) -> None:
    """A study whose work runs in processes it starts (a model server, a JVM) reads them as the
    cluster's; a plain window reads the same process as outside load."""
    from labkit.experiment.lifecycle import LoadWindow

    with cpu_hog(10) as hog:
        time.sleep(0.3)
        own = LoadWindow(llab, children=True)._reading()
        plain = LoadWindow(llab)._reading()
    assert own is not None and plain is not None
    assert hog.pid in own["pids"] and hog.pid not in plain["pids"] + plain["lab_pids"]


def test_an_outside_load_alert_names_the_top_outside_processes(llab: labkit.Lab) -> None:
    from labkit.measure.alerts import load_alert

    rules = AlertRules()
    baseline = outside_now(llab)
    monitor = Monitor(llab)
    with cpu_hog(20) as hog:
        time.sleep(0.3)
        for _ in range(4):  # near the threshold from the second reading on: then read with a process snapshot
            monitor.sample_once()
            time.sleep(0.4)
        reading = monitor._load.latest["client"]
    assert reading.top is not None and reading.under_load is True
    pids = [pid for _, pid, _ in reading.top]
    assert hog.pid in pids and os.getpid() not in pids  # the cluster's own are never in it
    assert [share for *_, share in reading.top] == sorted((share for *_, share in reading.top), reverse=True)
    holds, message = load_alert(rules, reading, active=False)
    assert holds and "other processes used" in message()
    if pids.index(hog.pid) < 5 or _room(baseline):  # the alert names the top five
        assert f"(pid {hog.pid})" in message()


def test_the_lab_overhead_is_reported_apart(llab: labkit.Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.cluster import retire
    from labkit.experiment.lifecycle import LoadWindow

    with Monitor(llab, interval=0.25) as monitor:
        with monitor.trial("t") as window:
            time.sleep(1.2)
        monitor.summary(window)
        overhead = monitor.lab_overhead(window)
    frame = monitor.to_pandas()
    lab = frame[(frame["metric"] == "lab_cpu_percent") & (frame["worker"] == "client")]["value"].dropna()
    assert len(lab) >= 2 and (lab >= 0).all()
    assert overhead is not None and overhead >= 0
    with LoadWindow(llab) as metrics:
        time.sleep(0.5)
    assert metrics["lab_cpu_percent"] is not None and metrics["lab_cpu_percent"] >= 0
    # a kernel that a Jupyter server started: the server (its parent, at least) is the lab's
    monkeypatch.setenv("JPY_SESSION_NAME", "demo.ipynb")
    assert retire.lab_parents()[:1] == [os.getppid()]


#: A "browser": a process that starts a child of its own program, which connects to the
#: dashboard's port on 127.0.0.1 and keeps a core busy while connected (at most 30 s).
VIEWER = (
    "import subprocess, sys\n"
    "child = (\n"
    "    'import socket, time\\n'\n"
    "    's = socket.create_connection((\"127.0.0.1\", {port}))\\n'\n"
    "    't = time.time() + 30\\n'\n"
    "    'while time.time() < t: pass\\n'\n"
    ")\n"
    "subprocess.run([sys.executable, '-c', child])\n"
)


def test_a_browser_viewing_the_dashboard_is_lab_overhead_not_outside_load() -> None:
    from urllib.parse import urlsplit

    from labkit.cluster import viewers

    with labkit.Lab(workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as lab:
        assert lab.dashboard_link is not None
        port = urlsplit(lab.dashboard_link).port
        viewer = subprocess.Popen([sys.executable, "-c", VIEWER.format(port=port)])
        try:
            deadline = time.monotonic() + 20
            while viewer.pid not in viewers.viewer_roots({port}) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert viewer.pid in viewers.viewer_roots({port}), "the viewer never connected"
            monitor = Monitor(lab)
            monitor.sample_once()
            time.sleep(1.5)
            monitor.sample_once()
            reading = monitor.latest_load
        finally:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(viewer.pid).children(recursive=True):
                    child.kill()
            viewer.kill()
            viewer.wait(timeout=10)
    # The viewer's whole tree (its connected child, spinning) is the lab's: lab overhead.
    assert viewer.pid in monitor._load._viewers[1]
    assert reading is not None and reading.lab_cpu_percent is not None
    assert reading.lab_cpu_percent >= 25, reading  # at least a quarter of a core, on a busy machine too
