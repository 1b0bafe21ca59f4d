"""Faults on purpose, for real: a worker process SIGKILLed mid-run and what Dask recomputed, a
worker lost inside an ordinary sweep, a sweep in its own process interrupted with SIGINT and
resumed; bad parameters refused before any cluster work; notebook 11 headless."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

import labkit
from labkit import ResultStore
from labkit.common.errors import DataError, ParameterError
from labkit.studies.recovery import analysis as recovery_analysis
from labkit.studies.recovery import figures as recovery_plots
from labkit.studies.recovery import interrupt as interrupted
from labkit.studies.recovery import run as recovery

try:
    from .signals import interrupting
except ImportError:
    from signals import interrupting  # type: ignore[no-redef]

try:
    from .nbtext import printed_text
except ImportError:
    from nbtext import printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "11_fault_tolerance.ipynb"
MiB = 2**20


@pytest.fixture(scope="module")
def rlab():
    """This module's own 2-worker cluster with nannies: it kills their worker processes."""
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"runs": 0},
        {"runs": 2.5},
        {"kill_at": 0.0},
        {"kill_at": 1.0},
        {"kill_at": "half"},
        {"size_mb": -1.0},
        {"chunk_mb": 64.0, "size_mb": 8.0},
        {"steps": 0},
        {"experiment": " "},
        {"timeout_s": 0},
    ],
)
def test_bad_recomputation_parameters_are_refused_before_any_cluster_work(kwargs, tmp_path):
    store = tmp_path / "bad.db"
    with pytest.raises(ParameterError):
        recovery.recomputation(None, store=store, **kwargs)  # no Lab at all: nothing may reach one
    assert not store.exists()


def test_a_lab_whose_workers_cannot_be_killed_is_refused(tmp_path):
    with labkit.Lab(workers=2, threads_per_worker=1, processes=False, dashboard=False) as threads:
        with pytest.raises(ParameterError, match="worker processes"):
            recovery.recomputation(threads, store=tmp_path / "t.db")
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"after": 0}, {"after": 4}, {"tasks": []}, {"tasks": [0]}, {"repeats": 0}, {"experiment": ""}],
)
def test_bad_interrupt_parameters_are_refused_before_a_process_starts(kwargs, tmp_path):
    store = tmp_path / "bad.db"
    args = {"after": 1, "tasks": [10, 20], "repeats": 2, **kwargs}
    with pytest.raises(ParameterError):
        interrupted.interrupted_sweep(store, **args)
    assert not store.exists()


@pytest.mark.parametrize("kwargs", [{"kill_in_run": -1}, {"kill_in_run": 1.5}, {"kill_after_s": -0.1}])
def test_a_chain_with_a_bad_kill_is_refused(kwargs):
    with pytest.raises(ParameterError):
        recovery.Chain(**kwargs)


# -- the answers, on runs whose answer is known ------------------------------------------------


