"""Tests of the Monitor, the time split and the alerts, on real local clusters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.array as da
import distributed
import pytest

import labkit
from labkit.common.errors import ParameterError
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


@pytest.mark.parametrize(
    "field, value",
    [("straggler_slowdown", 0.9), ("straggler_alpha", 0.0), ("outside_cpu_percent", -1.0), ("steal_percent", 101.0)],
)
def test_rules_are_checked(field: str, value: float) -> None:
    with pytest.raises(ParameterError, match=field):
        AlertRules(**{field: value})


# -- sampling, summaries, store rows ------------------------------------------------------


def test_samples_summary_and_store_rows(mlab: labkit.Lab, data: da.Array) -> None:
    rows: list[tuple] = []
    with Monitor(mlab, interval=0.2, sink=rows.extend, run_id="run1") as monitor:
        time.sleep(0.5)  # the load readings need one interval before the trial
        assert monitor.running and monitor.start() is monitor  # start is idempotent
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
    assert summary.net_loopback is True  # every worker on this machine: their traffic was loopback
    assert summary.resources_interpolated is (window.end - window.start < summary.resolution_s)
    # the outside load over the trial was read (its value depends on what else runs here)
    assert summary.outside_cpu_percent is not None and summary.outside_cpu_percent >= 0
    assert summary.loadavg_1m is not None and summary.loadavg_1m >= 0
    assert isinstance(summary.under_load, bool)
    beyond = summary.outside_cpu_percent - (summary.outside_resolution_percent or 0.0)  # beyond the rounding
    assert summary.under_load == (beyond > 25 or (summary.steal_percent or 0) > 5)
    assert monitor.latest_load is not None and monitor.latest_load.source == "client"
    assert (summary.gpu_utilization_percent is None) == (not has_gpu)
    assert (summary.energy_method == "not measured") == (not EnergyMeter().counters)
    assert (summary.energy_j is None) == (summary.energy_method in ("not measured", "below-resolution"))
    assert set(summary.to_metrics()) <= set(summary.to_dict())
    assert {"outside_cpu_percent", "loadavg_1m", "steal_percent", "under_load", "net_loopback"} <= set(
        summary.to_metrics()
    )

    # rows are the store's format and carry the id set after the block
    assert rows and all(len(r) == 6 and r[0] == "run1" for r in rows)
    assert {r[1] for r in rows} == {None, 42}
    assert all(window.start <= r[2] <= window.end for r in rows if r[1] == 42)
    with ResultStore(":memory:") as store:
        store.add_samples(rows)
        stored = store.samples_frame("run1")
        assert len(stored) == len(rows)
        # the first load reading has nothing to compare with: stored as NULL, not as a number
        first = stored[(stored["worker"] == "client") & (stored["metric"] == "outside_cpu_percent")].iloc[0]
        assert first["value"] is None or first["value"] != first["value"]
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
    assert r.net_loopback is False  # worker "w" and host "h": not known to be one machine
    one = resource_summary([*s, *(Sample(t, "tcp://h:1", "memory_bytes", 1e8) for t in (0.0, 1.0, 2.0, 3.0))], 0.5, 2.5)
    assert one.net_loopback is False  # "w" still counts as another machine
    local = [Sample(x.time, "tcp://h:1" if x.worker == "w" else x.worker, x.metric, x.value) for x in s]
    assert resource_summary(local, 0.5, 2.5).net_loopback is True  # every worker on host h
    assert resource_summary(local[4:], 0.5, 2.5).net_loopback is None  # no network counter
    assert r.outside_cpu_percent is None and r.under_load is None and r.loadavg_1m is None  # load not read
    assert r.resources_interpolated is False  # 2 s trial, 1 s heartbeats
    assert resource_summary(s, start=1.2, end=1.4).resources_interpolated is True  # inside one heartbeat


def test_load_figures_are_none_where_any_part_of_the_trial_was_not_measured() -> None:
    nan = float("nan")
    s = [Sample(t, "client", "outside_cpu_percent", v) for t, v in ((0.0, nan), (1.0, 10.0), (2.0, nan), (3.0, 90.0))]
    s += [Sample(t, "client", "steal_percent", v) for t, v in ((0.0, nan), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0))]
    assert resource_summary(s, 0.2, 0.8).outside_cpu_percent == 10.0  # (0, 1] measured
    assert resource_summary(s, 0.2, 0.8).under_load is False
    gap = resource_summary(s, 0.5, 1.5)  # (1, 2] was not measured
    assert gap.outside_cpu_percent is None and gap.under_load is None and gap.steal_percent == 0.0
    late = resource_summary(s, 2.5, 3.5)  # readings end at 3.0: not all of the trial is covered
    assert late.outside_cpu_percent is None
    loaded = resource_summary(s, 2.2, 2.8)
    assert loaded.outside_cpu_percent == 90.0 and loaded.under_load is True
    # a second machine not measured: the figure is None, but a measured one above the threshold says enough
    s2 = s + [Sample(t, "host:h2", "outside_cpu_percent", nan) for t in (2.0, 3.0)]
    both = resource_summary(s2, 2.2, 2.8)
    assert both.outside_cpu_percent is None and both.under_load is True
    strict = resource_summary(s, 2.2, 2.8, AlertRules(outside_cpu_percent=95.0))
    assert strict.under_load is False


def test_missing_readings_are_not_numbers() -> None:
    from labkit.measure.resources import worker_metrics

    w = {"metrics": {"cpu": 50.0, "memory": 1e8}, "memory_limit": 0}
    names = dict(worker_metrics(w))
    assert "executing" not in names and "memory_limit_bytes" not in names  # not reported: no sample
    assert dict(worker_metrics({"metrics": {"task_counts": {"executing": 0}}}))["executing"] == 0.0
    gpu_only = {"gpu_utilization": 0}  # no task counts: not known to be running tasks, so no gpu-idle
    assert [h for k, h, _ in worker_conditions(AlertRules(), "w", gpu_only, None) if k == "gpu-idle"] == [False]


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


def test_a_span_without_figures_is_not_measured(mlab: labkit.Lab) -> None:
    with TrialSpan(mlab, "empty") as span:
        pass  # no Dask work: the scheduler never sees the span
    split = span.read(timeout=1)
    assert split.total_s is None and split.accounted_s is None and split.stragglers == []
    assert not split.settled and set(split.fractions().values()) == {None}
    metrics = split.to_metrics()
    assert metrics["time_settled"] is False
    assert all(metrics[f"time_{b}_s"] is None for b in ("compute_cpu", "idle", "other", "total"))


def test_span_reaches_work_submitted_from_a_copied_context(mlab: labkit.Lab, data: da.Array) -> None:
    import concurrent.futures
    import contextvars

    with TrialSpan(mlab, "threaded") as span, concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(contextvars.copy_context().run, _work, data).result()
    assert span.read().compute_cpu_s > 0


# -- alerts on a worker with little memory -----------------------------------------------


def test_spill_memory_and_worker_lost_alerts() -> None:
    alerts: list[Alert] = []
    # outside load depends on what else runs on this machine: not this test's subject
    rules = AlertRules(memory_fraction=0.35, outside_cpu_percent=None, steal_percent=None)
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


def _zone(root: Path, zone: str, name: str, energy_uj: int) -> Path:
    d = root / zone
    d.mkdir()
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text("1000000\n")
    return d


def test_rapl_domains_are_read_by_name_and_unwrapped(tmp_path: Path) -> None:
    pkg = _zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)  # part of the package
    _zone(tmp_path, "intel-rapl:0:1", "uncore", 5)  # part of the package
    dram = _zone(tmp_path, "intel-rapl:0:2", "dram", 100)  # beside the package, not in it
    psys = _zone(tmp_path, "intel-rapl:1", "psys", 0)  # the whole platform: would count the package twice
    _zone(tmp_path, "intel-rapl-mmio:0", "package-0", 900_000)  # the same package through MMIO
    counter = RaplCounter(tmp_path)
    assert sorted((p.parent.name, kind) for p, _, kind in counter.domains) == [
        ("intel-rapl:0", "package"),
        ("intel-rapl:0:2", "dram"),
    ]
    assert counter.read() == {"package": 0.0, "dram": 0.0}
    (pkg / "energy_uj").write_text("100000\n")  # wrapped past 1 J: 0.2 J used
    (dram / "energy_uj").write_text("300100\n")  # 0.3 J
    (psys / "energy_uj").write_text("999999\n")  # never read
    assert counter.read() == pytest.approx({"package": 0.2, "dram": 0.3})

    meter = EnergyMeter(tmp_path)
    assert meter.read() == {"cpu_energy_j": 0.0, "dram_energy_j": 0.0}
    (pkg / "energy_uj").write_text("600000\n")
    assert meter.read() == pytest.approx({"cpu_energy_j": 0.5, "dram_energy_j": 0.0})
    assert not RaplCounter(tmp_path / "absent").available


def test_energy_of_a_trial_sums_package_and_dram_by_name() -> None:
    s = [Sample(t, "client", "cpu_energy_j", 10.0 * t) for t in (0.0, 1.0, 2.0)]
    s += [Sample(t, "client", "dram_energy_j", 1.0 * t) for t in (0.0, 1.0, 2.0)]
    s += [Sample(t, "w", "memory_bytes", 1e8) for t in (0.0, 1.0, 2.0)]
    r = resource_summary(s, 0.5, 1.5)
    assert r.energy_by_source == pytest.approx({"cpu_energy_j": 10.0, "dram_energy_j": 1.0})
    assert r.energy_j == pytest.approx(11.0)
