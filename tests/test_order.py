"""The order of timed runs: seeded rounds over the grid, inputs kept between visits, a time budget."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

import labkit
from labkit import Work
from labkit.analysis.intervals import MIN_REPEATS
from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.experiment.inputs import RESCALED
from labkit.store import ResultStore


class Held(labkit.workloads.BaseWorkload):
    """Inputs of ``mb`` MiB held on a worker; each run sums them."""

    name = "test-held"
    defaults = {"n": 1, "mb": 0.0}
    setups: Counter[int] = Counter()

    def setup(self, lab, n, mb):
        from distributed import wait

        Held.setups[n] += 1
        inputs = lab.client.submit(np.ones, int(mb * 2**20) // 8, pure=False)
        wait(inputs)
        return inputs

    def run(self, state):
        return Work(float(state.client.submit(np.sum, state).result()), "items")

    def teardown(self, state):
        state.release()


labkit.workloads.register(Held(), replace=True)


@labkit.workload("test-noisy", replace=True)
def noisy(lab, base_s: float = 0.01):
    """Sleeps between 1× and 2× ``base_s``: no median interval narrows to 0.1% in 30 runs."""
    lab.client.submit(time.sleep, base_s * (1 + np.random.default_rng().random()), pure=False).result()
    return Work(1, "items")


def visited(store_path, experiment: str) -> list[tuple[int, int]]:
    """(n, repeat) of each trial, in the order they started."""
    with ResultStore(store_path) as store:
        frame = store.trials_frame(experiment).sort_values("started_at")
    return list(zip(frame["n"], frame["repeat"]))


def sweep(store_path, experiment: str, **kwargs) -> labkit.Sweep:
    kwargs = {"grid": {"n": [1, 2, 3]}, "repeats": 3, "warmup": 0, **kwargs}
    return labkit.Sweep("test-held", experiment=experiment, store=store_path, **kwargs)


def test_rounds_visit_every_point_once_per_round_in_a_seeded_order(lab, tmp_path):
    Held.setups.clear()
    results = sweep(tmp_path / "a.db", "rounds").run(lab, live=False)
    order = visited(tmp_path / "a.db", "rounds")
    rounds = [order[i : i + 3] for i in range(0, 9, 3)]
    for k, block in enumerate(rounds):
        assert sorted(n for n, _ in block) == [1, 2, 3]  # each round visits every point once
        assert {r for _, r in block} == {k}  # ... for its k-th repeat
    assert [n for n, _ in order] != [1, 1, 1, 2, 2, 2, 3, 3, 3]
    frame = results.frame.sort_values("started_at")
    assert list(frame["round"]) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    # Tiny inputs, no rescale: each point is set up once, then its inputs are kept.
    assert Held.setups == {1: 1, 2: 1, 3: 1}
    first = frame.groupby("n")["started_at"].transform("min") == frame["started_at"]
    assert (frame.loc[first, "inputs"] == "set up").all() and (frame.loc[~first, "inputs"] == "kept").all()
    assert (frame["inputs_reason"] == "first visit").all()

    again = sweep(tmp_path / "b.db", "rounds").run(lab, live=False)
    assert visited(tmp_path / "b.db", "rounds") == order  # same seed, same order
    sweep(tmp_path / "c.db", "rounds", seed=1).run(lab, live=False)
    assert visited(tmp_path / "c.db", "rounds") != order
    assert (again.frame["status"] == "ok").all()


def test_sequential_keeps_each_points_repeats_together(lab, store_path):
    Held.setups.clear()
    sweep(store_path, "seq", order="sequential").run(lab, live=False)
    assert visited(store_path, "seq") == [(n, r) for n in (1, 2, 3) for r in range(3)]
    assert Held.setups == {1: 1, 2: 1, 3: 1}


def test_inputs_over_their_memory_share_are_set_up_again(lab, store_path):
    """Three points of 16 MiB each, a share that holds one other point's inputs but not two."""
    mb = 16.0
    limit = lab.info()["memory_limit"]
    share = 1.5 * mb * 2**20 / limit
    Held.setups.clear()
    results = sweep(store_path, "share", params={"mb": mb}, keep_inputs=share).run(lab, live=False)
    frame = results.frame.sort_values("started_at")
    assert (frame["status"] == "ok").all()
    fresh = frame[frame["inputs"] == "set up"]
    assert fresh["inputs_bytes"].to_numpy() == pytest.approx(mb * 2**20, rel=0.01)
    evicted = fresh[fresh["inputs_reason"].str.contains("of the cluster's memory limit", regex=False)]
    later = fresh[fresh["inputs_reason"] != "first visit"]
    assert len(later) >= 1 and len(evicted) == len(later)
    assert sum(Held.setups.values()) == len(fresh) > 3
    # A point visited right after itself keeps its inputs, whatever the share.
    same = frame["n"].eq(frame["n"].shift())
    assert (frame.loc[same, "inputs"] == "kept").all()


