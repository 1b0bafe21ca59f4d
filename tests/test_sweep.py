"""Sweep: trials in the store as they end, failures recorded, timeouts, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import labkit
from labkit import Work
from labkit.analysis.intervals import MIN_REPEATS
from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.measure.power import EnergyMeter


@labkit.workload("test-flaky")
def flaky(lab, fail: bool = False, fail_setup: bool = False, n: int = 10):
    if fail:
        raise ValueError(f"flaky failed on purpose with n={n}")
    return Work(lab.client.submit(sum, range(n)).result(), "items")


class SlowSetup(labkit.workloads.BaseWorkload):
    name = "test-setup-fails"
    defaults = {"n": 1}

    def setup(self, lab, **params):
        raise RuntimeError("no input data")

    def run(self, state):
        return Work(1, "items")


labkit.workloads.register(SlowSetup())


@labkit.workload("test-sleepy")
def sleepy(lab, seconds: float = 3.0):
    lab.client.submit(time.sleep, seconds, pure=False).result()
    return Work(1, "items")


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_every_trial_lands_in_the_store_file(scaled_lab, store_path):
    sweep = labkit.Sweep(
        "array-sum",
        grid={"workers": [1, 2], "size_mb": [1.0, 2.0]},
        params={"chunk_mb": 0.5},
        repeats=2,
        warmup=1,
        experiment="e2e",
        store=store_path,
    )
    results = sweep.run(scaled_lab, live=False)

    stored = rows(store_path, "SELECT workers, threads, status, wall_s, amount, throughput, point FROM trials")
    assert len(stored) == 8
    for workers, threads, status, wall, amount, throughput, point in stored:
        assert status == "ok" and wall > 0
        assert f'"workers": {workers}' in point and threads == workers
        assert throughput == pytest.approx(amount / wall)
    assert sorted({a for *_, a, _, _ in [(r[0], r[4], 0, 0) for r in stored]}) == [2**20, 2 * 2**20]
    assert rows(store_path, "PRAGMA journal_mode")[0][0] == "wal"

    (env_json,) = rows(store_path, "SELECT env_json FROM runs")[0]
    assert '"dask"' in env_json and '"cpu_count"' in env_json

    frame = results.frame
    assert len(frame) == 8 and set(frame["workers"]) == {1, 2} and set(frame["size_mb"]) == {1.0, 2.0}
    assert (frame["unit"] == "bytes").all() and (frame["repeat"].isin([0, 1])).all()
    assert frame["ended_at"].ge(frame["started_at"]).all()


def test_failures_are_recorded_and_the_sweep_goes_on(lab, store_path):
    results = labkit.Sweep("test-flaky", grid={"fail": [True, False]}, repeats=2, warmup=0, store=store_path).run(
        lab, live=False
    )
    failed = results.frame[results.frame["fail"]]
    assert list(failed["status"]) == ["error", "error"]
    assert failed["error"].str.contains("ValueError: flaky failed on purpose with n=10").all()
    ok = results.frame[~results.frame["fail"]]
    assert list(ok["status"]) == ["ok", "ok"] and (ok["amount"] == 45).all()


def test_setup_failure_is_recorded_for_each_repeat(lab, store_path):
    results = labkit.Sweep("test-setup-fails", grid={"n": [1]}, repeats=3, store=store_path).run(lab, live=False)
    assert list(results.frame["status"]) == ["error"] * 3
    assert results.frame["error"].str.startswith("setup failed: RuntimeError: no input data").all()


def test_raise_on_error_records_then_raises(lab, store_path):
    sweep = labkit.Sweep(
        "test-flaky", grid={"fail": [True]}, repeats=1, warmup=0, store=store_path, raise_on_error=True
    )
    with pytest.raises(ValueError, match="on purpose"):
        sweep.run(lab, live=False)
    assert rows(store_path, "SELECT status FROM trials") == [("error",)]


def test_timeout_cancels_the_run_and_the_sweep_goes_on(lab, store_path):
    sweep = labkit.Sweep(
        "test-sleepy", grid={"seconds": [3.0, 0.01]}, repeats=2, warmup=0, timeout_s=0.5, store=store_path
    )
    results = sweep.run(lab, live=False)
    slow = results.frame[results.frame["seconds"] == 3.0]
    assert list(slow["status"]) == ["timeout", "timeout"]
    assert "timeout_s=0.5" in slow["error"].iloc[0]
    assert "earlier repeat of this point timed out" in slow["error"].iloc[1]
    fast = results.frame[results.frame["seconds"] == 0.01]
    assert list(fast["status"]) == ["ok", "ok"]
    assert fast["wall_s"].max() < 0.5  # not queued behind the cancelled sleep


def test_rerun_skips_finished_trials(lab, store_path):
    sweep = labkit.Sweep(
        "test-flaky", grid={"n": [1, 2, 3]}, repeats=2, warmup=0, experiment="resume", store=store_path
    )
    first = sweep.run(lab, live=False)
    second = sweep.run(lab, live=False)
    assert rows(store_path, "SELECT COUNT(*) FROM trials") == [(6,)]
    assert second.run_id != first.run_id
    assert list(second.frame["trial_id"]) == list(first.frame["trial_id"])
    bigger = labkit.Sweep(
        "test-flaky", grid={"n": [1, 2, 3, 4]}, repeats=2, warmup=0, experiment="resume", store=store_path
    )
    third = bigger.run(lab, live=False)
    assert len(third.frame) == 8
    assert rows(store_path, f"SELECT COUNT(*) FROM trials WHERE run_id = '{third.run_id}'") == [(2,)]


def test_killed_sweep_keeps_its_trials_and_resumes(tmp_path):
    """SIGKILL mid-sweep: every committed trial survives, and a re-run does only the rest."""
    store = tmp_path / "killed.db"
    job = subprocess.Popen([sys.executable, str(Path(__file__).with_name("sweep_job.py")), str(store), "killed"])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if rows(store, "SELECT COUNT(*) FROM trials")[0][0] >= 5:
                    break
            except sqlite3.OperationalError:  # the job has not created the tables yet
                pass
            time.sleep(0.02)
        os.kill(job.pid, signal.SIGKILL)
    finally:
        job.wait(30)
    kept = rows(store, "SELECT COUNT(*) FROM trials WHERE status = 'ok'")[0][0]
    assert 5 <= kept < 24, "the job should have been killed mid-sweep"

    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("sweep_job.py")), str(store), "killed"], check=True, timeout=300
    )
    runs = rows(store, "SELECT run_id, status, ended_at FROM runs ORDER BY started_at")
    run_ids = [r[0] for r in runs]
    assert len(run_ids) == 2
    # The second run's open of the store found the first one's process gone.
    assert [r[1] for r in runs] == ["interrupted", "finished"]
    assert runs[0][2] is None and runs[1][2] is not None  # when the killed run ended is not known
    redone = rows(store, f"SELECT COUNT(*) FROM trials WHERE run_id = '{run_ids[1]}'")[0][0]
    assert redone == 24 - kept
    assert rows(store, "SELECT COUNT(DISTINCT point || repeat) FROM trials WHERE status = 'ok'") == [(24,)]


def test_terminal_progress(lab, store_path, capsys):
    labkit.Sweep("test-flaky", grid={"n": [1, 2]}, repeats=2, warmup=0, store=store_path).run(lab, live=True)
    err = capsys.readouterr().err
    assert "test-flaky" in err and "4/4" in err


@labkit.workload("test-jitter")
def jitter(lab, spread: float = 0.0, seed: int = 0):
    """Sleeps 40 ms, times a seeded random factor in [1, 1 + spread] drawn afresh each run."""
    import random

    jitter.rng = getattr(jitter, "rng", random.Random(seed))
    time.sleep(0.04 * (1 + spread * jitter.rng.random()))
    return Work(1, "items")


def test_a_point_too_spread_to_resolve_effects_is_said_live_and_in_the_conclusion(lab, store_path, capsys):
    # Sleeps of 40 to 160 ms (uniform): the median of 6 (the fewest that give a 95% interval
    # from order statistics) is known to no better than about ±25%.
    results = labkit.Sweep("test-jitter", grid={"spread": [3.0]}, repeats=6, warmup=0, store=store_path).run(
        lab, live=True
    )
    err = capsys.readouterr().err
    assert "test-jitter, spread=3.0: result may be unstable: over 6 runs the median time is known only to ±" in err
    conclusion = results.conclusion()
    assert (
        "Results may be unstable where the runs spread: the median time is known only to seed=0, spread=3.0, workers=2 (±"
        in conclusion
    ), conclusion
    assert conclusion.caveats and conclusion.count("more repeats, a quieter machine") == 1  # the advice once
    ci = results.frame["point_ci_rel"].dropna()
    assert len(ci) == 6 and (ci > 0.10).all()


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"workload": "no-such-workload", "grid": {"workers": [1]}}, ParameterError, "workload='no-such-workload'"),
        ({"grid": {}}, ParameterError, "grid={} is not allowed"),
        ({"grid": {"workers": []}}, ParameterError, "grid['workers']"),
        ({"grid": {"workers": [0, 1]}}, ParameterError, "grid['workers']=0"),
        ({"grid": {"workers": ["2"]}}, ParameterTypeError, "grid['workers']='2'"),
        ({"grid": {"size": [1.0]}}, ParameterError, "has parameters: backend, chunk_mb, dtype, size_mb"),
        ({"grid": {"size_mbs": [1.0]}}, ParameterError, "did you mean 'size_mb'? workload 'array-sum' has"),
        ({"grid": {"workers": [1]}, "params": {"dtype": "float46"}}, ParameterError, "did you mean 'float64'?"),
        ({"grid": {"size_mb": ["big"]}}, ParameterTypeError, "array-sum.size_mb='big'"),
        ({"grid": {"workers": [1]}, "repeats": 0}, ParameterError, "repeats=0"),
        ({"grid": {"workers": [1]}, "warmup": -1}, ParameterError, "warmup=-1"),
        ({"grid": {"workers": [1]}, "timeout_s": 0}, ParameterError, "timeout_s=0"),
        ({"grid": {"workers": [1]}, "params": {"workers": 2}}, ParameterError, "params['workers']"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, error, words):
    kwargs = {"workload": "array-sum", **kwargs}
    with pytest.raises(error) as err:
        labkit.Sweep(kwargs.pop("workload"), **kwargs)
    assert words in str(err.value)


def test_unwritable_store_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ParameterError, match="store="):
        labkit.Sweep("array-sum", grid={"workers": [1]}, store=blocker / "labkit.db")
    with pytest.raises(ParameterError, match="not a folder"):
        labkit.Sweep("array-sum", grid={"workers": [1]}, store=tmp_path)


@labkit.workload("test-jittery")
def jittery(lab, first_s: float = 0.3, s: float = 0.02):
    """Slow on the first call in a process (a compile or cache effect), then steady."""
    cold = not getattr(jittery, "warm", False)
    jittery.warm = True
    time.sleep(first_s if cold else s)
    return Work(1, "items")


def test_auto_repeats_stop_when_the_median_is_tight_and_auto_warmup_absorbs_the_first_run(lab, store_path):
    jittery.warm = False
    sweep = labkit.Sweep(
        "test-jittery",
        grid={"s": [0.02]},
        repeats="auto",
        warmup="auto",
        ci_target=0.05,
        max_repeats=20,
        store=store_path,
    )
    results = sweep.run(lab, live=False)
    frame = results.frame
    assert (frame["status"] == "ok").all()
    assert MIN_REPEATS <= len(frame) < 20  # enough for an interval, far fewer than the cap
    assert frame["wall_s"].max() < 0.2  # the slow first run was a warm-up, never timed
    assert frame["warmup_runs"].iloc[0] >= 2 and frame["warmup_first_s"].iloc[0] >= 0.3
    assert frame["point_runs"].iloc[0] == len(frame)
    assert frame["point_ci_rel"].iloc[0] <= 0.05
    again = sweep.run(lab, live=False)
    assert rows(store_path, "SELECT COUNT(*) FROM trials") == [(len(frame),)]  # resumed: nothing to add
    assert len(again.frame) == len(frame)


def test_explicit_points_run_only_the_weak_scaling_diagonal(scaled_lab, store_path):
    from labkit import analysis

    grid = analysis.weak_grid("size_mb", 1.0, [1, 2])
    results = labkit.Sweep(
        "array-sum", grid=grid, params={"chunk_mb": 0.25}, repeats=2, warmup=0, store=store_path
    ).run(scaled_lab, live=False)
    assert sorted(zip(results.frame["workers"], results.frame["size_mb"])) == [(1, 1.0), (1, 1.0), (2, 2.0), (2, 2.0)]
    weak = analysis.weak_scaling(results.frame, "size_mb")
    assert list(weak["workers"]) == [1, 2]
    with pytest.raises(ParameterError, match="same keys"):
        labkit.Sweep("array-sum", grid=[{"workers": 1}, {"size_mb": 2.0}])
    with pytest.raises(ParameterError, match="grid"):
        labkit.Sweep("array-sum", grid=[])


def test_every_trial_gets_its_settled_resources_and_time_split(scaled_lab, store_path):
    results = labkit.Sweep(
        "array-sum",
        grid={"workers": [1, 2]},
        params={"size_mb": 16.0, "chunk_mb": 2.0},
        repeats=2,
        warmup=0,
        store=store_path,
    ).run(scaled_lab, live=False)
    frame = results.frame
    assert frame["time_settled"].astype(bool).all()  # read after the heartbeats, not before
    buckets = [c for c in frame.columns if c.startswith("time_") and c.endswith("_s") and c != "time_total_s"]
    assert len(buckets) == 7
    assert (frame[buckets].sum(axis=1) - frame["time_total_s"]).abs().le(0.1 * frame["time_total_s"]).all()
    assert (frame["time_compute_cpu_s"] > 0).all()
    assert (frame["peak_memory_bytes"] > 0).all() and frame["measurements"].ge(1).all()
    # Without RAPL or NVML (as on CI's machines): not measured, never a guess.
    assert frame["energy_method"].eq("not measured").all() == (not EnergyMeter().counters)
    assert frame["energy_j"].isna().eq(frame["energy_method"].isin(["not measured", "below-resolution"])).all()
    samples = results.samples()
    assert {"cpu_percent", "memory_bytes"} <= set(samples["metric"])


def test_under_labkit_run_the_live_figure_is_drawn_only_at_the_end(lab, tmp_path, monkeypatch) -> None:
    """Headless (``labkit run`` names a progress file): no frames while the trials come in."""
    from labkit import live
    from labkit.common import progress
    from labkit.store import Trial

    point = json.dumps({"workload": "array-sum", "workers": 1}, sort_keys=True)
    trials = [
        Trial(
            run_id="r", experiment="e", workload="array-sum", point=point, params={}, repeat=i, workers=1,
            threads=1, backend="numpy", status="ok", wall_s=0.1, amount=1e6, unit="bytes",
        )
        for i in range(3)
    ]  # fmt: skip
    monkeypatch.setattr(live, "in_jupyter", lambda: True)
    views = {}
    for name, env in (("watched", None), ("headless", str(tmp_path / "progress.jsonl"))):
        if env is None:
            monkeypatch.delenv(progress.ENV, raising=False)
        else:
            monkeypatch.setenv(progress.ENV, env)
        views[name] = view = live.make_view(True, total=3, title=name, lab=lab)
        assert isinstance(view, live.LiveView) and view.headless == (env is not None)
        shown: list = []
        view.handle = SimpleNamespace(update=shown.append)  # no kernel here to display into
    for view in views.values():
        for trial in trials:
            view._last_draw = 0.0  # as if the last frame were long ago
            view.trial(trial)
        view.close(None)
    assert views["watched"].redraws >= 3
    assert views["headless"].redraws == 1  # once, at the end
