"""ResultStore: WAL SQLite, one transaction per trial, exports, shared with a thread."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sqlite3
import subprocess
import sys
import threading

import pandas as pd
import pytest

from labkit.common.errors import ParameterError
from labkit.store import ResultStore, Trial


def make_trial(run_id: str, repeat: int, wall: float = 0.5, status: str = "ok") -> Trial:
    return Trial(
        run_id=run_id,
        experiment="exp",
        workload="array-sum",
        point='{"workers": 2, "size_mb": 8.0}',
        params={"size_mb": 8.0, "status": "shadowed"},
        repeat=repeat,
        workers=2,
        threads=2,
        backend="numpy",
        status=status,
        wall_s=wall,
        amount=1e9,
        unit="bytes",
        metrics={"peak_memory": 123.0},
    )


def test_trials_round_trip_with_params_and_metrics(store_path):
    with ResultStore(store_path) as store:
        run = store.start_run("exp", "array-sum", env={"cpu_count": 2}, config={"repeats": 2})
        ids = [store.add_trial(make_trial(run, r, wall=w)) for r, w in enumerate([0.5, 0.25])]
        store.update_metrics(ids[1], {"mean_cpu": 87.5})
        frame = store.trials_frame("exp")
        assert store.run_env(run) == {"cpu_count": 2}
    assert list(frame["throughput"]) == [2e9, 4e9]
    assert list(frame["size_mb"]) == [8.0, 8.0]
    assert list(frame["param_status"]) == ["shadowed"] * 2  # a param named like a column keeps its value
    assert frame["mean_cpu"].isna().tolist() == [True, False]
    assert frame["peak_memory"].tolist() == [123.0, 123.0]
    assert str(frame["started_at"].dtype).startswith("datetime64")


def test_each_trial_is_committed_at_once(store_path):
    store = ResultStore(store_path)
    run = store.start_run("exp", "array-sum", env={}, config={})
    store.add_trial(make_trial(run, 0))
    # another connection sees it while the writer is still open: nothing waits for close()
    with sqlite3.connect(store_path) as other:
        assert other.execute("SELECT COUNT(*) FROM trials").fetchone() == (1,)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()
    store.close()


def test_writes_from_another_thread(store_path):
    with ResultStore(store_path) as store:
        run = store.start_run("exp", "array-sum", env={}, config={})
        rows = [(run, None, float(i), "w", "cpu", float(i)) for i in range(100)]
        writers = [threading.Thread(target=store.add_samples, args=(rows,)) for _ in range(4)]
        for t in writers:
            t.start()
        store.add_alert(run, None, "memory", "worker w above 80% of its limit", worker="w")
        for t in writers:
            t.join()
        assert len(store.samples_frame(run)) == 400
        assert store.alerts_frame(run)["kind"].tolist() == ["memory"]


def test_export_csv_and_parquet(store_path, tmp_path):
    with ResultStore(store_path) as store:
        run = store.start_run("exp", "array-sum", env={}, config={})
        for r in range(3):
            store.add_trial(make_trial(run, r, wall=0.1 * (r + 1)))
        csv = pd.read_csv(store.export(tmp_path / "t.csv"))
        parquet = pd.read_parquet(store.export(tmp_path / "t.parquet"))
        with pytest.raises(ParameterError, match=r"\.csv or \.parquet"):
            store.export(tmp_path / "t.xlsx")
    assert csv["throughput"].tolist() == pytest.approx([1e10, 5e9, 1e10 / 3])
    assert parquet["wall_s"].tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_export_keeps_parameters_of_any_type_across_experiments(store_path, tmp_path):
    """One store, two experiments whose ``seed`` parameter is an int in one and text in the
    other, and a list-valued parameter: Parquet (a file and the bundle) and CSV all write and
    read back, the mixed column as JSON text."""
    with ResultStore(store_path) as store:
        for experiment, seed in (("a", 7), ("b", "tpe-7")):
            run = store.start_run(experiment, "array-sum", env={}, config={})
            trial = make_trial(run, 0)
            store.add_trial(dataclasses.replace(trial, experiment=experiment, params={"seed": seed, "sizes": [1, 2]}))
        parquet = pd.read_parquet(store.export(tmp_path / "t.parquet"))
        csv = pd.read_csv(store.export(tmp_path / "t.csv"))
        bundle = {k: pd.read_parquet(p) for k, p in store.export_bundle(tmp_path / "bundle").items()}
    assert sorted((json.loads(v) for v in parquet["seed"]), key=str) == [7, "tpe-7"]
    assert [json.loads(v) for v in parquet["sizes"]] == [[1, 2], [1, 2]]
    assert len(csv) == 2 and len(bundle["trials"]) == 2 and set(bundle["trials"]["experiment"]) == {"a", "b"}


def test_cache(store_path):
    with ResultStore(store_path) as store:
        assert store.cache_get("probe:abc") is None
        store.cache_put("probe:abc", {"triad": 1.5e10})
        assert store.cache_get("probe:abc") == {"triad": 1.5e10}


def test_bad_status_is_refused(store_path):
    with ResultStore(store_path) as store:
        with pytest.raises(ParameterError, match="status='done'"):
            store.add_trial(make_trial("r", 0, status="done"))


def test_runs_have_a_status_and_stale_ones_are_marked_interrupted(store_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with ResultStore(store_path) as store:
        alive = store.start_run("exp", "array-sum", env={}, config={})
        killed = store.start_run("exp", "array-sum", env={}, config={})
        elsewhere = store.start_run("exp", "array-sum", env={}, config={})
        done = store.start_run("exp", "array-sum", env={}, config={})
        store.end_run(done, "failed")
        with pytest.raises(ParameterError, match="status='done'"):
            store.end_run(done, "done")
    with sqlite3.connect(store_path) as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (dead.pid, killed))
        conn.execute("UPDATE runs SET host = 'another-host', pid = ? WHERE run_id = ?", (dead.pid, elsewhere))
    with ResultStore(store_path) as store:  # the next open marks the dead process's run
        runs = store.runs_frame().set_index("run_id")
    assert runs.loc[alive, "status"] == "running" and runs.loc[alive, "pid"] == os.getpid()
    assert runs.loc[alive, "host"] == platform.node()
    assert runs.loc[killed, "status"] == "interrupted" and pd.isna(runs.loc[killed, "ended_at"])
    assert runs.loc[elsewhere, "status"] == "running"  # another host's pids cannot be checked here
    assert runs.loc[done, "status"] == "failed" and runs.loc[done, "ended_at"] > 0


def test_a_store_without_the_new_columns_is_migrated(tmp_path):
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, workload TEXT NOT NULL,"
            " started_at REAL NOT NULL, ended_at REAL, env_json TEXT NOT NULL, config_json TEXT NOT NULL);"
            "CREATE TABLE trials (trial_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,"
            " experiment TEXT NOT NULL, workload TEXT NOT NULL, point TEXT NOT NULL, params_json TEXT NOT NULL,"
            " repeat INTEGER NOT NULL, workers INTEGER, threads INTEGER, backend TEXT, status TEXT NOT NULL,"
            " error TEXT, wall_s REAL, amount REAL, unit TEXT, throughput REAL, started_at REAL, ended_at REAL,"
            " metrics_json TEXT NOT NULL DEFAULT '{}');"
            "INSERT INTO runs VALUES ('r0', 'exp', 'array-sum', 1.0, 2.0, '{}', '{}');"
            "INSERT INTO trials (run_id, experiment, workload, point, params_json, repeat, status, wall_s)"
            " VALUES ('r0', 'exp', 'array-sum', 'p', '{}', 0, 'ok', 0.5);"
        )
    with ResultStore(old) as store:
        assert store.finished("exp") == {"p": {0: 0.5}}
        assert store.finished("exp", fingerprints={"abc"}) == {}  # no fingerprint matches none
        run = store.start_run("exp", "array-sum", env={}, config={})
        trial = make_trial(run, 1)
        trial.fingerprint = "abc"
        store.add_trial(trial)
        store.add_fingerprint("abc", {"shape": {"threads_per_worker": 2}})
        frame = store.trials_frame("exp")
        assert store.finished("exp", fingerprints={"abc"}) == {'{"workers": 2, "size_mb": 8.0}': {1: 0.5}}
        assert store.fingerprint_parts(["abc", None, "zzz"]) == {"abc": {"shape": {"threads_per_worker": 2}}}
        runs = store.runs_frame()
    assert frame["fingerprint"].isna().tolist() == [True, False] and frame["fingerprint"].iloc[1] == "abc"
    assert runs["status"].isna().tolist() == [True, False]  # an old run's status was not recorded
    assert runs["status"].iloc[1] == "running"
    ResultStore(old).close()  # opening a migrated store again changes nothing


def test_a_relative_store_means_one_file_from_every_folder_of_a_project(tmp_path, monkeypatch):
    """JupyterLab runs a notebook's kernel in notebooks/, `labkit run` and scripts where they
    were started: a relative store path names the same file from all of them."""
    from labkit.store import check_store_path

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(project / "notebooks")
    from_notebook = check_store_path("results/labkit.db")
    monkeypatch.chdir(project)
    from_root = check_store_path("results/labkit.db")
    assert from_notebook == from_root == project / "results" / "labkit.db"
    assert not (project / "notebooks" / "results").exists()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)  # no project above: the working directory
    assert check_store_path("r/x.db") == outside / "r" / "x.db"


def test_a_store_where_no_file_can_be_made_is_refused_before_any_work():
    from labkit.store import check_store_path

    with pytest.raises(ParameterError, match="writable"):
        check_store_path("/proc/x.db")
    with pytest.raises(ParameterError, match="existing folder"):
        check_store_path("/nonexistent/dir/x.db")


def test_old_runs_lose_their_raw_samples_and_keep_their_trials(store_path):
    from labkit.cli import main

    with ResultStore(store_path) as store:
        old = store.start_run("exp", "array-sum", env={}, config={})
        new = store.start_run("exp", "array-sum", env={}, config={})
    with sqlite3.connect(store_path) as conn:  # the first run started 40 days ago
        conn.execute("UPDATE runs SET started_at = started_at - 40 * 86400 WHERE run_id = ?", (old,))
    with ResultStore(store_path) as store:
        for run in (old, new):
            store.add_trial(dataclasses.replace(make_trial(run, 0), run_id=run))
            store.add_samples([(run, None, 1.0, "w", "cpu", 50.0), (run, None, 2.0, "w", "cpu", 60.0)])
    assert main(["prune", str(store_path), "--days", "-1"]) == 2  # refused, nothing deleted
    assert main(["prune", str(store_path)]) == 0
    with ResultStore(store_path) as store:
        assert set(store.samples_frame()["run_id"]) == {new}
        assert set(store.trials_frame()["run_id"]) == {old, new}


def test_many_trials_read_back_the_same_in_bulk_as_row_by_row(store_path, monkeypatch):
    """From BULK_ROWS trials the metrics are parsed by Arrow in one call: the frame is the same."""
    from labkit.store import schema

    metrics = [{"a": i, "b": None if i % 3 else "x", "c": i / 7, "flag": i % 2 == 0} for i in range(1200)]
    metrics[5]["only_here"] = 1.5
    with ResultStore(store_path) as store:
        run = store.start_run("exp", "array-sum", env={}, config={})
        store.add_trials(dataclasses.replace(make_trial(run, i), metrics=m) for i, m in enumerate(metrics))
        bulk = store.trials_frame()
        monkeypatch.setattr(schema, "BULK_ROWS", 10**9)
        by_row = store.trials_frame()
    pd.testing.assert_frame_equal(bulk, by_row)
    assert len(bulk) == 1200 and bulk["only_here"].notna().sum() == 1
