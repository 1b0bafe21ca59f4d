"""Resume that never mixes setups: trial fingerprints, what is reused and said, old stores, run status."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
from datetime import datetime, timezone

import pytest

import labkit
from labkit import Work
from labkit.store.schema import SCHEMA_VERSION

# The schema of stores written before trials carried a fingerprint and runs a status.
OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, workload TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, env_json TEXT NOT NULL, config_json TEXT NOT NULL
);
CREATE TABLE trials (
    trial_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(run_id),
    experiment TEXT NOT NULL, workload TEXT NOT NULL, point TEXT NOT NULL,
    params_json TEXT NOT NULL, repeat INTEGER NOT NULL, workers INTEGER, threads INTEGER,
    backend TEXT, status TEXT NOT NULL, error TEXT, wall_s REAL, amount REAL, unit TEXT,
    throughput REAL, started_at REAL, ended_at REAL, metrics_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX trials_by_point ON trials (experiment, point, repeat, status);
CREATE TABLE samples (
    run_id TEXT NOT NULL, trial_id INTEGER, time REAL NOT NULL, worker TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL
);
CREATE TABLE alerts (
    run_id TEXT NOT NULL, trial_id INTEGER, time REAL NOT NULL, kind TEXT NOT NULL,
    worker TEXT, message TEXT NOT NULL
);
CREATE TABLE cache (key TEXT PRIMARY KEY, value_json TEXT NOT NULL, created_at REAL NOT NULL);
"""


@labkit.workload("test-resume-count", replace=True)
def count(lab, n: int = 1):
    return Work(lab.client.submit(sum, range(n)).result() + n, "items")


@labkit.workload("test-interrupted", replace=True)
def interrupted(lab, n: int = 1):
    if n == 2:
        raise KeyboardInterrupt
    return Work(n, "items")


@labkit.workload("test-raising", replace=True)
def raising(lab, n: int = 1):
    raise ValueError(f"failed on purpose with n={n}")