def known_runs(clean: list[float], faulty: list[float], results: list[float] | None = None) -> pd.DataFrame:
    """A recomputation frame: clean and faulty runs alternating, the faulty ones killed 0.1 s in."""
    n = len(clean) + len(faulty)
    fault = [i % 2 == 1 for i in range(n)]
    walls = [(faulty if f else clean)[i // 2] for i, f in enumerate(fault)]
    return pd.DataFrame(
        {
            "trial_id": range(1, n + 1),
            "fault": fault,
            "status": ["degraded" if f else "ok" for f in fault],
            "wall_s": walls,
            "kill_s": [0.1 if f else None for f in fault],
            "result": results or [42.0] * n,
            "tasks": [12 if f else 10 for f in fault],
            "recomputed_tasks": [2 if f else 0 for f in fault],
            "recomputed_bytes": [2 * MiB if f else 0 for f in fault],
            "recomputed_compute_s": [0.25 if f else 0.0 for f in fault],
        }
    )


def test_slower_is_said_only_when_the_interval_shows_it():
    slower = recovery_analysis.describe_recovery(known_runs([1.0, 1.02, 0.98, 1.01, 0.99], [2.0, 2.1, 1.9, 2.05, 1.95]))
    assert "2× the clean runs' median (95% interval" in slower and "): slower." in slower
    assert "tasks 2, 2, 2, 2, 2; MiB 2, 2, 2, 2, 2" in slower and "tasks 0, 0, 0, 0, 0" in slower
    same = recovery_analysis.describe_recovery(known_runs([1.0, 1.3, 0.8, 1.2, 0.9], [1.1, 0.85, 1.25, 0.95, 1.05]))
    assert "which holds 1): the runs cannot tell" in same and "slower" not in same and "faster" not in same
    r = recovery_analysis.time_ratio(known_runs([1.0] * 3, [2.0] * 3))
    assert r.value == 2.0 and np.isnan(r.lo) and "3 runs per point" in r.note


def test_runs_under_outside_load_decide_nothing_in_the_recovery_answer():
    # Quiet: losing a worker cost no time we can see. Ten loaded faulty runs took 3×: with them
    # the answer would say "slower".
    quiet = known_runs([1.0, 1.3, 0.8, 1.2, 0.9], [1.1, 0.85, 1.25, 0.95, 1.05])
    loaded = known_runs([1.0] * 10, [3.0, 3.1, 2.9, 3.05, 2.95] * 2).assign(trial_id=lambda f: f["trial_id"] + 100)
    both = pd.concat([quiet.assign(outside_cpu_percent=0.0), loaded.assign(outside_cpu_percent=1000.0)])
    text = recovery_analysis.describe_recovery(both.assign(steal_percent=0.0))
    assert "which holds 1): the runs cannot tell" in text and "): slower" not in text
    assert "are left out of the time comparison" in text and "runs 11, 12," in text
    assert (
        recovery_analysis.time_ratio(both.assign(steal_percent=0.0)).hi
        > 1
        > recovery_analysis.time_ratio(both.assign(steal_percent=0.0)).lo
    )


def test_a_run_that_lost_its_answer_or_missed_its_kill_is_named():
    frame = known_runs([1.0, 1.0], [2.0, 2.0], results=[42.0, 42.0, 42.0, 41.0])
    frame.loc[1, "kill_s"] = None  # this faulty run ended before its kill came
    runs = recovery_analysis.recovery_runs(frame)
    assert runs["kind"].tolist() == ["clean", "faulty, kill missed", "clean", "faulty"]
    assert runs["same_result"].tolist() == [True, True, True, False]
    text = recovery_analysis.describe_recovery(frame)
    assert "no run was measured above it; outside load not measured in 4" in text  # these runs carry no load readings
    assert "1 faulty run ended before the kill came and is left out" in text and "Result: run 4 gave another" in text
    with pytest.raises(DataError, match="columns result"):
        recovery_analysis.recovery_runs(frame.drop(columns=["result"]))


# -- recomputation ----------------------------------------------------------------------------


def test_a_faulty_run_recomputes_and_a_clean_run_does_not(rlab, tmp_path):
    store = tmp_path / "recovery.db"
    # An early kill (15% of a clean run in): it comes before the run ends however loaded the machine.
    frame = recovery.recomputation(
        rlab, runs=2, kill_at=0.15, size_mb=32.0, chunk_mb=4.0, steps=3, store=store, experiment="rec"
    )
    runs = recovery_analysis.recovery_runs(frame)
    clean, faulty = runs[runs["kind"] == "clean"], runs[runs["kind"] == "faulty"]
    assert len(clean) == 2 and len(faulty) == 2, runs.to_string()
    assert (clean["recomputed_tasks"] == 0).all() and (clean["recomputed_bytes"] == 0).all()
    assert (clean["recomputed_compute_s"] == 0).all()
    assert (faulty["recomputed_tasks"] > 0).all() and (faulty["recomputed_compute_s"] > 0).all()
    assert ((faulty["kill_s"] > 0) & (faulty["kill_s"] < faulty["wall_s"])).all()  # inside the timed run
    # Every recomputed result is a whole block of float64: 4 MiB here.
    assert (faulty["recomputed_bytes"] == faulty["recomputed_tasks"] * 4 * MiB).all(), runs.to_string()
    # A clean run finishes each of its 8 input blocks, 3 × 8 steps, and the sum's tasks, once.
    assert (
        clean["tasks"].nunique() == 1 and (faulty["tasks"] == clean["tasks"].iloc[0] + faulty["recomputed_tasks"]).all()
    )
    # Whatever was lost, the answer is the clean runs' answer, to the last bit.
    assert runs["same_result"].all() and runs["result"].nunique() == 1
    expected = sum(float(np.sum(recovery._step(recovery._step(recovery._step(block(i)))))) for i in range(8))
    assert runs["result"].iloc[0] == pytest.approx(expected, rel=1e-12)
    # The store has every run; a faulty one as degraded, naming the worker it lost.
    assert rows(store, "SELECT status FROM runs") == [("finished",)]
    # Started and finished through the experiment's lifecycle: every trial carries the run's
    # fingerprint, whose parts the store holds, and the outside load flagged as a sweep's trials.
    (config,) = rows(store, "SELECT config_json FROM runs")[0]
    assert frame["fingerprint"].nunique() == 1 and frame["fingerprint"].iloc[0] in config
    assert rows(store, "SELECT fingerprint FROM fingerprints") == [(frame["fingerprint"].iloc[0],)]
    assert clean["under_load"].isin([True, False]).all() and faulty["under_load"].isna().all()
    assert list(frame["status"]) == ["ok", "degraded", "ok", "degraded"]
    assert frame.loc[frame["fault"].astype(bool), "error"].str.contains("left the cluster during the run").all()
    assert rlab.workers == 2  # the nanny's new worker is back
    # Outside load is read around each timed run; where a worker's process died during it, not measured.
    assert clean["outside_cpu_percent"].notna().all() and faulty["outside_cpu_percent"].isna().all()
    text = recovery_analysis.describe_recovery(frame)
    assert "Result: all 4 runs gave the first clean run's sum" in text
    # Two runs a side give no interval: the ratio is an estimate, and no direction is claimed.
    assert "slower" not in text
    if clean["under_load"].eq(True).any():  # a busy machine: those runs carry no claim, and the answer says so
        assert "left out of the time comparison" in text
    else:
        assert "(an estimate: interval not available: 2 runs per point" in text
    fig = recovery_plots.recovery_figure(frame)  # each bar carries its number, a clean run's 0 included
    assert [t.get_text() for t in fig.axes[1].texts] == [f"{v:.3g}" for v in runs["recomputed_tasks"]]


def test_a_failed_and_an_interrupted_recomputation_say_so_in_the_store(tmp_path):
    store = tmp_path / "ends.db"
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        # A timed run longer than timeout_s fails the run (after an untimed warm-up).
        with pytest.raises(labkit.TrialTimeout):
            recovery.recomputation(
                lab, runs=1, size_mb=256.0, chunk_mb=16.0, steps=8, store=store, experiment="fail", timeout_s=1.0
            )
        # Real SIGINTs to this process, as Ctrl-C sends (again while Dask swallows one), while many runs are still to come.
        with interrupting(after_s=3.0), pytest.raises(KeyboardInterrupt):
            recovery.recomputation(lab, runs=1000, size_mb=64.0, steps=8, store=store, experiment="stop")
    assert rows(store, "SELECT experiment, status FROM runs ORDER BY started_at") == [
        ("fail", "failed"),
        ("stop", "interrupted"),
    ]
    assert all(end is not None and fp for end, fp in rows(store, "SELECT ended_at, config_json FROM runs"))
    assert len(rows(store, "SELECT fingerprint FROM fingerprints")) == 1  # one lab shape, one code: one setup


def block(i: int) -> np.ndarray:
    """Block ``i`` of the chain's input, 4 MiB of it, as the workers make it."""
    n = 4 * MiB // 8
    return recovery._input_block(recovery.SEED, {None: {"chunk-location": (i,), "chunk-shape": (n,)}})


def test_a_worker_lost_in_an_ordinary_sweep_is_degraded_and_left_out(rlab, tmp_path):
    store = tmp_path / "lost.db"
    sweep = labkit.Sweep(
        recovery.Chain(kill_in_run=1, kill_after_s=0.05),
        grid={"size_mb": [32.0]},
        params={"chunk_mb": 4.0, "steps": 3},
        repeats=2,
        warmup=0,
        experiment="lost",
        store=store,
    )
    results = sweep.run(rlab, live=False)
    assert len(results.degraded) == 1 and results.degraded["repeat"].tolist() == [1]
    degraded = results.degraded.iloc[0]
    # the kill came inside the timed run: before its end, or the run was cut short when the lab saw
    # the worker go (then its time is not a run's time: not recorded)
    assert 0 < degraded["kill_s"] and not degraded["kill_s"] >= degraded["wall_s"], degraded[["kill_s", "wall_s"]]
    assert "left the cluster during the run" in results.degraded["error"].iloc[0]
    assert len(results.ok) == 2 and results.summary()["ok"].tolist() == [2]  # the repeat ran again
    assert any("lost a worker mid-run" in n for n in results.notes())
    assert rlab.workers == 2
    assert rows(store, "SELECT status, COUNT(*) FROM trials GROUP BY status ORDER BY status") == [
        ("degraded", 1),
        ("ok", 2),
    ]


# -- interrupted and resumed ------------------------------------------------------------------


def test_an_interrupted_sweep_keeps_its_trials_and_resumes_with_the_rest(rlab, tmp_path):
    store = tmp_path / "sweep.db"
    tasks, repeats = [100, 200, 300], 2
    done = interrupted.interrupted_sweep(store, "intr", after=2, tasks=tasks, repeats=repeats)
    # Where the signal lands is not up to the test (Dask swallows one that lands in its own
    # callbacks; interrupted_sweep sends it again): what must hold is that the run's status
    # says how the process ended, and that nothing stored was lost.
    assert done["interrupts"] >= 1 and len(done["at_interrupt"]) >= 2 and done["lost"] == [], done["log"]
    assert set(done["at_interrupt"]) <= set(done["after"]) and done["planned"] == 6
    if done["returncode"] == 130:
        assert done["status"] == "interrupted" and "interrupted" in done["log"] and len(done["after"]) < 6
    else:  # every interrupt was swallowed and the sweep ran to its end
        assert done["returncode"] == 0 and done["status"] == "finished" and len(done["after"]) == 6, done["log"]
    # The same sweep, here, on a Lab of the same shape: it measures only what is missing.
    resumed = interrupted.resumable_sweep(done["store"], done["experiment"], tasks=tasks, repeats=repeats).run(
        rlab, live=False
    )
    assert resumed.reused == len(done["after"]) and resumed.measured_now == 6 - len(done["after"])
    assert set(done["after"]) <= set(resumed.frame["trial_id"]) and (resumed.frame["status"] == "ok").all()
    assert rows(store, "SELECT status FROM runs ORDER BY started_at") == [(done["status"],), ("finished",)]
    text = recovery_analysis.describe_resume(done, resumed.reused, resumed.measured_now)
    assert "marks it 'interrupted'" in text and "0 were lost" in text and "only the trials not yet stored" in text
    assert f"{resumed.reused} of 6 trials reused" in resumed.reuse_note


# -- notebook 11 ------------------------------------------------------------------------------

SMALL = {
    "runs": 2,
    "kill_at": 0.15,
    "size_mb": 32.0,
    "chunk_mb": 4.0,
    "steps": 3,
    "lost_repeats": 2,
    "kill_after_s": 0.05,
    "sweep_tasks": [100, 200],
    "sweep_repeats": 2,
    "interrupt_after": 2,
    "experiment": "nb11",
}


def test_notebook_declares_the_parameters_the_tests_set():
    # The rules every notebook keeps (no logic, explained parameters) are in tests/test_notebooks.py.
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(SMALL) | {"store", "sweep_store"} <= set(declared)


def test_notebook_prints_its_answers_from_the_store(tmp_path, notebooks_store):
    # One store for both, shared with the other notebooks: read by experiment.
    store = sweep_store = notebooks_store.path
    result = notebooks_store.run(NOTEBOOK, {**SMALL, "sweep_store": str(sweep_store)}, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(store) as s:
        frame = s.trials_frame("nb11/recomputation")
        lost = s.trials_frame("nb11/lost-worker")
    assert len(frame) == 4 and recovery_analysis.describe_recovery(frame) in printed
    assert sorted(lost["status"]) == ["degraded", "ok", "ok"]
    assert "1 trial lost a worker mid-run" in printed
    assert "marks it 'interrupted'. Of those" in printed and "only the trials not yet stored" in printed
    assert os.path.exists(sweep_store)
    assert result.html.read_text().count("<img") >= 2
