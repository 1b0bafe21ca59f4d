"""Bursty load on fixed and adaptive clusters: the schedule asked for, what the runs record, the claims
they allow, the cold start, and notebook 10 headless with small parameters."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

import labkit
from labkit import ResultStore
from labkit.analysis.intervals import median_estimate
from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.studies.autoscale import analysis as an
from labkit.studies.autoscale import run as autoscale

try:
    from .signals import interrupting
except ImportError:
    from signals import interrupting  # type: ignore[no-redef]

try:
    from .nbtext import printed_text
except ImportError:
    from nbtext import printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "10_autoscaling.ipynb"

# A heavy wave for one worker (6 × 0.3 s = 1.8 s of sleep) that three workers clear in a
# third of that; 3.8 s between waves, so that each wave finishes before the next comes and an
# idle worker, retired at the first idle decision (wait_count=1), has time to leave in the gap.
LOAD = {"waves": 5, "tasks_per_wave": 6, "task_s": 0.3, "burst_s": 0.3, "gap_s": 3.5}


# -- the schedule and the arithmetic, without a cluster ---------------------------------


def test_schedule_has_the_waves_and_gaps_asked_for():
    s = an.wave_schedule(4, 7, 0.8, 2.5, seed=3)
    assert s.groupby("wave").size().tolist() == [7, 7, 7, 7]
    assert np.all(np.diff(s["offset_s"]) >= 0)
    span = s.groupby("wave")["offset_s"].agg(["min", "max"])
    assert ((span["max"] - span["min"]) <= 0.8).all()
    gaps = span["min"].to_numpy()[1:] - span["max"].to_numpy()[:-1]
    assert (gaps >= 2.5).all()  # wave k starts at k × (burst + gap): the quiet gap is at least gap_s
    assert s.equals(an.wave_schedule(4, 7, 0.8, 2.5, seed=3))  # the same arrivals for every cluster
    assert not s.equals(an.wave_schedule(4, 7, 0.8, 2.5, seed=4))
    assert (an.wave_schedule(2, 3, 0.0, 1.0)["offset_s"].tolist()) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_worker_seconds_integrate_the_sampled_count():
    # 1 worker for 1 s, 3 for 1 s, then 1 until 2.5 s: 1 + 3 + 0.5.
    assert an.worker_seconds([0.0, 1.0, 2.0], [1, 3, 1], 0.0, 2.5) == pytest.approx(4.5)
    # The window cuts the first and last steps: 3 × 0.5 + 1 × 0.25.
    assert an.worker_seconds([0.0, 1.0, 2.0], [1, 3, 1], 1.5, 2.25) == pytest.approx(1.75)
    assert math.isnan(an.worker_seconds([0.0, 1.0], [1.0, math.nan], 0.0, 2.0))  # not measured
    with pytest.raises(ParameterError, match="start"):
        an.worker_seconds([1.0, 2.0], [1, 1], 0.5, 2.0)  # nothing sampled at the start


def record(config, kind, rank, repeat, latency, *, workers=1, waves=5, period=3.0, carry=False, **extra):
    """A run's record as ``_run_load`` makes it: 4 tasks a wave, each task's latency from
    ``latency(wave, i)``; ``carry`` makes wave 0's last task end after wave 1 arrives;
    ``extra`` (``under_load``, ``load``) replaces the record's keys."""
    offsets = [w * period + 0.05 * i for w in range(waves) for i in range(4)]
    ends = [o + latency(k // 4, k % 4) for k, o in enumerate(offsets)]
    if carry:
        ends[3] = period + 0.5
    t = np.arange(-0.1, max(ends) + 0.25, 0.25)
    tasks = {"task": list(range(len(offsets))), "wave": [k // 4 for k in range(len(offsets))], "offset_s": offsets}
    tasks |= {"submit_s": offsets, "start_s": offsets, "end_s": ends, "worker": ["w"] * len(offsets)}
    samples = {"t_s": t.tolist(), "workers": [workers] * t.size, "asked": [workers] * t.size}
    samples |= {"queued": [0] * t.size, "processing": [0] * t.size}
    keys = {"config": config, "kind": kind, "rank": rank, "repeat": repeat, "position": rank, "t0": 0.0}
    return keys | {"end_s": max(ends), "load": 1.0, "tasks": tasks, "samples": samples} | extra


def test_units_and_claims_follow_the_data():
    rng = np.random.default_rng(0)
    slow = [record("fixed-1", "fixed", 0, 0, lambda w, i: 1.0 + 0.3 * i + 0.05 * rng.random())]
    fast = [record("fixed-2", "fixed", 2, 0, lambda w, i: 0.5 + 0.1 * i + 0.05 * rng.random(), workers=2)]
    tasks, samples, runs = an.run_frames(slow + fast)
    units = an.units_table(tasks, samples, runs).set_index("config")
    assert units.loc["fixed-1", "unit"] == "wave" and units.loc["fixed-1", "units"] == 5
    table = an.comparisons(tasks, samples, runs).set_index("measure")
    assert table.loc["p95 latency", "direction"] == "down" and table.loc["p95 latency", "hi"] < 1
    assert table.loc["worker-seconds", "direction"] == "unknown"  # one run a side: no interval
    words = an.describe_autoscaling(tasks, samples, runs)
    assert any(ln.startswith("fixed-2's p95 latency was") and ln.endswith("×): lower") for ln in words.splitlines())
    assert "fixed-2's worker-seconds were" in words and "an estimate: interval not available" in words

    # A wave whose tasks run into the next: waves are not independent, whole runs are the units.
    carried = [record("fixed-1", "fixed", 0, r, lambda w, i: 1.0 + 0.3 * i, carry=r == 1) for r in range(3)]
    tasks, samples, runs = an.run_frames(carried + fast)
    units = an.units_table(tasks, samples, runs).set_index("config")
    assert units.loc["fixed-1", "unit"] == "run" and units.loc["fixed-1", "units"] == 3
    assert "in run 1, wave 0's tasks were still running when wave 1 arrived" in units.loc["fixed-1", "reason"]
    table = an.comparisons(tasks, samples, runs)
    assert (table["direction"] == "unknown").all()  # 3 runs: no interval, no direction
    assert "interval not available: 3 independent runs" in an.describe_autoscaling(tasks, samples, runs)


def test_loaded_runs_carry_no_direction_and_the_answer_says_they_were_left_out():
    # fixed-2 answers faster than fixed-1 in its clean run; its one loaded run is so slow that,
    # pooled with it, its p95 latency would be higher than fixed-1's: the answer must not say so.
    rng = np.random.default_rng(1)
    one = [record("fixed-1", "fixed", 0, r, lambda w, i: 1.0 + 0.3 * i + 0.05 * rng.random(), under_load=u)
           for r, u in ((0, False), (1, None))]  # fmt: skip
    fast, slow = (lambda w, i: 0.5 + 0.1 * i + 0.05 * rng.random()), (lambda w, i: 2.5 + 0.05 * rng.random())
    two = [record("fixed-2", "fixed", 2, r, f, workers=2, under_load=r == 1) for r, f in ((0, fast), (1, slow))]
    frames = an.run_frames(one + two)
    pooled = frames[2].assign(under_load=False)  # the same runs, none flagged: what the old answer claimed
    assert "fixed-2's p95 latency was" in an.describe_autoscaling(frames[0], frames[1], pooled)
    assert an.comparisons(frames[0], frames[1], pooled).set_index("measure").loc["p95 latency", "direction"] == "up"
    table = an.comparisons(*frames).set_index("measure")
    assert table.loc["p95 latency", "direction"] == "down"  # from the clean runs only
    words = an.describe_autoscaling(*frames)
    lines = words.splitlines()
    assert any(ln.startswith("fixed-2's p95 latency was") and ln.endswith("×): lower") for ln in lines)
    assert "): higher" not in words
    assert lines[-1].startswith("Trials: left out 1 of 4 trials that ran under outside load")
    assert "outside load not measured for 1" in lines[-1]  # fixed-1's run 1: kept, and said
    unadjusted = "Each interval is at 95%, not adjusted for the 3 comparisons in this answer."  # the latency ratios
    assert lines[-1].endswith(unadjusted)
    # Every run of a configuration under load: it is in no comparison, and the answer says so.
    frames = an.run_frames([*one, {**two[0], "under_load": True}, two[1]])
    words = an.describe_autoscaling(*frames)
    assert "fixed-2: every run ran under outside load" in words and "fixed-2's" not in words
    assert an.comparisons(*frames).empty
    nothing = an.run_frames([two[1]])
    assert an.describe_autoscaling(*nothing).startswith("No trial is left to claim from: left out 1")
    assert an.comparisons(*nothing).empty


def test_no_interval_prints_with_ends_that_read_the_same():
    # Latencies 3.19 s give or take 1e-4 s, run after run: intervals far narrower than 3 digits show.
    rng = np.random.default_rng(2)
    runs = [
        record(c, "fixed", k, r, lambda w, i, k=k: 3.19 * (k + 1) + 1e-4 * rng.random(), period=8.0, load=1.0 + r / 1e4)
        for k, c in enumerate(("fixed-1", "fixed-2"))
        for r in range(5)
    ]
    words = an.describe_autoscaling(*an.run_frames(runs))
    spans = re.findall(r"(\d[\d.,]*)(?: s|×)?–(\d[\d.,]*)", words)
    assert len(spans) >= 10, words  # the percentiles', worker-seconds', ratios' intervals, the load range
    assert all(a != b for a, b in spans), words
    assert "p50 3.19 s (3.19" in words and "load average of this machine at the runs' starts: 1" in words


BAD = [
    ({"waves": 0}, "waves"),
    ({"tasks_per_wave": -1}, "tasks_per_wave"),
    ({"task_s": -0.1}, "task_s"),
    ({"task_s": 0}, "task_s"),
    ({"gap_s": math.nan}, "gap_s"),
    ({"burst_s": -1.0}, "burst_s"),
    ({"minimum": 0}, "minimum"),
    ({"minimum": 3, "maximum": 2}, "maximum"),
    ({"minimum": 2, "maximum": 2}, "maximum"),
    ({"maximum": 2.5}, "maximum"),
    ({"repeats": 0}, "repeats"),
    ({"seed": -1}, "seed"),
    ({"interval": 0}, "interval"),
    ({"wait_count": 0}, "wait_count"),
    ({"target_duration": -1}, "target_duration"),
    ({"sample_s": math.inf}, "sample_s"),
    ({"warmup": "yes"}, "warmup"),
    ({"experiment": ""}, "experiment"),
    ({"timeout_s": 0}, "timeout_s"),
]


@pytest.mark.parametrize(("params", "name"), BAD, ids=[n for _, n in BAD])
def test_bad_parameters_are_refused_before_any_cluster_work(params, name):
    not_a_lab = object()  # any cluster work on it would fail with an AttributeError
    with pytest.raises((ParameterError, ParameterTypeError)) as e:  # 2.5 workers: not an int
        autoscale.compare_scaling(not_a_lab, **params)
    assert e.value.name == name


def test_bad_cold_start_and_load_parameters_are_refused_first():
    with pytest.raises(ParameterError) as e:
        autoscale.cold_start(object(), 0)
    assert e.value.name == "repeats"
    with pytest.raises(ParameterError) as e:
        autoscale.bursty_load(object(), waves=2, tasks_per_wave=2, task_s=-1.0, gap_s=1.0)
    assert e.value.name == "task_s"
    with pytest.raises(labkit.ClusterError, match="no cluster object"):
        autoscale.compare_scaling(object())


# -- real clusters ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    store = tmp_path_factory.mktemp("autoscale") / "store.db"
    with labkit.Lab(workers=1, threads_per_worker=1, dashboard=False) as lab:
        result = autoscale.compare_scaling(
            lab, minimum=1, maximum=3, repeats=1, interval=0.2, wait_count=1, target_duration=0.5, store=store,
            experiment="t", **LOAD,
        )  # fmt: skip
        after = lab.workers
        cold = autoscale.cold_start(lab, 5, store=store, experiment="t")
        yield result, cold, store, after, lab.workers, lab


def test_every_cluster_got_the_arrivals_asked_for(measured):
    result = measured[0]
    schedule = an.wave_schedule(LOAD["waves"], LOAD["tasks_per_wave"], LOAD["burst_s"], LOAD["gap_s"])
    assert sorted(result.runs["config"]) == ["adaptive-1-3", "fixed-1", "fixed-3"]
    for config, t in result.tasks.groupby("config"):
        assert t.groupby("wave").size().tolist() == [LOAD["tasks_per_wave"]] * LOAD["waves"], config
        assert np.allclose(t.sort_values("task")["offset_s"], schedule["offset_s"]), config
        assert (t["submit_s"] >= t["offset_s"]).all(), config  # never before its time
        assert (t["start_s"] >= t["submit_s"]).all() and (t["end_s"] >= t["start_s"] + LOAD["task_s"] - 1e-3).all()
        assert (t["latency_s"] >= LOAD["task_s"] - 1e-3).all()


def test_the_adaptive_cluster_scales_up_in_a_wave_and_down_in_a_gap(measured):
    result = measured[0]
    t = result.tasks[result.tasks["config"] == "adaptive-1-3"]
    s = result.samples[result.samples["config"] == "adaptive-1-3"]
    waves = t.groupby("wave").agg(first=("submit_s", "min"), last_end=("end_s", "max"))
    up_and_down = []
    for w in range(LOAD["waves"] - 1):
        during = s[(s["t_s"] >= waves.loc[w, "first"]) & (s["t_s"] <= waves.loc[w, "last_end"])]["workers"]
        gap = s[(s["t_s"] > waves.loc[w, "last_end"]) & (s["t_s"] < waves.loc[w + 1, "first"])]["workers"]
        up_and_down.append(during.max() > 1 and gap.min() < during.max())
    assert any(up_and_down), s[["t_s", "workers", "asked", "queued", "processing"]].to_string()
    assert s["workers"].iloc[0] == 1 and s["workers"].max() <= 3


def test_a_fixed_cluster_costs_its_size_times_the_run(measured):
    result = measured[0]
    for config, n in (("fixed-1", 1), ("fixed-3", 3)):
        run = result.runs[result.runs["config"] == config].iloc[0]
        t = result.tasks[result.tasks["config"] == config]
        assert run["fewest_workers"] == run["peak_workers"] == n
        assert run["duration_s"] == pytest.approx(t["end_s"].max())
        # Tolerance: one sampling step of n workers, the resolution of the sampled count.
        assert abs(run["worker_seconds"] - n * run["duration_s"]) <= n * run["sample_step_s"]
    # The heavy waves clear three times as fast on three workers, and the sampled cost says what it cost.
    ws = result.runs.set_index("config")["worker_seconds"]
    assert ws["fixed-1"] < ws["adaptive-1-3"] < ws["fixed-3"]


def test_the_large_cluster_answers_faster_with_an_interval_that_shows_it(measured):
    result = measured[0]
    table = an.comparisons(result.tasks, result.samples, result.runs)
    row = table[(table["a"] == "fixed-3") & (table["b"] == "fixed-1") & (table["measure"] == "p95 latency")]
    if result.runs.loc[result.runs["config"].isin(["fixed-1", "fixed-3"]), "under_load"].eq(True).any():
        assert row.empty and "under outside load" in result.describe()  # a busy machine: no claim from those
        return
    row = row.iloc[0]
    assert row["direction"] == "down" and row["lo"] < row["ratio"] < row["hi"] < 1
    assert any(
        ln.startswith("fixed-3's p95 latency was") and "× fixed-1's (95% interval" in ln and ln.endswith("×): lower")
        for ln in result.describe().splitlines()
    )


def test_runs_are_stored_as_they_end_and_read_back_the_same(measured):
    result, _, store, after, *_ = measured
    assert after == 1  # scaled back to where it started
    with ResultStore(store) as s:
        runs = s.runs_frame().set_index("experiment")
        trials = s.trials_frame("t/bursty")
    assert runs.loc["t/bursty", "status"] == "finished" and runs.loc["t/cold-start", "status"] == "finished"
    assert len(trials) == 3 and (trials["status"] == "ok").all()
    tasks, samples, stored_runs = an.run_frames(list(trials["record"]))
    pd.testing.assert_frame_equal(stored_runs.reset_index(drop=True), result.runs.reset_index(drop=True))
    assert an.describe_autoscaling(tasks, samples, stored_runs) == result.describe()


def test_study_runs_carry_a_fingerprint_a_status_and_load_flags(measured):
    # Both runs start and finish through the experiment's lifecycle, as a sweep's run does.
    store, lab = measured[2], measured[5]
    with ResultStore(store) as s:
        runs = s.runs_frame().set_index("experiment")
        trials = pd.concat([s.trials_frame("t/bursty"), s.trials_frame("t/cold-start")])
        parts = s.fingerprint_parts(trials["fingerprint"])
    assert trials["fingerprint"].notna().all() and set(trials["fingerprint"]) <= set(parts)
    for name in ("t/bursty", "t/cold-start"):
        assert runs.loc[name, "status"] == "finished" and runs.loc[name, "ended_at"] > runs.loc[name, "started_at"]
        config = json.loads(runs.loc[name, "config_json"])
        assert config["fingerprint"] in parts
    assert {p["shape"]["threads_per_worker"] for p in parts.values()} == {lab.threads // lab.workers}
    # Outside load over each run on this machine, flagged as a sweep's trials are (None: not measured).
    assert {"outside_cpu_percent", "steal_percent", "under_load"} <= set(trials.columns)
    assert trials["under_load"].map(lambda v: v in (True, False, None) or v != v).all()


def test_a_failed_and_an_interrupted_study_run_say_so_in_the_store(tmp_path):
    store = tmp_path / "ends.db"
    with labkit.Lab(workers=1, threads_per_worker=1, dashboard=False) as lab:
        with pytest.raises(labkit.ClusterError, match="no new worker within"):
            autoscale.cold_start(lab, 3, store=store, experiment="fail", timeout_s=1e-4)
        assert lab.workers == 1  # scaled back all the same
        # Real SIGINTs to this process, as Ctrl-C sends (again while Dask swallows one), while many tries are still to come.
        with interrupting(after_s=3.0), pytest.raises(KeyboardInterrupt):
            autoscale.cold_start(lab, 10_000, store=store, experiment="stop")
    with ResultStore(store) as s:
        runs = s.runs_frame().set_index("experiment")
    assert runs.loc["fail/cold-start", "status"] == "failed"
    assert runs.loc["stop/cold-start", "status"] == "interrupted"
    assert runs["ended_at"].notna().all() and runs["config_json"].map(lambda c: "fingerprint" in json.loads(c)).all()


def test_cold_start_times_are_positive_with_an_interval(measured):
    cold, back = measured[1], measured[4]
    frame = cold.frame
    assert len(frame) == 5 and (frame["from_workers"] == 1).all() and back == 1
    assert (frame["registered_s"] > 0).all() and (frame["first_task_s"] >= frame["registered_s"]).all()
    assert frame["worker"].nunique() == 5  # a new worker each time
    estimate = median_estimate(frame["first_task_s"].to_numpy())
    assert not estimate.note and estimate.lo <= estimate.value <= estimate.hi and estimate.hi > estimate.lo
    assert "interval not available" not in cold.describe().split("; until")[0]


def test_one_bursty_load_on_the_cluster_as_it_is(measured):
    lab = measured[5]
    run = autoscale.bursty_load(lab, waves=2, tasks_per_wave=3, task_s=0.1, burst_s=0.0, gap_s=0.5, label="as is")
    assert len(run.tasks) == 6 and set(run.runs["config"]) == {"as is"}
    assert (run.samples["workers"] == lab.workers).all()
    assert run.runs["worker_seconds"].iloc[0] == pytest.approx(lab.workers * run.runs["duration_s"].iloc[0])
    assert "as is: latency" in run.describe()


# -- notebook 10 -------------------------------------------------------------------------

SMALL = {
    "minimum": 1,
    "maximum": 2,
    "waves": 2,
    "tasks_per_wave": 4,
    "task_s": 0.2,
    "burst_s": 0.2,
    "gap_s": 1.5,
    "repeats": 1,
    "cold_starts": 2,
    "experiment": "nb10",
}


def test_notebook_declares_the_parameters_the_tests_set():
    # The rules every notebook keeps (no logic, explained parameters) are in tests/test_notebooks.py.
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(SMALL) | {"store", "adapt_interval", "sample_s"} <= set(declared)


def test_notebook_prints_its_answer_from_the_store(tmp_path, notebooks_store):
    store = notebooks_store.path  # shared with the other notebooks: read by experiment
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(store) as s:
        runs = an.run_frames(list(s.trials_frame("nb10/bursty")["record"]))
        cold = pd.DataFrame(list(s.trials_frame("nb10/cold-start")["record"]))
    assert an.describe_autoscaling(*runs) in printed
    assert an.describe_cold_start(cold) in printed
    # Two waves and one run each: no interval, so no direction may be claimed.
    assert "): higher" not in printed and "): lower" not in printed
    if runs[2]["under_load"].eq(True).sum() < 2:  # two clean configurations: a comparison, as an estimate
        assert "an estimate: interval not available: 2 independent waves" in printed
    assert result.html.read_text().count("<img") >= 3
