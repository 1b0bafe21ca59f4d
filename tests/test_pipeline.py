"""Model parallelism (pipeline-mlp): the pipelined network equals the unsplit one, the bubble, its analysis and figure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labkit
from labkit import workloads
from labkit.common.errors import ParameterError
from labkit.studies.pipeline import workloads as pl
from labkit.studies.pipeline.analysis import describe_pipeline, describe_pipeline_vs_data, pipeline_table
from labkit.studies.pipeline.figures import pipeline_figure
from labkit.studies.training import workloads as training

WL = workloads.get("pipeline-mlp")


@pytest.fixture(scope="module")
def pipe_lab():
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def started(lab, **params):
    return WL.setup(lab, **workloads.resolve_params(WL, params))


def max_gap(a: list, b: list) -> float:
    return max(float(np.abs(x - y).max()) for pair_a, pair_b in zip(a, b) for x, y in zip(pair_a, pair_b))


# -- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, name, words",
    [
        ({"stages": 3}, "pipeline-mlp.stages", "at most the network's 2 layers"),
        ({"depth": 2, "stages": 4}, "pipeline-mlp.stages", "at most the network's 3 layers"),
        ({"batch": 8, "microbatches": 9}, "pipeline-mlp.microbatches", "at most the batch of 8 samples"),
    ],
)
def test_parameters_that_do_not_fit_together_are_refused_before_cluster_work(params, name, words):
    with pytest.raises(ParameterError) as err:
        started(None, **params)  # no lab at all: the check comes before anything touches a cluster
    assert err.value.name == name and words in str(err.value)


def test_the_sweep_refuses_points_that_do_not_fit_together_when_it_is_made():
    with pytest.raises(ParameterError) as err:
        labkit.Sweep("pipeline-mlp", grid={"stages": [1, 2, 3]})  # depth 1: two layers
    assert err.value.name == "pipeline-mlp.stages" and "at most the network's 2 layers" in str(err.value)
    with pytest.raises(ParameterError) as err:
        labkit.Sweep("pipeline-mlp", grid={"microbatches": [4, 16]}, params={"batch": 8})
    assert err.value.name == "pipeline-mlp.microbatches"
    labkit.Sweep("pipeline-mlp", grid={"stages": [1, 2], "microbatches": [1, 8]})  # all fit


@pytest.mark.parametrize(
    "key, value", [("stages", 0), ("microbatches", 0), ("mode", "serve"), ("batch", 0), ("hidden", 0), ("depth", 0)]
)
def test_bad_single_parameters_are_refused_by_the_sweep(key, value):
    with pytest.raises(ParameterError) as err:
        labkit.Sweep("pipeline-mlp", grid={key: [value]})
    assert err.value.name == f"pipeline-mlp.{key}"


def test_layers_split_into_consecutive_groups_and_gpipe_estimate():
    assert pl.split_layers(3, 3) == [[0], [1], [2]]
    assert pl.split_layers(5, 2) == [[0, 1, 2], [3, 4]]
    assert pl.gpipe_bubble(1, 7) == 0.0
    assert pl.gpipe_bubble(2, 1) == pytest.approx(0.5)
    assert pl.gpipe_bubble(4, 8) == pytest.approx(3 / 11)
    assert [pl.gpipe_bubble(3, m) for m in (1, 2, 4, 8)] == sorted([pl.gpipe_bubble(3, m) for m in (1, 2, 4, 8)])[::-1]


def test_the_reference_gradient_matches_finite_differences():
    """The unsplit step the pipeline is checked against is itself right: its gradient (old - new
    weights at lr=1) matches central differences of its loss."""
    layers = pl.init_layers(hidden=6, depth=2, seed=3)
    x, y = pl.digits()[0][:20], pl.digits()[1][:20]
    new, _ = pl.reference_step(layers, x, y, 1.0)
    rng = np.random.default_rng(0)
    h = 1e-6
    for i in range(len(layers)):
        w = layers[i][0]
        for _ in range(4):
            r, c = rng.integers(0, w.shape[0]), rng.integers(0, w.shape[1])
            plus = [(a.copy(), b.copy()) for a, b in layers]
            minus = [(a.copy(), b.copy()) for a, b in layers]
            plus[i][0][r, c] += h
            minus[i][0][r, c] -= h
            numeric = (pl.reference_step(plus, x, y, 0.0)[1] - pl.reference_step(minus, x, y, 0.0)[1]) / (2 * h)
            assert layers[i][0][r, c] - new[i][0][r, c] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


# -- the pipelined network equals the unsplit one --------------------------------------


@pytest.mark.parametrize("stages, microbatches, depth", [(1, 1, 1), (2, 4, 1), (3, 5, 2)])
def test_pipelined_forward_equals_the_unsplit_network(pipe_lab, stages, microbatches, depth):
    state = started(pipe_lab, stages=stages, microbatches=microbatches, batch=37, depth=depth)
    try:
        assert len(set(state.stage_worker)) == min(stages, 2)  # round-robin over the two workers
        x = pl.digits()[0][100:137]
        expected = pl.reference_logits(pl.init_layers(128, depth, 0), x)
        got = pl.pipelined_logits(state, x)
        assert got.shape == (37, 10)
        assert np.abs(got - expected).max() <= 1e-10
        # the same network as the data-parallel workloads: their forward, on their weights
        flat = [w.astype(np.float64) for w in training.init_weights(training.layer_sizes(128, depth), 0)]
        assert np.abs(got - training.numpy_forward(flat, x)[0][-1]).max() <= 1e-10
    finally:
        WL.teardown(state)


def test_one_pipelined_training_step_equals_the_unsplit_step(pipe_lab):
    state = started(pipe_lab, stages=3, microbatches=7, batch=100, steps=1, lr=0.5, hidden=40, depth=2)
    try:
        work = WL.run(state)
        metrics = WL.metrics(state)
        idx = pl.batch_indices(0, 100, 0)
        x, y = pl.digits()[0][idx], pl.digits()[1][idx]
        initial = pl.init_layers(40, 2, 0)
        expected, loss = pl.reference_step(initial, x, y, 0.5)
        got = pl.stage_weights(state)
        assert max_gap(got, expected) <= 1e-10
        assert max_gap(got, initial) > 1e-3  # the step did move the weights
        assert metrics["loss"] == pytest.approx(loss, abs=1e-10)
        assert work.amount == 100 and work.unit == "samples"
        WL.run(state)  # a second run starts again from the seeded weights: the same step
        assert max_gap(pl.stage_weights(state), expected) <= 1e-10
    finally:
        WL.teardown(state)


# -- the bubble ------------------------------------------------------------------------


def test_the_measured_bubble_falls_as_micro_batches_grow(pipe_lab):
    """Two balanced stages (64-384-384 | 384-384-10) with enough computing per micro-batch to
    outweigh each call's overhead. With one micro-batch the stages can never overlap (each waits
    for the other), so the bubble is at least 1 - 1/2 by construction; with four they overlap,
    and it must fall well below that (GPipe's estimate: 0.5 -> 0.2)."""
    bubbles = {}
    for m in (1, 4):
        state = started(pipe_lab, hidden=384, depth=3, batch=2048, microbatches=m, steps=1)
        try:
            runs = []
            for _ in range(3):
                WL.run(state)
                metrics = WL.metrics(state)
                assert metrics["bubble_estimate"] == pytest.approx(pl.gpipe_bubble(2, m))
                assert metrics["stages"] == 2 and metrics["microbatches"] == m
                assert 0.0 <= metrics["bubble_fraction"] <= 1.0
                assert len(metrics["stage_busy_s"]) == 2 and min(metrics["stage_busy_s"]) > 0
                runs.append(metrics["bubble_fraction"])
            bubbles[m] = float(np.median(runs))
        finally:
            WL.teardown(state)
    assert bubbles[1] >= 0.5 - 0.02  # only the stages' updates may overlap
    assert bubbles[4] < bubbles[1] - 0.1, bubbles


# -- a sweep, the table, the sentences and the figure -----------------------------------


def test_a_sweep_over_stages_and_micro_batches_runs(pipe_lab, tmp_path: Path):
    sweep = labkit.Sweep(
        "pipeline-mlp",
        grid={"stages": [1, 2, 3], "microbatches": [1, 4]},
        params={"batch": 64, "steps": 1, "depth": 2},
        repeats=1,
        warmup=0,
        store=tmp_path / "p.db",
    )
    frame = sweep.run(pipe_lab, live=False).frame
    assert frame["status"].tolist() == ["ok"] * 6, frame.get("error")
    assert (frame["unit"] == "samples").all() and (frame["amount"] == 64).all()
    assert frame["bubble_fraction"].between(0, 1).all()
    for busy, stages in zip(frame["stage_busy_s"], frame["metric_stages"]):
        assert len(busy) == stages
    table = pipeline_table(frame)
    assert len(table) == 6 and (table["runs"] == 1).all()
    assert table["throughput_lo"].isna().all() and table["note"].str.contains("one run").all()
    assert table.loc[table["stages"] == 3, "workers_used"].eq(2).all()
    assert table.loc[table["stages"] == 1, "workers_used"].eq(1).all()
    text = describe_pipeline(frame)
    assert " fell" not in text and " rose" not in text  # one run a point (or none admitted): no direction claimed
    if frame["under_load"].eq(True).all():  # a busy machine: no trial may carry a claim, and the answer says so
        assert text.startswith("No trial is left to claim from: left out 6 of 6 trials that ran under outside load")
    else:
        assert "GPipe's estimate" in text
        admitted = frame[frame["under_load"].ne(True)]
        if admitted.groupby("stages")["microbatches"].nunique().gt(1).any():  # a ratio of micro-batch counts
            assert "(an estimate: interval not available: one run per point" in text
            assert "): no direction claimed" in text
    fig = pipeline_figure(frame)
    assert len(fig.axes) == 2


def fake_trials(workload: str, workers: int, throughputs: list[float], **params) -> pd.DataFrame:
    """Trials rows as the store gives them (for the analysis alone; the runs above are real)."""
    point = json.dumps({"workload": workload, "workers": workers, **params}, sort_keys=True)
    rows = {"point": point, "status": "ok", "workers": workers, "unit": "samples"}
    frame = pd.DataFrame([{**rows, "throughput": t} for t in throughputs])
    if workload == "pipeline-mlp":
        s, m = params["stages"], params["microbatches"]
        frame["bubble_fraction"] = [0.9 * pl.gpipe_bubble(s, m) + 0.1 + 0.01 * i for i in range(len(throughputs))]
        frame["stage_worker"] = [[k % workers for k in range(s)]] * len(throughputs)
    return frame


PIPE = {"hidden": 128, "depth": 1, "batch": 64, "steps": 4, "mode": "train", "lr": 0.1, "seed": 0}
NET = {"hidden": 128, "depth": 1, "batch": 64}


def test_pipeline_against_data_parallelism_claims_a_direction_only_when_the_interval_does():
    pipe = pd.concat(
        [
            fake_trials("pipeline-mlp", 2, [900, 950, 1000, 1050, 1100], stages=2, microbatches=4, **PIPE),
            fake_trials("pipeline-mlp", 2, [500, 520, 540, 560, 580], stages=2, microbatches=1, **PIPE),
        ]
    )
    faster = fake_trials("sgd-numpy", 2, [3000, 3100, 3200, 3300, 3400], **NET)
    text = describe_pipeline_vs_data(pipe, faster)
    assert "data parallelism is faster" in text and "ratio 0.312" in text  # 1000 / 3200
    assert "2 stage(s), 4 micro-batch(es)" in text  # the pipeline's fastest configuration
    level = fake_trials("sgd-numpy", 2, [700, 900, 1000, 1100, 1300], **NET)
    assert "the runs cannot tell which is faster" in describe_pipeline_vs_data(pipe, level)
    few = fake_trials("sgd-numpy", 2, [3000, 3100, 3200], **NET)
    text = describe_pipeline_vs_data(pipe, few)
    assert "3 runs per point" in text and "faster" not in text.replace("cannot tell which is faster", "")
    other_net = fake_trials("sgd-numpy", 2, [3000, 3100, 3200, 3300, 3400], **{**NET, "hidden": 64})
    assert "not measured on the same network" in describe_pipeline_vs_data(pipe, other_net)
    both = pd.concat([other_net.assign(throughput=other_net["throughput"] * 10), level])
    assert "the runs cannot tell which is faster" in describe_pipeline_vs_data(pipe, both)  # only hidden 128 compared
    elsewhere = fake_trials("sgd-numpy", 4, [3000, 3100, 3200, 3300, 3400], **NET)
    assert "not measured at equal workers" in describe_pipeline_vs_data(pipe, elsewhere)
    with pytest.raises(ParameterError):
        describe_pipeline_vs_data(pipe, fake_trials("sgd-numpy", 2, [1.0]).assign(unit="items"))


def test_more_micro_batches_are_said_to_lower_the_bubble_only_by_their_interval():
    pipe = pd.concat(
        [
            fake_trials("pipeline-mlp", 2, [900, 950, 1000, 1050, 1100], stages=2, microbatches=8, **PIPE),
            fake_trials("pipeline-mlp", 2, [500, 520, 540, 560, 580], stages=2, microbatches=1, **PIPE),
        ]
    )
    table = pipeline_table(pipe)
    assert table["microbatches"].tolist() == [1, 8]
    assert (table["bubble_lo"] < table["bubble"]).all() and (table["bubble"] < table["bubble_hi"]).all()
    assert table["bubble_estimate"].tolist() == pytest.approx([0.5, 1 / 9])
    text = describe_pipeline(pipe)
    assert re.search(r"measured bubble [\d.]+× \(95% interval [\d.]+–[\d.]+×\): fell", text)
    assert re.search(r"throughput [\d.]+× \(95% interval [\d.]+–[\d.]+×\): rose", text)