def rows(path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def when(run_id: str, path) -> str:
    (started,) = rows(path, f"SELECT started_at FROM runs WHERE run_id = '{run_id}'")[0]
    return datetime.fromtimestamp(started, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def counting(store, repeats: int, **kwargs) -> labkit.Sweep:
    return labkit.Sweep(
        "test-resume-count", grid={"n": [1, 2]}, repeats=repeats, warmup=0, experiment="resume", store=store, **kwargs
    )


def test_a_resume_on_the_same_setup_reuses_and_says_how_many(lab, store_path):
    first = counting(store_path, 2).run(lab, live=False)
    assert first.reuse_note == "All 4 trials measured in this run." and first.set_aside_note == ""
    second = counting(store_path, 3).run(lab, live=False)
    assert (second.reused, second.measured_now, len(second)) == (4, 2, 6)
    assert second.reuse_note == f"4 of 6 trials reused from a run on {when(first.run_id, store_path)}; 2 measured now."
    assert second.set_aside_note == "" and second.notes() == [second.reuse_note]
    assert set(second.frame["fingerprint"]) == {first.fingerprint} == {second.fingerprint}
    assert rows(store_path, f"SELECT COUNT(*) FROM trials WHERE run_id = '{second.run_id}'") == [(2,)]


def test_reuse_none_measures_everything_again_and_keeps_what_was_stored(lab, store_path, monkeypatch):
    first = counting(store_path, 2).run(lab, live=False)
    again = counting(store_path, 2, reuse="none").run(lab, live=False)
    assert (again.reused, again.measured_now, len(again)) == (0, 4, 4) and set(again.frame["run_id"]) == {again.run_id}
    assert (
        again.set_aside_note
        == "4 stored trials of these points were not reused (reuse='none'): every trial is measured again."
    )
    assert rows(store_path, "SELECT COUNT(*) FROM trials") == [(8,)]  # the first run's trials stay
    # LABKIT_REUSE is the default (labkit run --fresh sets it); a bad value is refused by that name
    monkeypatch.setenv("LABKIT_REUSE", "none")
    assert counting(store_path, 2).reuse == "none"
    monkeypatch.setenv("LABKIT_REUSE", "fresh")
    with pytest.raises(labkit.ParameterError, match="LABKIT_REUSE='fresh'"):
        counting(store_path, 2)
    assert first.run_id != again.run_id


def test_a_resume_under_another_thread_count_reruns_and_says_why(tmp_path):
    store = tmp_path / "threads.db"
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
        one = counting(store, 2).run(lab, live=False)
    with labkit.Lab(workers=1, threads_per_worker=2, processes=False, dashboard=False) as lab:
        two = counting(store, 2).run(lab, live=False)
        mixed = counting(store, 2, reuse="any").run(lab, live=False)
    assert two.fingerprint != one.fingerprint
    assert (two.reused, two.measured_now) == (0, 4) and set(two.frame["run_id"]) == {two.run_id}
    assert "4 stored trials of these points were not reused: measured on another cluster shape (" in two.set_aside_note
    assert "threads per worker 1 then, 2 now" in two.set_aside_note
    assert "reuse='any'" in two.set_aside_note
    assert set(two.frame["threads"]) == {2}
    # Asked to, a sweep takes any stored trial, and says that some carry another fingerprint.
    assert (mixed.reused, mixed.measured_now) == (4, 0)
    assert "another fingerprint" not in mixed.reuse_note  # the latest stored trials are this setup's
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
        back = counting(store, 2).run(lab, live=False)
        anyway = counting(store, 3, reuse="any").run(lab, live=False)
    assert back.fingerprint == one.fingerprint and (back.reused, back.measured_now) == (4, 0)
    assert back.reuse_note.startswith(f"4 of 4 trials reused from a run on {when(one.run_id, store)}")
    assert "threads per worker 2 then, 1 now" in back.set_aside_note
    assert (anyway.reused, anyway.measured_now) == (4, 2)
    assert "4 of the reused trials carry another fingerprint than this run's" in anyway.reuse_note


def test_a_changed_workload_is_measured_again(lab, store_path):
    counting(store_path, 1).run(lab, live=False)

    @labkit.workload("test-resume-count", replace=True)
    def count_twice(lab, n: int = 1):
        return Work(2 * lab.client.submit(sum, range(n)).result(), "items")

    try:
        again = counting(store_path, 1).run(lab, live=False)
    finally:
        labkit.workload("test-resume-count", replace=True)(count)
    assert again.measured_now == 2 and "with another version of the workload's code" in again.set_aside_note


def test_an_old_store_opens_migrates_and_resumes(lab, tmp_path):
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute(
            "INSERT INTO runs VALUES ('oldrun', 'resume', 'test-resume-count', 1795609860.0, 1795609870.0, '{}', '{}')"
        )
        for n in (1, 2):
            point = json.dumps({"workload": "test-resume-count", "workers": 2, "n": n}, sort_keys=True)
            for repeat in (0, 1):
                conn.execute(
                    "INSERT INTO trials (run_id, experiment, workload, point, params_json, repeat, workers, threads,"
                    " status, wall_s, amount, unit, throughput, started_at, ended_at)"
                    " VALUES ('oldrun', 'resume', 'test-resume-count', ?, ?, ?, 2, 2, 'ok', 0.01, 1, 'items', 100, ?, ?)",
                    (point, json.dumps({"n": n}), repeat, 1795609861.0, 1795609861.01),
                )
    copy = tmp_path / "old-copy.db"
    shutil.copy(old, copy)

    fresh = counting(old, 2).run(lab, live=False)  # stored without a fingerprint: not reused
    assert {r[1] for r in rows(old, "PRAGMA table_info(trials)")} >= {"fingerprint"}
    assert {r[1] for r in rows(old, "PRAGMA table_info(runs)")} >= {"status", "pid", "host"}
    assert rows(old, "PRAGMA user_version") == [(SCHEMA_VERSION,)]  # the migration is recorded
    assert {r[1] for r in rows(old, "PRAGMA index_list(trials)")} >= {"trials_by_fingerprint", "trials_by_run"}
    assert rows(old, "SELECT run_id, status FROM runs ORDER BY started_at") == [
        ("oldrun", None),
        (fresh.run_id, "finished"),
    ]
    assert fresh.measured_now == 4 and fresh.reused == 0
    assert fresh.set_aside_note.startswith(
        "4 stored trials of these points were not reused: stored without a fingerprint"
    )

    taken = counting(copy, 3, reuse="any").run(lab, live=False)
    assert taken.reuse_note.startswith("4 of 6 trials reused from a run on 2026-11-25 12:31 UTC; 2 measured now.")
    assert taken.frame["fingerprint"].isna().sum() == 4
    assert labkit.Results.load(copy, "resume").measured_now == 0  # not this run: all are earlier ones
    assert len(labkit.Results.load(copy, "resume")) == 2  # the latest setup's: the 2 measured now
    assert len(labkit.Results.load(copy, "resume", fingerprint="any")) == 6


def test_run_status_finished_failed_interrupted(lab, store_path):
    ok = counting(store_path, 1).run(lab, live=False)
    failing = labkit.Sweep("test-raising", grid={"n": [1]}, repeats=1, warmup=0, store=store_path, raise_on_error=True)
    with pytest.raises(ValueError):
        failing.run(lab, live=False)
    stopped = labkit.Sweep(
        "test-interrupted", grid={"n": [1, 2]}, repeats=2, warmup=0, order="sequential", store=store_path
    )
    with pytest.raises(KeyboardInterrupt):
        stopped.run(lab, live=False)
    runs = rows(store_path, "SELECT run_id, experiment, status, pid, host, ended_at FROM runs ORDER BY started_at")
    assert [(r[1], r[2]) for r in runs] == [
        ("resume", "finished"),
        ("test-raising", "failed"),
        ("test-interrupted", "interrupted"),
    ]
    assert runs[0][0] == ok.run_id and all(r[3] == os.getpid() and r[4] == platform.node() for r in runs)
    assert all(r[5] is not None for r in runs)
    # the trials before the interrupt are kept
    assert rows(store_path, "SELECT COUNT(*) FROM trials WHERE experiment = 'test-interrupted' AND status = 'ok'") == [
        (2,)
    ]
