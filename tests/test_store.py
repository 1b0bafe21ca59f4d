"""ResultStore: WAL SQLite, one transaction per trial, exports, shared with a thread."""

from __future__ import annotations

import sqlite3
import threading

import pandas as pd
import pytest

from labkit.errors import ParameterError
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


def test_cache(store_path):
    with ResultStore(store_path) as store:
        assert store.cache_get("probe:abc") is None
        store.cache_put("probe:abc", {"triad": 1.5e10})
        assert store.cache_get("probe:abc") == {"triad": 1.5e10}


def test_bad_status_is_refused(store_path):
    with ResultStore(store_path) as store:
        with pytest.raises(ParameterError, match="status='done'"):
            store.add_trial(make_trial("r", 0, status="done"))
