"""The store at scale: ended runs kept by columns give the frame their rows give, whatever was stored, and stay true."""

from __future__ import annotations

import itertools
import json
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labkit.store import ResultStore, Trial, schema, sealing

SERIAL = itertools.count()


def trial(run: str, i: int, metrics: dict, *, experiment: str = "exp", workers: int | None = 2, **kw) -> Trial:
    return Trial(
        run_id=run, experiment=experiment, workload="array-sum", point=json.dumps({"n": i % 3}),
        params={"n": i % 3, "status": "shadowed"}, repeat=i, workers=workers, threads=2, backend="numpy",
        status="ok", wall_s=kw.get("wall", 0.5), amount=1e9, unit="bytes", metrics=metrics,
        error=kw.get("error"), started_at=1.7e9 + i, ended_at=1.7e9 + i + 0.5,
    )  # fmt: skip


def by_rows(path: Path, *selection: str | None) -> pd.DataFrame:
    """The frame read row by row: the same store with no run kept by columns."""
    copy = path.with_name(f"rows-{next(SERIAL)}.db")
    with sqlite3.connect(path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
        dst.execute("DELETE FROM run_frames")
    with ResultStore(copy) as store:
        return store.trials_frame(*selection)


def kept(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM run_frames").fetchone()[0]


def counts_hold(path: Path) -> bool:
    """The counts the triggers keep are the trials' own."""
    with sqlite3.connect(path) as conn:
        kept = conn.execute("SELECT run_id, experiment, n FROM trial_counts WHERE n > 0 ORDER BY 1, 2").fetchall()
        real = conn.execute("SELECT run_id, experiment, COUNT(*) FROM trials GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    return kept == real


def test_ended_runs_are_read_by_columns_and_give_the_frame_rows_give(store_path, monkeypatch):
    metrics = [
        {"a": i, "b": None if i % 3 else "x", "c": i / 7, "flag": i % 2 == 0, "status": "m"} for i in range(2400)
    ]
    metrics[1500]["only_here"] = 1.5
    with ResultStore(store_path) as store:
        for r in range(3):  # two ended runs, one still running
            run = store.start_run("exp", "array-sum", env={}, config={})
            store.add_trials(trial(run, i, metrics[i]) for i in range(r * 800, (r + 1) * 800))
            if r < 2:
                store.end_run(run)
        assert kept(store_path) == 2
        monkeypatch.setattr(schema, "expand_trials", None)  # the row read cannot run: columns it is
        frame = store.trials_frame("exp")
        monkeypatch.undo()
    pd.testing.assert_frame_equal(frame, by_rows(store_path, "exp"))
    assert len(frame) == 2400 and frame["only_here"].notna().sum() == 1 and frame["metric_status"].eq("m").all()
    assert frame["trial_id"].is_monotonic_increasing and frame["param_status"].eq("shadowed").all()


def test_runs_kept_by_columns_in_any_order_read_back_in_trial_order(store_path):
    with ResultStore(store_path) as store:
        runs = [store.start_run("exp", "array-sum", env={}, config={}) for _ in range(3)]
        for r, run in enumerate(runs):
            store.add_trials(trial(run, r * 500 + i, {"a": i, "b": 0.5}) for i in range(500))
        for run in runs[::-1]:  # the latest trials are kept first
            store.end_run(run)
        frame = store.trials_frame()
    assert frame["trial_id"].tolist() == list(range(1, 1501)) and kept(store_path) == 3
    pd.testing.assert_frame_equal(frame, by_rows(store_path))


def test_runs_are_merged_as_they_add_up_and_a_change_unmerges_them(store_path, monkeypatch):
    monkeypatch.setattr(sealing, "MERGE_ROWS", 1000)
    with ResultStore(store_path) as store:
        runs = [store.start_run("exp", "array-sum", env={}, config={}) for _ in range(7)]
        ids = {}
        for r, run in enumerate(runs[:6]):
            ids[run] = [store.add_trial(trial(run, r * 300 + i, {"a": i, "b": 0.5})) for i in range(300)]
            store.end_run(run)
        with sqlite3.connect(store_path) as conn:
            merged = conn.execute("SELECT frame_id, n FROM merged_frames").fetchall()
            members = conn.execute("SELECT COUNT(*) FROM run_frames WHERE frame_id IS NOT NULL").fetchone()[0]
        assert [n for _, n in merged] == [1200] and members == 4  # 4 runs came to 1,000 trials; 2 wait
        frame = store.trials_frame("exp")
        pd.testing.assert_frame_equal(frame, by_rows(store_path, "exp"))
        pd.testing.assert_frame_equal(store.trials_frame(None, runs[1]), by_rows(store_path, None, runs[1]))
        store.update_metrics(ids[runs[1]][0], {"late": 1.0})  # the merged batch goes, its other runs' stay
        with sqlite3.connect(store_path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM merged_frames").fetchone()[0] == 0
            assert conn.execute("SELECT COUNT(*) FROM run_frames WHERE frame_id IS NOT NULL").fetchone()[0] == 0
        assert kept(store_path) == 5
        pd.testing.assert_frame_equal(store.trials_frame("exp"), by_rows(store_path, "exp"))
        store.add_trials(trial(runs[6], 2000 + i, {"a": i, "b": 0.5}) for i in range(300))
        store.end_run(runs[6])  # the loose runs add up again (the changed one is read from its rows)
        with sqlite3.connect(store_path) as conn:
            assert conn.execute("SELECT n FROM merged_frames").fetchall() == [(1800,)]
        later = store.trials_frame("exp")
    pd.testing.assert_frame_equal(later, by_rows(store_path, "exp"))
    assert len(later) == 2100 and later["late"].notna().sum() == 1


def test_a_run_that_changes_after_it_ended_is_read_from_its_rows(store_path):
    """Triggers drop a run's columns with any write to its trials, whoever writes."""
    with ResultStore(store_path) as store:
        runs = []
        for r in range(3):
            runs.append(store.start_run("exp", "array-sum", env={}, config={}))
            ids = [store.add_trial(trial(runs[-1], r * 600 + i, {"a": i})) for i in range(600)]
            store.end_run(runs[-1])
        assert kept(store_path) == 3
        store.update_metrics(ids[0], {"late": 2.5})  # the last run's first trial
        assert kept(store_path) == 2
        store.add_trial(trial(runs[0], 9999, {"a": -1}))
        assert kept(store_path) == 1
        with sqlite3.connect(store_path) as other:  # as an older labkit or a SQLite shell would
            other.execute("UPDATE trials SET wall_s = 9.0 WHERE run_id = ?", (runs[1],))
        assert kept(store_path) == 0 and counts_hold(store_path)
        store.seal(runs)
        assert kept(store_path) == 3
        frame = store.trials_frame()
        pd.testing.assert_frame_equal(frame, by_rows(store_path))
        with sqlite3.connect(store_path) as other:
            other.execute("DELETE FROM trials WHERE trial_id IN (1, 2)")  # runs[0]
            other.execute("UPDATE trials SET experiment = 'moved' WHERE trial_id = 700")  # runs[1]
            other.execute("UPDATE trials SET run_id = ? WHERE trial_id = 1300", (runs[0],))  # runs[2] to runs[0]
        assert kept(store_path) == 0 and counts_hold(store_path)
        store.seal(runs)
        later = store.trials_frame("exp")
    assert frame["late"].notna().sum() == 1 and frame["wall_s"].eq(9.0).sum() == 600 and len(frame) == 1801
    pd.testing.assert_frame_equal(later, by_rows(store_path, "exp"))
    assert len(later) == 1798 and counts_hold(store_path)


def test_columns_kept_before_the_trials_table_grew_are_not_used(store_path):
    with ResultStore(store_path) as store:
        run = store.start_run("exp", "array-sum", env={}, config={})
        store.add_trials(trial(run, i, {"a": i}) for i in range(1200))
        store.end_run(run)
        with sqlite3.connect(store_path) as other:  # a newer labkit's column
            other.execute("ALTER TABLE trials ADD COLUMN extra TEXT DEFAULT 'x'")
        frame = store.trials_frame()
    assert frame["extra"].eq("x").all()
    pd.testing.assert_frame_equal(frame, by_rows(store_path))


def test_a_batch_that_cannot_be_read_here_leaves_its_run_to_its_rows(store_path):
    with ResultStore(store_path) as store:
        runs = [store.start_run("exp", "array-sum", env={}, config={}) for _ in range(3)]
        for r, run in enumerate(runs):
            store.add_trials(trial(run, r * 500 + i, {"a": i}) for i in range(500))
            store.end_run(run)
        with sqlite3.connect(store_path) as other:  # as a codec missing here, or damage, would leave them
            other.execute("UPDATE run_frames SET codec = 'no-such-codec' WHERE run_id = ?", (runs[0],))
            other.execute("UPDATE run_frames SET data = x'00ff' WHERE run_id = ?", (runs[1],))
        frame = store.trials_frame()
    assert kept(store_path) == 3 and len(frame) == 1500
    pd.testing.assert_frame_equal(frame, by_rows(store_path))


V2_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, workload TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, env_json TEXT NOT NULL, config_json TEXT NOT NULL,
    status TEXT, pid INTEGER, host TEXT);
CREATE TABLE trials (trial_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(run_id),
    experiment TEXT NOT NULL, workload TEXT NOT NULL, point TEXT NOT NULL, params_json TEXT NOT NULL,
    repeat INTEGER NOT NULL, workers INTEGER, threads INTEGER, backend TEXT, status TEXT NOT NULL, error TEXT,
    wall_s REAL, amount REAL, unit TEXT, throughput REAL, started_at REAL, ended_at REAL,
    metrics_json TEXT NOT NULL DEFAULT '{}', fingerprint TEXT);
CREATE INDEX trials_by_point ON trials (experiment, point, repeat, status);
CREATE TABLE samples (run_id TEXT NOT NULL, trial_id INTEGER, time REAL NOT NULL, worker TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL);
CREATE INDEX samples_by_run ON samples (run_id, time);
CREATE TABLE alerts (run_id TEXT NOT NULL, trial_id INTEGER, time REAL NOT NULL, kind TEXT NOT NULL,
    worker TEXT, message TEXT NOT NULL);
CREATE TABLE cache (key TEXT PRIMARY KEY, value_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE fingerprints (fingerprint TEXT PRIMARY KEY, parts_json TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE traces (trial_id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, trace BLOB NOT NULL);
CREATE INDEX trials_by_fingerprint ON trials (experiment, fingerprint);
CREATE INDEX trials_by_run ON trials (run_id, status);
CREATE INDEX runs_by_experiment ON runs (experiment, started_at);
CREATE INDEX alerts_by_run ON alerts (run_id, time);
PRAGMA user_version = 2;
"""


def test_a_version_2_store_is_migrated_and_its_ended_runs_kept_by_columns(tmp_path):
    old = tmp_path / "v2.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(V2_SCHEMA)
        for run, status in (("r0", "finished"), ("r1", "interrupted"), ("r2", None), ("r3", "running")):
            conn.execute(
                "INSERT INTO runs VALUES (?, 'exp', 'array-sum', 1.0, 2.0, '{}', '{}', ?, 1, 'elsewhere')",
                (run, status),
            )
        conn.executemany(
            "INSERT INTO trials (run_id, experiment, workload, point, params_json, repeat, workers, status, wall_s,"
            " started_at, ended_at, metrics_json, fingerprint) VALUES (?, 'exp', 'array-sum', ?, ?, ?, 2, 'ok', ?,"
            " 1.0, 1.5, ?, 'fp')",
            [
                (f"r{i % 4}", f"p{i % 3}", json.dumps({"n": i % 3}), i, 0.5 + i / 1e4, json.dumps({"a": i, "b": i / 3}))
                for i in range(1600)
            ],
        )
    with ResultStore(old) as store:
        frame = store.trials_frame("exp")
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (schema.SCHEMA_VERSION,) == (3,)
        kept_runs = {r for (r,) in conn.execute("SELECT run_id FROM run_frames")}
        triggers = {r for (r,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(trials)")}
    assert kept_runs == {"r0", "r1", "r2"}  # the run of another host still running is read from its rows
    assert counts_hold(old)
    assert {"trials_insert_unseals", "trials_update_unseals", "trials_delete_unseals"} <= triggers
    assert {"trials_insert_counts", "trials_delete_counts", "trials_move_counts"} <= triggers
    assert {"trials_by_run", "trials_by_fingerprint"} <= indexes
    pd.testing.assert_frame_equal(frame, by_rows(old, "exp"))
    assert len(frame) == 1600 and frame["a"].tolist() == list(range(1600))
    ResultStore(old).close()  # opening it again changes nothing


def test_a_store_with_batches_of_the_first_layout_gets_them_again(store_path):
    """Run batches written before batches were merged (no ``frame_id``, no counts) are copies:
    the next open drops them and writes them again, and the trials read as the rows give them."""
    with ResultStore(store_path) as store:
        runs = [store.start_run("exp", "array-sum", env={}, config={}) for _ in range(2)]
        for r, run in enumerate(runs):
            store.add_trials(trial(run, r * 700 + i, {"a": i, "b": i / 3}) for i in range(700))
            store.end_run(run)
    with sqlite3.connect(store_path) as conn:  # as the first layout left it
        conn.executescript(
            "DROP TABLE run_frames; DROP TABLE merged_frames; DROP TABLE trial_counts;"
            "CREATE TABLE run_frames (run_id TEXT NOT NULL, experiment TEXT NOT NULL, layout_id INTEGER NOT NULL,"
            " first_trial INTEGER NOT NULL, last_trial INTEGER NOT NULL, n INTEGER NOT NULL, codec TEXT NOT NULL,"
            " size INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, experiment));"
            "INSERT INTO run_frames SELECT run_id, experiment, 1, 0, 0, 1, '', 0, x'00' FROM trials GROUP BY 1, 2;"
        )
    with ResultStore(store_path) as store:
        frame = store.trials_frame("exp")
    assert kept(store_path) == 2 and counts_hold(store_path)
    pd.testing.assert_frame_equal(frame, by_rows(store_path, "exp"))
    assert len(frame) == 1400


KINDS = {
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(),
    "number": st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False)),
    "big": st.integers(2**63, 2**70),
    "bool": st.booleans(),
    "text": st.sampled_from(["x", "", "é", "1"]),
    "date": st.sampled_from(["2020-01-01", "2020-01-01 10:00:00"]),
    "nested": st.lists(st.integers(0, 3), max_size=2),
}
KEYS = ["a", "b", "c", "status", "wall_s"]


@st.composite
def stored_trials(draw):
    """Trials of 4 runs in 2 experiments, each metric of one kind (at times another, or missing or None)."""
    kinds = draw(st.fixed_dictionaries({k: st.sampled_from(sorted(KINDS)) for k in KEYS}))
    other = st.sampled_from(sorted(KINDS)).flatmap(KINDS.get)
    pick = st.integers(0, 19)  # 1 in 20: another kind; 3 in 20: None
    value = {k: pick.flatmap(lambda i, k=k: other if i == 0 else st.none() if i < 4 else KINDS[kinds[k]]) for k in KEYS}
    metrics = st.lists(st.sampled_from(KEYS), unique=True, max_size=5).flatmap(
        lambda keys: st.fixed_dictionaries({k: value[k] for k in keys})
    )
    run = st.integers(0, 3)
    return draw(
        st.lists(
            st.tuples(
                run,
                st.sampled_from(["a", "b"]),
                metrics,
                st.sampled_from([None, 1, 2]),
                st.sampled_from([None, "boom"]),
            ),
            min_size=1,
            max_size=40,
        )
    )


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trials=stored_trials(),
    ended=st.lists(st.booleans(), min_size=4, max_size=4),
    bulk=st.integers(1, 12),
    order=st.permutations(range(4)),
    merge=st.integers(1, 30),
    sequential=st.booleans(),
)
@example(  # two runs merged (a key first seen in the first's second trial), a running run between them and a third
    trials=[
        (0, "a", {"a": 1}, 1, None),
        (0, "a", {"a": 2, "b": 1.0}, 1, None),
        (1, "a", {"a": 3, "b": 2.0}, 1, None),
        (3, "a", {"c": "x", "a": 9}, 1, None),
        (2, "a", {"a": 4, "b": 3.0}, 2, None),
        (2, "a", {"a": 5, "b": None}, 2, None),
    ],
    ended=[True, True, True, False],
    bulk=1,
    order=[0, 1, 2, 3],
    merge=2,
    sequential=False,
)
@example(  # three runs one after the other, merged, and a fourth still running
    trials=[(r, "a", {"a": i, "b": 1.5}, 1, None) for r in range(4) for i in range(3)],
    ended=[True, True, True, False],
    bulk=1,
    order=[0, 1, 2, 3],
    merge=4,
    sequential=True,
)
@example(  # two runs interleaved, a key first seen in the later one
    trials=[(0, "a", {"a": 1}, 1, None), (1, "a", {"b": 2, "a": 3}, 1, None), (0, "a", {"c": 1.5, "a": 2}, 2, None)],
    ended=[True, True, False, False],
    bulk=1,
    order=[1, 0, 2, 3],
    merge=2,
    sequential=False,
)
@example(  # integers in one run, floats in another, None alone in a third: floats
    trials=[
        (0, "a", {"a": 1, "b": None}, 1, None),
        (1, "a", {"a": 2.5, "b": "x"}, 1, None),
        (2, "a", {"a": None}, 2, None),
    ],
    ended=[True, True, True, False],
    bulk=1,
    order=[1, 0, 2, 3],
    merge=2,
    sequential=False,
)
@example(  # booleans in one run, integers in another: Arrow refuses the mix, the row read it is
    trials=[(0, "a", {"a": True}, 1, None), (1, "a", {"a": 1}, 1, None)],
    ended=[True, True, False, False],
    bulk=1,
    order=[0, 1, 2, 3],
    merge=1,
    sequential=False,
)
@example(  # dates in one run, other text in another: the row read
    trials=[
        (0, "a", {"a": "2020-01-01"}, 1, None),
        (1, "a", {"a": "x"}, 1, None),
        (2, "a", {"a": "2020-01-02"}, 1, None),
    ],
    ended=[True, True, True, False],
    bulk=1,
    order=[1, 0, 2, 3],
    merge=2,
    sequential=False,
)
def test_any_trials_read_by_columns_give_the_frame_rows_give(trials, ended, bulk, order, merge, sequential):
    """Types, column order and row order as the row read gives them, or the row read itself
    (nested values, kinds Arrow's JSON reader will not mix), for any split into runs, merged
    or not."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        mp.setattr(schema, "BULK_ROWS", bulk)
        mp.setattr(sealing, "MERGE_ROWS", merge)
        path = Path(folder) / "store.db"
        with ResultStore(path) as store:
            runs = [store.start_run("exp", "array-sum", env={}, config={}) for _ in range(4)]
            for i, (r, experiment, metrics, workers, error) in enumerate(
                sorted(trials, key=lambda t: t[0]) if sequential else trials
            ):
                store.add_trial(trial(runs[r], i, metrics, experiment=experiment, workers=workers, error=error))
            for r in order:  # runs end in any order
                if ended[r]:
                    store.end_run(runs[r])
            frames = {sel: store.trials_frame(*sel) for sel in ((None, None), ("a", None), (None, runs[0]))}
        assert counts_hold(path)
        for sel, frame in frames.items():
            pd.testing.assert_frame_equal(frame, by_rows(path, *sel))
