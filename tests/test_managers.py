"""Any cluster manager's cluster adopted by a Lab, and the cost of reaching it, on two real managers.

dask-jobqueue's local job path (job scripts submitted as local processes) and a dask-gateway
server with its local backend (a server process on 127.0.0.1, its proxy, TLS, schedulers
and workers as processes) each run a sweep and the reach measurement (first worker, an
adaptive burst, no-op tasks and a shuffle) through labkit. Each test ends its stand-in by
raising inside it, and then checks that every process it started is gone and that nothing
it opened still listens: the clean-up path of a failing test, taken every time.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import cloudpickle
import psutil
import pytest
from distributed import Client

import labkit
from labkit.cluster import managers
from labkit.common.errors import ClusterError, ParameterError
from labkit.studies import reach

# The schedulers started here cannot import this module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
# Small: the graph and the burst as the study runs them, sized for a busy 2-core machine.
SMALL = {"tasks": 100, "partitions": 4, "rows": 100, "repeats": 2, "burst": 40, "task_s": 0.5}


class _Partial:
    """Has a scheduler address and scale, but not adapt and close."""

    scheduler_address = "tcp://127.0.0.1:1"

    def scale(self, n: int) -> None:
        raise AssertionError("never called")


def test_an_object_without_the_cluster_interface_is_refused_before_connecting():
    with pytest.raises(ParameterError, match="cluster=.*it lacks adapt, close"):
        labkit.Lab(cluster=_Partial())
    with pytest.raises(ParameterError, match="cluster=42 .*scheduler_address, scale, adapt, close"):
        labkit.Lab(cluster=42)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"tasks": 0}, "tasks"), ({"partitions": 1}, "partitions"), ({"burst": 1}, "burst"),
     ({"task_s": -1}, "task_s"), ({"experiment": ""}, "experiment"), ({"manager": 3}, "manager"),
     ({"store": "/nonexistent/deep/labkit.db"}, "store")],
)  # fmt: skip
def test_bad_reach_parameters_are_named_before_any_cluster_work(kwargs, name):
    with pytest.raises(ParameterError) as err:
        reach.measure_reach(None, **kwargs)  # a Lab is not even looked at
    assert err.value.name.startswith(name)
    with pytest.raises(ParameterError, match="managers="):
        reach.compare_managers(["slurm"], **kwargs)
    with pytest.raises(ParameterError) as err:
        reach.compare_managers(["jobqueue-local"], **kwargs)
    assert err.value.name.startswith(name)


def test_a_lab_by_address_cannot_be_measured(lab):
    with labkit.Lab(address=lab.client.scheduler.address, dashboard=False) as remote:
        with pytest.raises(ClusterError, match="no cluster object"):
            reach.measure_reach(remote)


def test_compare_managers_says_what_it_did_not_measure():
    result = reach.compare_managers([])
    assert result.frame.empty and "No cluster manager was measured" in result.describe()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _listening(pid: int) -> set[tuple[str, int]]:
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return set()
    return {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}


def _stored(store, experiment: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        sql = "SELECT status, workers, amount, unit, params_json FROM trials WHERE experiment = ? ORDER BY trial_id"
        return db.execute(sql, (experiment,)).fetchall()


def _plugins(dask_scheduler) -> list[str]:
    return list(dask_scheduler.plugins)


class _End(Exception):
    """Raised at the end of a stand-in's block: the clean-up path of a failing test."""


def _sweep_on(cluster, store) -> None:
    """A sweep over workers on the adopted cluster: labkit scales it, stores each trial, leaves it running."""
    with labkit.Lab(cluster=cluster, dashboard=False) as lab:
        assert lab.kind == "adopted" and not lab.owns_cluster
        sweep = labkit.Sweep(
            "task-overhead",
            grid={"workers": [1, 2], "tasks": [100]},
            repeats=2,
            warmup=0,
            experiment="adopted",
            store=store,
        )
        results = sweep.run(lab, live=False)
        assert list(results.frame["status"]) == ["ok"] * 4
        scheduler, left = lab.client.scheduler.address, lab.workers
    assert lab.closed and left in (1, 2)
    assert sorted(r[:3] for r in _stored(store, "adopted")) == [("ok", 1, 100.0)] * 2 + [("ok", 2, 100.0)] * 2
    with Client(cluster) as client:  # not closed, at the size the Lab left it, labkit's plugins gone
        assert client.scheduler.address == scheduler
        assert len(client.scheduler_info()["workers"]) == left
        assert "task-stream" not in client.run_on_scheduler(_plugins)


def _reach_on(cluster, name: str, store) -> None:
    with labkit.Lab(cluster=cluster, dashboard=False) as lab:
        result = reach.measure_reach(lab, manager=name, store=store, experiment="managers", **SMALL)
        assert lab.workers == 2  # left at the graph's size, adaptive scaling off
    f = result.frame
    assert list(f["measure"]) == ["first-worker", "adapt-add"] + ["noop"] * 2 + ["shuffle"] * 2
    assert (f["wall_s"] > 0).all() and list(f["workers"]) == [1, 2, 2, 2, 2, 2]
    assert list(f["tasks"].iloc[2:]) == [100, 100, 24, 24]
    summary = result.summary()
    assert list(summary["manager"]) == [name] and summary.drop(columns="manager").notna().all(axis=None)
    rows = _stored(store, "managers/reach")
    assert [(r[0], r[1], r[3]) for r in rows] == [("ok", 1, "worker"), ("ok", 2, "worker")] + [("ok", 2, "tasks")] * 4
    assert all(f'"manager": "{name}"' in r[4] for r in rows)


@pytest.mark.parametrize("name", sorted(reach.MANAGERS))
def test_a_manager_adopted_runs_a_sweep_and_its_reach_is_measured(name, tmp_path):
    if reach.missing(name):
        pytest.skip(f"{name} needs {', '.join(reach.missing(name))} (pip install 'labkit[managers]')")
    before, here = _children(), _listening(os.getpid())
    started: set[int] = set()
    with pytest.raises(_End), reach.standins.stand_in(name, tmp_path) as cluster:
        managers.check_cluster(cluster)
        assert cluster.scheduler_address.split("://")[0] in ("tcp", "gateway")
        _sweep_on(cluster, tmp_path / "labkit.db")
        _reach_on(cluster, name, tmp_path / "labkit.db")
        started = _children() - before
        assert started, "the stand-in started no process"
        assert {ip for pid in started for ip, _ in _listening(pid)} <= {"127.0.0.1"}, "listening beyond loopback"
        raise _End
    assert not _alive(started), f"left running: {[psutil.Process(p).cmdline() for p in _alive(started)]}"
    assert _listening(os.getpid()) <= here, "a port this process opened still listens"
