"""Tests of the Monitor, the time split and the alerts, on real local clusters."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import dask
import dask.array as da
import distributed
import pytest

import labkit
from labkit.errors import ParameterError
from labkit.measure.alerts import Alert, AlertLog, AlertRules, worker_conditions
from labkit.measure.monitor import Monitor
from labkit.measure.power import EnergyMeter, RaplCounter
from labkit.measure.resources import Sample, resource_summary
from labkit.measure.timesplit import TrialSpan
from labkit.store import ResultStore


@pytest.fixture(scope="module")
def mlab() -> Iterator[labkit.Lab]:
    """This module's own 2-worker cluster (tests here read its workers' metrics)."""
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab
    assert lab.closed


@pytest.fixture(scope="module")
def data(mlab: labkit.Lab) -> da.Array:
    x = mlab.client.persist(da.random.default_rng(0).random(8_000_000, chunks=500_000))
    distributed.wait(x)
    return x


def _work(x: da.Array) -> float:
    return float(((x[::-1] + x) ** 2).sum().compute())  # the reversal moves blocks between workers


def _workers(lab: labkit.Lab) -> dict[str, dict]:
    # asked directly: client.scheduler_info() may return its cache, refreshed without workers
    return lab.client.sync(lab.client.scheduler.identity, n_workers=-1)["workers"]


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "labkit-monitor"]


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [0, -0.5])
def test_interval_must_be_positive(mlab: labkit.Lab, interval: float) -> None:
    with pytest.raises(ParameterError, match="interval"):
        Monitor(mlab, interval=interval)


def test_interval_must_be_a_number(mlab: labkit.Lab) -> None:
    with pytest.raises(TypeError, match="interval"):
        Monitor(mlab, interval="fast")


def test_rules_are_checked() -> None:
    with pytest.raises(ParameterError, match="straggler_slowdown"):
        AlertRules(straggler_slowdown=0.9)


# -- sampling, summaries, store rows ------------------------------------------------------


def test_samples_summary_and_store_rows(mlab: labkit.Lab, data: da.Array) -> None:
    rows: list[tuple] = []
    with Monitor(mlab, interval=0.2, sink=rows.extend, run_id="run1") as monitor:
        assert monitor.running and monitor.start() is monitor  # start is idempotent
        time.sleep(0.3)
        with monitor.trial("sum #0") as window:
            assert monitor.current_trial == "sum #0"
            for _ in range(3):
                _work(data)
        assert monitor.current_trial is None
        window.trial = 42  # the store's id, known once the trial is recorded
        summary = monitor.summary(window)
    monitor.close()  # idempotent
    assert not monitor.running

    threads = {w: info["nthreads"] for w, info in _workers(mlab).items()}
    workers = set(threads)
    worker_samples = [s for s in monitor.samples if s.worker in workers]
    assert {s.metric for s in worker_samples} >= {"cpu_percent", "memory_bytes", "managed_bytes", "spilled_disk_bytes"}
    for s in worker_samples:
        if s.metric == "memory_bytes":
            assert s.value > 10 * 2**20
        if s.metric == "cpu_percent":
            # a worker process also runs its event loop and comms: allow a little over its threads
            assert 0 <= s.value <= 100 * (threads[s.worker] + 1)
    # GPU figures appear exactly where Dask's NVML support reports them: never invented
    has_gpu = any("gpu_utilization" in w["metrics"] for w in _workers(mlab).values())
    assert any(s.metric.startswith("gpu") for s in worker_samples) == has_gpu
    assert any(s.worker == "client" and s.metric == "cpu_percent" for s in monitor.samples)

    assert summary.measurements >= 2 and set(summary.workers) == workers
    assert summary.peak_memory_bytes == max(summary.peak_memory_by_worker.values()) > 10 * 2**20
    assert 0 < summary.cpu_percent_mean <= 200
    assert summary.spilled_bytes == 0
    assert summary.net_read_bytes is not None and summary.net_read_bytes > 0
    assert (summary.gpu_utilization_percent is None) == (not has_gpu)
    assert (summary.energy_j is None) == (not EnergyMeter().counters)
    assert set(summary.to_metrics()) <= set(summary.to_dict())

    # rows are the store's format and carry the id set after the block
    assert rows and all(len(r) == 6 and r[0] == "run1" for r in rows)
    assert {r[1] for r in rows} == {None, 42}
    assert all(window.start <= r[2] <= window.end for r in rows if r[1] == 42)
    with ResultStore(":memory:") as store:
        store.add_samples(rows)
        assert len(store.samples_frame("run1")) == len(rows)
    df = monitor.to_pandas()
    assert list(df.columns) == ["time", "worker", "metric", "value", "trial"] and len(df) == len(monitor.samples)


def test_resource_summary_integrates_rates_and_counts_spill_increases() -> None:
    s = [Sample(t, "host:h", "net_read_bps", 100.0) for t in (0.0, 1.0, 2.0, 3.0)]
    s += [Sample(t, "w", "spilled_disk_bytes", v) for t, v in ((0.0, 50.0), (1.0, 80.0), (2.0, 30.0), (3.0, 70.0))]
    s += [Sample(t, "w", "memory_bytes", v) for t, v in ((0.0, 1e8), (1.0, 3e8), (2.0, 2e8), (3.0, 1e8), (9.0, 9e8))]
    r = resource_summary(s, start=0.5, end=2.5)
    assert r.workers == ["w"] and r.measurements == 3 and r.resolution_s == 1.0
    assert r.peak_memory_bytes == 3e8  # the sample at 9.0 covers (3, 9]: after the trial
    assert r.net_read_bytes == pytest.approx(200.0)  # 100 B/s over 2 s
    assert r.spilled_bytes == 30.0 + 40.0  # increases only: unspilling is not negative spill
    assert r.net_write_bytes is None and r.cpu_percent_mean is None  # never measured: None


# -- where the time went ------------------------------------------------------------------


def test_time_split_sums_to_the_span_total(mlab: labkit.Lab, data: da.Array) -> None:
    with TrialSpan(mlab, "split") as span:
        for _ in range(3):
            _work(data)
    split = span.read()
    assert split.settled
    assert split.total_s > 0 and split.wall_s > 0
    assert split.accounted_s == pytest.approx(split.total_s, rel=0.10)
    assert split.compute_cpu_s > 0 and split.idle_s >= 0
    assert sum(split.fractions().values()) == pytest.approx(1.0, rel=0.10)
    assert set(split.workers) == set(_workers(mlab))
    assert sum(w.tasks for w in split.workers.values()) > 0 and not split.tasks_missing
    assert set(split.to_metrics()) >= {"time_compute_cpu_s", "time_transfer_s", "time_total_s"}


def test_an_empty_span_reads_as_nothing_done(mlab: labkit.Lab) -> None:
    with TrialSpan(mlab, "empty") as span:
        pass  # no Dask work: the scheduler never sees the span
    split = span.read(timeout=1)
    assert split.total_s == 0 and split.accounted_s == 0 and split.stragglers == []


def _sleepy(i: int, slow: str) -> int:
    time.sleep(0.12 if distributed.get_worker().address == slow else 0.03)
    return i


def test_a_slow_worker_is_flagged_as_straggler(mlab: labkit.Lab) -> None:
    client = mlab.client
    slow = min(_workers(mlab))
    alerts: list[Alert] = []
    monitor = Monitor(mlab, on_alert=alerts.append)  # not started: sample_once ticks in this thread
    with monitor.trial() as window, TrialSpan(mlab, "slow") as span:
        client.gather(client.map(_sleepy, range(24), slow=slow, pure=False))
    split = span.read()
    assert window.trial == "trial-0"
    assert split.stragglers == [slow]
    assert split.workers[slow].slowdown > 2
    assert monitor.check_stragglers(split, window)[0].worker == slow
    assert monitor.check_stragglers(split, window) == []  # same episode: no second alert
    assert [a.kind for a in alerts] == ["straggler"] and window.alerts == alerts
    summary = monitor.summary(window, timeout=2)  # without the thread, it samples here
    assert summary.measurements >= 1 and summary.cpu_percent_mean is not None


def test_span_reaches_work_submitted_from_a_copied_context(mlab: labkit.Lab, data: da.Array) -> None:
    import concurrent.futures
    import contextvars

    with TrialSpan(mlab, "threaded") as span, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(contextvars.copy_context().run, _work, data).result()
    assert span.read().compute_cpu_s > 0


# -- alerts on a worker with little memory -----------------------------------------------


def test_spill_memory_and_worker_lost_alerts() -> None:
    alerts: list[Alert] = []
    rules = AlertRules(memory_fraction=0.35)
    config = {
        "distributed.worker.memory.target": 0.4,
        "distributed.worker.memory.spill": 0.5,
        # the client refreshes its cached scheduler info (without workers) this often
        "distributed.client.scheduler-info-interval": "10ms",
    }
    with dask.config.set(config):
        lab = labkit.Lab(workers=2, threads_per_worker=1, memory_limit="300MiB", dashboard=False)
    with lab, Monitor(lab, interval=0.2, rules=rules, on_alert=alerts.append) as monitor:
        for _ in range(300):  # client.scheduler_info() here would lose both workers ~3 times
            monitor.sample_once()
        assert not alerts
        with monitor.trial("spill") as window:
            x = lab.client.persist(da.random.default_rng(1).random(50_000_000, chunks=2_500_000))  # 400 MB
            distributed.wait(x)
        summary = monitor.summary(window)
        assert summary.spilled_bytes > 0
        assert summary.peak_memory_fraction > 0.35
        kinds = [a.kind for a in alerts]
        assert "spill" in kinds and "memory" in kinds
        assert len([a for a in alerts if a.kind == "spill"]) <= 2  # once per worker, not per sample
        assert all(a.trial in ("spill", None) for a in alerts)
        assert {a.kind for a in window.alerts} >= {"spill"} and all(a.trial == "spill" for a in window.alerts)
        del x

        with monitor.scaling():  # a deliberate scale-down is no loss
            lab.scale(1)
        time.sleep(0.6)
        assert "worker-lost" not in [a.kind for a in alerts]
        lab.cluster.scale(2)
        deadline = time.monotonic() + 30
        while lab.workers < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        lab.cluster.scale(1)  # a worker leaves behind the monitor's back
        deadline = time.monotonic() + 10
        while "worker-lost" not in [a.kind for a in alerts] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [a.kind for a in alerts].count("worker-lost") == 1


# -- lifetime ----------------------------------------------------------------------------


def test_monitor_thread_stops_with_the_lab() -> None:
    lab = labkit.Lab(workers=1, threads_per_worker=1, dashboard=False)
    before = set(threading.enumerate())
    monitor = Monitor(lab, interval=0.1).start()
    assert monitor.running and len(_monitor_threads()) >= 1
    lab.close()
    deadline = time.monotonic() + 5
    while monitor.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not monitor.running
    left = {t for t in set(threading.enumerate()) - before if t.is_alive()}
    assert not [t for t in left if not t.name.startswith("Dask-Offload")], left
    monitor.close()


def test_stop_without_start_and_reuse_after_close(mlab: labkit.Lab) -> None:
    monitor = Monitor(mlab)
    monitor.stop()
    monitor.close()
    monitor.close()
    with pytest.raises(RuntimeError, match="closed"):
        monitor.start()


# -- pieces without a cluster ------------------------------------------------------------


def test_alert_log_fires_once_per_episode_and_calls_back() -> None:
    got: list[Alert] = []
    log = AlertLog(on_alert=got.append)
    assert log.update("spill", "w", True, "on", at=1.0) is not None
    assert log.update("spill", "w", True, "still", at=2.0) is None
    log.update("spill", "w", False, "", at=3.0)
    assert log.update("spill", "w", True, "again", at=4.0) is not None
    assert [a.message for a in got] == ["on", "again"] == [a.message for a in log.alerts]


def test_alert_log_survives_a_broken_callback(caplog: pytest.LogCaptureFixture) -> None:
    log = AlertLog(on_alert=lambda a: 1 / 0)
    assert log.event("worker-lost", "w", "gone", at=1.0).kind == "worker-lost"
    assert "on_alert callback failed" in caplog.text


def test_worker_conditions_read_dask_metrics_names() -> None:
    m = {
        "memory": 900,
        "spilled_bytes": {"memory": 0, "disk": 10},
        "gpu_utilization": 0,
        "task_counts": {"executing": 2},
    }
    held = {kind: holds for kind, holds, _ in worker_conditions(AlertRules(), "w", m, 1000)}
    assert held == {"memory": True, "spill": True, "gpu-idle": True}
    assert worker_conditions(AlertRules(), "w", {"memory": 900}, None) == []  # no limit: no fraction


def test_rapl_counter_reads_and_unwraps(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    pkg, sub = Path(tmp_path) / "intel-rapl:0", Path(tmp_path) / "intel-rapl:0:0"
    for d in (pkg, sub):
        d.mkdir()
        (d / "max_energy_range_uj").write_text("1000000\n")
    (pkg / "energy_uj").write_text("900000\n")
    (sub / "energy_uj").write_text("5\n")
    counter = RaplCounter(tmp_path)
    assert [p.parent.name for p, _ in counter.domains] == ["intel-rapl:0"]  # packages only
    assert counter.read() == 0.0
    (pkg / "energy_uj").write_text("100000\n")  # wrapped past 1 J
    assert counter.read() == pytest.approx(0.2)
    assert not RaplCounter(Path(tmp_path) / "absent").available
