"""Tests of labkit.probes on a real 2-worker LocalCluster (no mocks)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import numpy as np
import pytest
from distributed import Client, LocalCluster

from labkit.cluster import backends
from labkit.common.errors import LabkitError, ParameterError, ParameterTypeError
from labkit.probes import (
    TRIAD_SCALAR,
    HardwareProbe,
    matmul_flops,
    network_bandwidth,
    run_probes,
    stream_bandwidth,
    task_overhead,
)
from labkit.probes.kernels import run_kernel

GB, GFLOP = 1e9, 1e9


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            c.wait_for_workers(2)
            yield c


@pytest.fixture(scope="module")
def probe(client: Client) -> HardwareProbe:
    # Defaults, as `labkit probe` runs them: this also checks the time budget.
    return run_probes(client)


def test_memory_bandwidth_plausible_everywhere(probe: HardwareProbe, client: Client) -> None:
    assert set(probe.workers) == set(client.scheduler_info(n_workers=-1)["workers"])
    for loc in ["client", *probe.workers]:
        r = probe.memory[loc]
        assert r.nbytes == 64 * 2**20 and r.threads == 1
        for value in (r.copy_best, r.copy_median, r.triad_best, r.triad_median):
            assert 0.1 * GB < value < 1000 * GB, (loc, r)
        assert r.copy_best >= r.copy_median and r.triad_best >= r.triad_median
        assert probe.bandwidth(loc, "triad") == r.triad_best


def test_matmul_plausible(probe: HardwareProbe) -> None:
    for loc in ["client", *probe.workers]:
        assert set(probe.matmul[loc]) == {"float32", "float64"}
        assert 0.1 * GFLOP < probe.flops(loc, "float64") < 10_000 * GFLOP
        assert probe.flops(loc, "float32") > 0


def test_node_ceiling_runs_every_worker_at_once(probe: HardwareProbe) -> None:
    node = probe.node
    assert node is not None, probe.missing
    assert (node.workers, node.threads) == (2, 2) and node.memory.threads == node.matmul.threads == 2
    assert node.memory.nbytes == 2 * 64 * 2**20  # both workers' arrays
    assert 0 <= node.start_spread_s < 1
    assert "node/memory" not in probe.missing and "node/matmul" not in probe.missing
    singles = [probe.memory[w] for w in probe.workers]
    for kind in ("copy", "triad"):
        value = getattr(node.memory, f"{kind}_best")
        assert 0.1 * GB < value < 1000 * GB
        # Two workers at once move more than a tenth of one alone and, on one memory bus, not
        # far beyond both alone (3x leaves room for a noisy machine's slow single runs).
        assert 0.1 * min(getattr(r, f"{kind}_best") for r in singles) < value
        assert value < 3 * sum(getattr(r, f"{kind}_best") for r in singles)
    assert node.matmul.dtype == "float64" and node.matmul.best >= node.matmul.median > 0
    rows = probe.to_frame().query("location == 'node'")
    assert set(rows["metric"]) == {"copy bandwidth", "triad bandwidth", "matmul float64"}
    assert rows["note"].str.contains("2 (?:threads|products) at once on 2 workers").all()


def test_kernels_are_credited_with_the_bytes_they_move() -> None:
    nbytes = 2**20
    for threads in (1, 3):
        copy = run_kernel(np, "copy", nbytes, repeats=2, threads=threads)
        triad = run_kernel(np, "triad", nbytes, repeats=2, threads=threads)
        # copyto(a, b): read b, write a; multiply(c, s, out=a) + add(a, b, out=a): 2 + 3 arrays.
        assert copy.amount == 2 * nbytes and triad.amount == 5 * nbytes
        assert copy.threads == threads and len(copy.starts) == len(copy.ends) == 2
        assert all(s <= last < e for s, last, e in zip(copy.starts, copy.last_starts, copy.ends))
    matmul = run_kernel(np, "matmul", 32, repeats=1, threads=2)
    assert matmul.amount == 2 * 2 * 32**3  # each thread its own product


def test_kernel_arguments_are_checked() -> None:
    with pytest.raises(ParameterError, match="threads"):
        stream_bandwidth(np, 2**20, threads=0)
    with pytest.raises(ParameterError, match="kernel"):
        run_kernel(np, "scale", 2**20, repeats=1)
    with pytest.raises(ParameterError, match="starts"):
        run_kernel(np, "copy", 2**20, repeats=2, starts=[0.0])


def _interleaved(rounds: int, *steps) -> None:
    for i in range(rounds):
        for step in steps if i % 2 == 0 else steps[::-1]:
            step()


def test_copy_and_triad_agree_with_plain_numpy() -> None:
    """The probe's copy and triad figures within ±20% of plain NumPy on 256 MiB arrays,
    credited with the bytes they move (copy 2 arrays, the two-pass triad 5). Both sides run
    short bursts in interleaved rounds, alternating which goes first, and each side's figure
    is its best burst: on a machine that other work loads, the best of many interleaved
    bursts is what both sides reach when the machine is quiet for a moment. A ratio, not a
    timing: a miscounted kernel (3 arrays credited for 5) reads 0.6 or 1.67 and fails."""
    import time

    nbytes, repeats, rounds = 256 * 2**20, 2, 12
    a, b, c = np.empty(nbytes // 8), np.full(nbytes // 8, 1.0), np.full(nbytes // 8, 2.0)
    got: dict[str, list[float]] = {"copy": [], "triad": [], "plain copy": [], "plain triad": []}

    def probe() -> None:
        r = stream_bandwidth(np, nbytes, repeats)  # what `labkit probe` calls
        got["copy"].append(r.copy_best)
        got["triad"].append(r.triad_best)

    def triad() -> None:
        np.multiply(c, TRIAD_SCALAR, out=a)
        np.add(a, b, out=a)

    def plain() -> None:
        for name, op, arrays in (("plain copy", lambda: np.copyto(a, b), 2), ("plain triad", triad, 5)):
            op()
            for _ in range(repeats):  # as many single iterations as the probe times
                start = time.perf_counter()
                op()
                got[name].append(arrays * nbytes / (time.perf_counter() - start))

    _interleaved(rounds, probe, plain)
    for kind in ("copy", "triad"):
        ratio = max(got[kind]) / max(got[f"plain {kind}"])
        assert 0.8 <= ratio <= 1.2, (kind, ratio, got)


def test_task_overhead_fit(probe: HardwareProbe) -> None:
    over = probe.task_overhead
    assert over is not None
    assert 1e-6 < over.per_task_s < 0.1
    # The intercept is a fit: on a noisy machine it may dip below zero, but not by more
    # than its own uncertainty allows.
    assert -3 * over.fixed_stderr_s < over.fixed_s < 1
    assert over.per_task_stderr_s >= 0 and over.fixed_stderr_s >= 0
    assert len(over.times_s) == len(over.task_counts) >= 3


def test_network_between_two_workers(probe: HardwareProbe) -> None:
    assert probe.network is not None, probe.missing
    assert probe.network.pairs == 1
    assert 1e6 < probe.network.bandwidth < 1e12
    assert "cluster/network" not in probe.missing


@pytest.mark.no_gpu
def test_gpu_missing_with_reason(probe: HardwareProbe) -> None:
    status = backends.gpu_status()
    assert probe.gpu is None and "gpu" not in probe.matmul
    reason = probe.missing["gpu/memory"]
    assert status.reason in reason
    assert "CuPy" in reason or "CUDA" in reason


def test_dict_round_trip_through_json(probe: HardwareProbe) -> None:
    text = json.dumps(probe.to_dict())
    assert HardwareProbe.from_dict(json.loads(text)) == probe


@pytest.mark.parametrize("version", [1, 999])
def test_from_dict_refuses_other_versions(probe: HardwareProbe, version: int) -> None:
    # Version 1 credited the triad with 3 arrays: a cached one must be measured again.
    data = probe.to_dict()
    data["version"] = version
    with pytest.raises(ParameterError, match="version"):
        HardwareProbe.from_dict(data)


def test_table_and_frame(probe: HardwareProbe) -> None:
    text = probe.table()
    assert "not measured: no usable GPU" in text or backends.gpu_status().available
    for unit in ("GB/s", "GFLOP/s", "cost per task"):
        assert unit in text
    frame = probe.to_frame()
    assert list(frame.columns) == ["location", "metric", "value", "unit", "note"]
    measured = frame.dropna(subset=["value"])
    # Every figure is positive but the fit's intercept, which noise may take below zero.
    assert (measured.query("metric != 'fixed cost per compute'")["value"] > 0).all()
    assert set(probe.workers) <= set(frame["location"])
    assert frame["value"].isna().sum() == len(probe.missing)


def test_without_client_only_local_figures() -> None:
    p = run_probes(array_mb=4, matmul_n=128, repeats=2)
    assert list(p.memory) == ["client"] or set(p.memory) == {"client", "gpu"}
    assert p.task_overhead is None and p.network is None and p.node is None and p.workers == []
    for key in ("cluster/network", "workers/memory", "workers/matmul", "node/memory"):
        assert "no Dask client" in p.missing[key]
    assert "not measured: no Dask client" in p.table()
    assert "never a worker's limit" in p.notes["client"]


# A second cluster while the module's one holds port 8787: distributed starts the scheduler's
# HTTP server (health routes) even without a dashboard, and warns that it moved port.
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_one_worker_with_two_threads() -> None:
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            c.wait_for_workers(1)
            with pytest.raises(LabkitError, match="1 worker"):
                network_bandwidth(c)
            p = run_probes(c, array_mb=4, matmul_n=128, repeats=2, task_counts=(1, 2, 4))
    assert p.network is None
    assert "needs a pair of workers" in p.missing["cluster/network"]
    assert "not measured: the cluster has 1 worker" in p.table()
    assert len(p.workers) == 1 and p.task_overhead is not None
    # The worker's own figures are measured with both its threads at once.
    (worker,) = p.workers
    assert p.memory[worker].threads == 2 and p.memory[worker].nbytes == 4 * 2**20
    assert {r.threads for r in p.matmul[worker].values()} == {2}
    assert p.memory["client"].threads == 1
    assert p.node is None and "1 worker probed" in p.missing["node/memory"]


def test_the_cores_ceiling_is_probed_and_the_load_said(probe: HardwareProbe) -> None:
    from labkit.probes.concurrency import usable_cores

    c = probe.concurrency
    assert c is not None and c.ks == list(range(1, usable_cores() + 1)) and c.rounds == 7
    assert all(len(c.rates[k]) == 7 for k in c.ks)
    # Without a watch (run_probes called directly) the load is not measured, and said so.
    assert probe.under_load is None and "outside load not measured" in probe.notes["load"]
    assert "2 matmuls at once" in probe.table() or usable_cores() == 1


def test_a_watched_probe_is_flagged_by_the_rule(client: Client) -> None:
    from labkit.experiment.probing import probe_load_watch
    from labkit.measure.alerts import AlertRules

    small = {"array_mb": 4, "matmul_n": 128, "repeats": 2, "task_counts": (1, 2, 4), "network_duration": 0.2}
    p = run_probes(client, **small, watch=probe_load_watch())
    assert p.under_load in (True, False) and p.load["loadavg_1m"] is not None, p.load
    assert p.concurrency is not None and p.concurrency.under_load in (True, False)
    # The flag is AlertRules' rule on the figures stored with it, and the table says what it means.
    assert p.under_load == AlertRules().under_load(p.load["outside_cpu_percent"], p.load["steal_percent"])
    assert ("not this machine's ceiling; not cached" in p.table()) == p.under_load


def test_probe_functions_directly(client: Client) -> None:
    s = stream_bandwidth(np, 2**20, repeats=2)
    assert s.nbytes == 2**20 and s.repeats == 2 and s.triad_best > 0
    m = matmul_flops(np, 64, "float32", repeats=2)
    assert m.dtype == "float32" and m.n == 64 and m.best >= m.median > 0
    t = task_overhead(client, task_counts=(1, 5, 10), repeats=1)
    assert t.task_counts == (1, 5, 10) and t.repeats == 1
    # One timing per count on a shared machine: the slope is positive within its own uncertainty.
    assert t.per_task_s + 3 * t.per_task_stderr_s > 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"array_mb": 0}, "array_mb"),
        ({"array_mb": float("nan")}, "array_mb"),
        ({"matmul_n": -1}, "matmul_n"),
        ({"matmul_n": 10.5}, "matmul_n"),
        ({"repeats": 0}, "repeats"),
        ({"repeats": True}, "repeats"),
        ({"task_counts": (1, 2)}, "task_counts"),
        ({"task_counts": (0, 1, 2)}, "task_counts"),
        ({"network_duration": 0}, "network_duration"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name) as info:  # a float or a bool count: a type error
        run_probes(**kwargs)
    assert isinstance(info.value, (ParameterError, ParameterTypeError)) and info.value.name == name


def test_client_must_be_a_client() -> None:
    with pytest.raises(ParameterTypeError, match="client"):
        run_probes("tcp://127.0.0.1:8786")  # type: ignore[arg-type]


def test_cached_per_environment_in_the_store(tmp_path, lab) -> None:
    from labkit.probes import cached_probes

    store = tmp_path / "probe.db"
    small = {"array_mb": 4.0, "matmul_n": 128, "repeats": 2}
    first = cached_probes(lab, store, **small)
    again = cached_probes(lab, store, **small)
    assert again == first  # served from the store: same figures, same creation time
    other = cached_probes(lab, store, **{**small, "repeats": 3})
    assert other.params["repeats"] == 3 and other.created >= first.created
    fresh = cached_probes(lab, store, refresh=True, **small)
    assert fresh != first


def test_probe_command_prints_the_table(tmp_path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "labkit",
            "probe",
            "--workers",
            "1",
            "--array-mb",
            "4",
            "--matmul-n",
            "128",
            "--repeats",
            "2",
            "--store",
            str(tmp_path / "p.db"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "triad bandwidth" in done.stdout and "cost per task" in done.stdout
    assert ("not measured: no usable GPU" in done.stdout) == (not backends.gpu_status().available)
    assert "network bandwidth       not measured" in done.stdout  # one worker: no pair to measure
    assert re.search(r"^node +memory bandwidth +not measured: 1 worker probed", done.stdout, re.MULTILINE)
    assert "cached:" not in done.stdout and "worker 1" in done.stdout and "tcp://" not in done.stdout
    assert "cores' own ceiling (single-thread matmuls against 1 alone): " in done.stdout  # with its interval
    again = subprocess.run(done.args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.startswith("cached: these figures were measured 20") or "; not cached" in done.stdout
    assert again.stdout.splitlines()[1:] == done.stdout.splitlines() or "; not cached" in done.stdout  # under load