def test_keep_inputs_zero_sets_up_at_every_visit_but_a_repeat_of_the_same_point(lab, store_path):
    results = sweep(store_path, "zero", params={"mb": 1.0}, keep_inputs=0).run(lab, live=False)
    frame = results.frame.sort_values("started_at")
    moved = ~frame["n"].eq(frame["n"].shift())
    assert (frame.loc[moved, "inputs"] == "set up").all()
    assert (frame.loc[~moved, "inputs"] == "kept").all()
    again = frame[moved & frame["inputs_reason"].ne("first visit")]
    assert len(again) >= 3 and (again["inputs_reason"] == "keep_inputs=0").all()


def test_a_rescale_sets_every_point_up_again(scaled_lab, store_path):
    results = labkit.Sweep("test-held", grid={"workers": [1, 2], "n": [1]}, repeats=3, warmup=1, store=store_path).run(
        scaled_lab, live=False
    )
    frame = results.frame.sort_values("started_at")
    assert (frame["status"] == "ok").all() and sorted(frame["workers"]) == [1, 1, 1, 2, 2, 2]
    moved = ~frame["workers"].eq(frame["workers"].shift())
    assert moved.sum() >= 2  # the shuffled rounds went back and forth
    assert (frame.loc[moved, "inputs"] == "set up").all() and (frame.loc[~moved, "inputs"] == "kept").all()
    assert (frame.loc[moved, "inputs_reason"].iloc[2:] == RESCALED).all()
    assert (frame["warmup_runs"] == 1).all()


def test_a_budget_stops_adaptive_repeats_at_their_minimum_and_names_the_points(lab, store_path):
    results = labkit.Sweep(
        "test-noisy",
        grid={"base_s": [0.01, 0.02, 0.03]},
        repeats="auto",
        ci_target=0.001,
        warmup=0,
        budget_s=0.05,  # less than the 15 runs of ≥ 10 ms the minimums take
        store=store_path,
    ).run(lab, live=False)
    frame = results.frame
    assert (frame.groupby("point").size() == MIN_REPEATS).all()  # the minimum, far below the cap of 30
    short = results.short_of_target
    assert sorted(short["base_s"]) == [0.01, 0.02, 0.03] and (short["runs"] == MIN_REPEATS).all()
    assert (short["ci_rel"] > 0.001).all()
    assert short["target"].eq(0.001).all()
    note = results.budget_note
    assert note.startswith("The time budget of 0.05 s ran out") and "3 of 3 points stopped short of ±0.1%" in note
    for _, row in short.iterrows():
        assert f"base_s={row['base_s']} (±{row['ci_rel']:.1%} after {MIN_REPEATS} runs)" in note
    assert note in results.notes()


def test_without_a_budget_the_same_sweep_runs_on(lab, store_path):
    results = labkit.Sweep(
        "test-noisy",
        grid={"base_s": [0.002]},
        repeats="auto",
        ci_target=0.001,
        max_repeats=12,
        warmup=0,
        store=store_path,
    ).run(lab, live=False)
    assert len(results.frame) == 12 and results.short_of_target.empty and results.budget_note == ""


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"budget_s": 0}, ParameterError, "budget_s=0"),
        ({"budget_s": "1h"}, ParameterError, "budget_s='1h'"),
        ({"order": "random"}, ParameterError, "order='random'"),
        ({"seed": 1.5}, ParameterTypeError, "seed=1.5"),
        ({"reuse": "all"}, ParameterError, "reuse='all'"),
        ({"keep_inputs": 1.0}, ParameterError, "keep_inputs=1.0"),
    ],
)
def test_bad_order_and_budget_arguments_name_the_parameter(kwargs, error, words):
    with pytest.raises(error) as err:
        labkit.Sweep("array-sum", grid={"workers": [1]}, **kwargs)
    assert words in str(err.value)
