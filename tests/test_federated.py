"""FedAvg on a real 2-worker cluster: one client equals central training, the model learns, the
label split concentrates labels, bytes follow their formula; the conclusions on trials whose
answer is known; notebook 09 runs headless with small parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

import labkit
from labkit import ResultStore, workloads
from labkit.common.errors import ParameterError
from labkit.studies.federated import analysis as fed_analysis
from labkit.studies.federated import figures as fed_plots
from labkit.studies.federated import workloads as fed

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_federated_learning.ipynb"


@pytest.fixture(scope="module")
def fed_lab():
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def run_once(lab, **params):
    """Set up, run once and tear down: the Work, the metrics and the state."""
    wl = workloads.get("fedavg")
    state = wl.setup(lab, **workloads.resolve_params(wl, params))
    try:
        return wl.run(state), wl.metrics(state), state
    finally:
        wl.teardown(state)


def central_softmax_sgd(x, y, weights, seeds, epochs, batch, lr):
    """Textbook minibatch SGD of a softmax regression on the whole training set, written
    independently of the workload: for each seed, ``epochs`` epochs in the order of
    ``default_rng(seed)``'s permutations."""
    w, b = weights[0].copy(), weights[1].copy()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for s in range(0, len(y), batch):
                i = order[s : s + batch]
                z = x[i] @ w + b
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(len(i)), y[i]] -= 1.0
                w -= lr * (x[i].T @ p) / len(i)
                b -= lr * p.sum(axis=0) / len(i)
    return [w, b]


def test_one_client_equals_central_training(fed_lab):
    # Tolerance: atol 1e-12 in float64 (the two codes sum the same products in other orders).
    seed, epochs, rounds = 7, 3, 2
    work, m, state = run_once(
        fed_lab, clients=1, local_epochs=epochs, max_rounds=rounds, target_accuracy=1.0, train_seed=seed
    )
    x, y, x_test, y_test = fed.load_data(0, 0.2)
    assert m["rounds"] == rounds and not m["reached_target"] and m["rounds_to_target"] is None
    assert m["time_to_target_s"] is None and m["bytes_to_target"] is None
    assert work.amount == rounds * epochs * len(y) and work.unit == "samples"
    start = fed.init_weights(64, 0, 10, [seed])
    central = central_softmax_sgd(x, y, start, [[seed, r, 0] for r in range(1, rounds + 1)], epochs, 10, 0.1)
    for got, want in zip(state.weights, central):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert m["final_accuracy"] == pytest.approx(fed.accuracy(central, x_test, y_test), abs=0)
    assert [p["step"] for p in m["curve"]] == [0, 1, 2]


def test_one_client_with_a_hidden_layer_equals_central_training(fed_lab):
    _, m, state = run_once(
        fed_lab, clients=1, hidden=16, local_epochs=2, max_rounds=1, target_accuracy=1.0, train_seed=3
    )
    x, y, _, _ = fed.load_data(0, 0.2)
    central = fed.sgd(fed.init_weights(64, 16, 10, [3]), x, y, 2, 10, 0.1, [3, 1, 0])
    for got, want in zip(state.weights, central):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_backpropagation_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    weights = fed.init_weights(5, 4, 3, [1])

    def loss(ws):
        z = fed._forward(ws, x)[-1]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(6), y]))

    lr = 1e-3
    stepped = [w.copy() for w in weights]
    fed.sgd_step(stepped, x, y, lr)
    for j, w in enumerate(weights):
        grad = (w - stepped[j]) / lr
        numeric = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            up, down = [v.copy() for v in weights], [v.copy() for v in weights]
            up[j][idx] += 1e-6
            down[j][idx] -= 1e-6
            numeric[idx] = (loss(up) - loss(down)) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_fedavg_learns_on_iid_shards(fed_lab):
    _, m, _ = run_once(fed_lab, clients=10, split="iid", max_rounds=8, target_accuracy=1.0, train_seed=1)
    accuracies = [p["accuracy"] for p in m["curve"]]
    assert accuracies[0] < 0.3  # the random start: about chance (0.1)
    assert m["final_accuracy"] > 0.85 and m["final_accuracy"] == accuracies[-1]
    assert [p["step"] for p in m["curve"]] == list(range(9))
    assert all(b >= a for a, b in zip([p["t_s"] for p in m["curve"]], [p["t_s"] for p in m["curve"]][1:]))
    json.dumps(m)  # stored as JSON with the trial


def test_reaching_the_target_stops_the_run(fed_lab):
    _, m, _ = run_once(fed_lab, clients=4, target_accuracy=0.8, max_rounds=30, train_seed=2)
    assert m["reached_target"] and m["final_accuracy"] >= 0.8
    assert m["rounds_to_target"] == m["rounds"] == len(m["curve"]) - 1
    assert all(p["accuracy"] < 0.8 for p in m["curve"][:-1])
    assert m["time_to_target_s"] == m["curve"][-1]["t_s"] > 0
    assert m["bytes_to_target"] == m["bytes_communicated"] and m["run_seed"] == 2


@pytest.mark.parametrize("split, most, top2", [("label", 4, (0.9, 1.0)), ("iid", 10, (0.0, 0.4))])
def test_label_split_concentrates_labels_in_the_shards_on_the_workers(fed_lab, split, most, top2):
    wl = workloads.get("fedavg")
    state = wl.setup(fed_lab, **workloads.resolve_params(wl, {"clients": 10, "split": split, "labels_per_client": 2}))
    try:
        shards = fed_lab.client.gather(state.shards)
        where = fed_lab.client.who_has(state.shards)
    finally:
        wl.teardown(state)
    counts = np.array([np.bincount(sy, minlength=10) for _, sy in shards])
    _, y, _, _ = fed.load_data(0, 0.2)
    assert counts.sum() == len(y) and (counts.sum(axis=0) == np.bincount(y)).all()  # every sample, once
    classes = (counts > 0).sum(axis=1)
    top = np.sort(counts, axis=1)[:, ::-1][:, :2].sum(axis=1) / counts.sum(axis=1)
    if split == "label":
        # Pieces of ~72 samples, each class ~144: a piece spans at most 2 classes, a client at most 4.
        assert classes.max() <= most
    else:
        assert classes.min() >= 8
    assert top2[0] <= top.mean() <= top2[1], top
    assert state.label_share == pytest.approx(top.mean())
    holders = [where[f.key] for f in state.shards]
    assert all(list(h) == [a] for h, a in zip(holders, state.holders))
    assert len(set(state.holders)) == 2  # the shards are spread over both workers


def test_bytes_and_samples_follow_their_formulas(fed_lab):
    from distributed import get_task_stream

    seed, rounds = 11, 3
    with get_task_stream(client=fed_lab.client) as ts:
        work, m, state = run_once(
            fed_lab,
            clients=6,
            participation=0.5,
            hidden=8,
            max_rounds=rounds,
            target_accuracy=1.0,
            train_seed=seed,
        )
    model_bytes = (64 * 8 + 8 + 8 * 10 + 10) * 8  # float64 weights and biases
    assert m["clients_per_round"] == 3
    assert m["bytes_per_round"] == 2 * 3 * model_bytes
    assert m["bytes_communicated"] == rounds * 2 * 3 * model_bytes
    chosen = [np.random.default_rng([seed, r]).choice(6, 3, replace=False) for r in range(1, rounds + 1)]
    assert work.amount == sum(state.sizes[k] for c in chosen for k in c)
    ran = [t for t in ts.data if t["key"].startswith("local_update")]
    assert len(ran) == rounds * 3
    by_worker = pd.Series([t["worker"] for t in ran]).value_counts()
    want = pd.Series([state.holders[k] for c in chosen for k in c]).value_counts()
    assert by_worker.sort_index().equals(want.sort_index())  # each client's round ran where its shard is


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("split", "dirichlet", "'iid', 'label'"),
        ("clients", 0, ">= 1"),
        ("local_epochs", 0, ">= 1"),
        ("max_rounds", 0, ">= 1"),
        ("lr", 0.0, ">= 1e-12"),
    ],
)
def test_bad_parameters_are_refused_by_the_sweep(key, value, words):
    with pytest.raises(ParameterError) as err:
        labkit.Sweep("fedavg", grid={key: [value]})  # no lab: nothing has touched a cluster
    assert err.value.name == f"fedavg.{key}" and words in str(err.value)


@pytest.mark.parametrize(
    "params, name, words",
    [
        ({"participation": 1.5}, "fedavg.participation", "(0, 1]"),
        ({"target_accuracy": 1.2}, "fedavg.target_accuracy", "(0, 1]"),
        ({"labels_per_client": 11, "split": "label"}, "fedavg.labels_per_client", "1 to 10"),
        ({"clients": 800, "split": "label"}, "fedavg.clients", "at most 718"),
        ({"test_fraction": 0.9}, "fedavg.test_fraction", "[0.05, 0.5]"),
    ],
)
def test_bad_combinations_are_refused_before_any_cluster_work(params, name, words):
    wl = workloads.get("fedavg")
    with pytest.raises(ParameterError) as err:
        wl.setup(None, **workloads.resolve_params(wl, params))  # no lab at all: refused first
    assert err.value.name == name and words in str(err.value)


# -- the conclusions on trials whose answer is known ------------------------------------


def _frame(points: list[tuple[dict, list[int | None]]], seconds_per_round: float = 0.3) -> pd.DataFrame:
    """fedavg trials as the store gives them, from (params, rounds to target of each run)."""
    wl = workloads.get("fedavg")
    rows = []
    for params, runs in points:
        p = {**wl.defaults, **params}
        point = json.dumps({"workload": "fedavg", "workers": 2, **p}, sort_keys=True)
        for i, r in enumerate(runs):
            reached = r is not None
            per_round = 2 * p["clients"] * 650 * 8
            rounds = r if reached else p["max_rounds"]
            rows.append(
                {
                    "point": point,
                    "workers": 2,
                    "status": "ok",
                    "throughput": 1.0,
                    **p,
                    "reached_target": reached,
                    "rounds": rounds,
                    "rounds_to_target": r,
                    "time_to_target_s": r * seconds_per_round * (1 + 0.01 * i) if reached else None,
                    "bytes_per_round": per_round,
                    "bytes_to_target": per_round * r if reached else None,
                    "bytes_communicated": per_round * rounds,
                    "final_accuracy": 0.94 if reached else 0.9,
                }
            )
    return pd.DataFrame(rows)


IID = [6, 7, 7, 8, 6, 7]


def test_noniid_slowdown_is_claimed_only_with_its_interval():
    slower = _frame([({"split": "iid"}, IID), ({"split": "label"}, [12, 13, 14, 12, 15, 13])])
    text = fed_analysis.describe_noniid(slower)
    assert "more rounds" in text and "slower" in text and "the runs cannot tell" not in text
    table = fed_analysis.compare_table(slower, "split")
    assert table.loc[0, "rounds_ratio"] == pytest.approx(13 / 7)
    assert 1 < table.loc[0, "rounds_ratio_lo"] < 13 / 7 < table.loc[0, "rounds_ratio_hi"]
    assert text.splitlines()[-2].startswith(
        "Answer: non-IID data, in 1 setting compared: rounds to target: more rounds in 1;"
    )
    same = fed_analysis.describe_noniid(_frame([({"split": "iid"}, IID), ({"split": "label"}, [7, 6, 8, 7, 6, 7])]))
    assert "the runs cannot tell" in same and "more rounds" not in same
    few = fed_analysis.describe_noniid(_frame([({"split": "iid"}, IID[:3]), ({"split": "label"}, [12, 13, 14])]))
    assert "an estimate: interval not available: 3 runs per point" in few and "): more rounds" not in few


def test_a_target_not_reached_is_said_so_never_a_number():
    frame = _frame([({"split": "iid"}, IID), ({"split": "label"}, [None] * 5)])
    text = fed_analysis.describe_noniid(frame)
    assert "target not reached in 50 rounds in any of 5 runs" in text and "no ratio" in text
    assert "not measured (target not reached in every run) in 1" in text
    table = fed_analysis.federated_table(frame).set_index("split")
    assert np.isnan(table.loc["label", "rounds"]) and table.loc["label", "reached"] == 0
    assert table.loc["iid", "rounds"] == 7 and table.loc["iid", "bytes"] == 7 * 2 * 10 * 650 * 8
    lines = fed_analysis.describe_federated(frame).splitlines()
    assert lines[1].startswith("split=label on 2 worker(s): target not reached in 50 rounds in any of 5 runs")
    part = _frame([({"split": "iid"}, IID), ({"split": "label"}, [12, None, 14, 12, 15])])
    assert "reached in 4 of 5 runs; not reached in 50 rounds in the other 1" in fed_analysis.describe_noniid(part)
    fig = fed_plots.to_target_figure(
        _frame([({"clients": c, "split": "label"}, [None] * 5) for c in (5, 10)]), "clients"
    )
    rounds_panel = fig.axes[0]
    assert [t.get_text() for t in rounds_panel.texts] == ["not reached", "not reached"]
    assert not fig.axes[1].lines  # no time to target drawn where none was measured


def test_one_split_or_one_value_is_said_to_leave_nothing_to_compare():
    iid_only = _frame([({"split": "iid"}, IID)])
    assert "no comparison of splits.\nTrials: " in fed_analysis.describe_noniid(iid_only)
    assert "no comparison of clients.\nTrials: " in fed_analysis.describe_factor(iid_only, "clients")
    # Both splits measured, never at equal other parameters (as when outside load left out
    # the IID trials of one setting): nothing to compare, said so.
    apart = _frame([({"split": "iid", "clients": 3}, IID), ({"split": "label", "clients": 6}, IID)])
    assert "no comparison of splits.\nTrials: " in fed_analysis.describe_noniid(apart)


def test_clients_and_local_epochs_are_compared_at_equal_other_parameters():
    frame = _frame(
        [
            ({"clients": 5}, [4, 5, 4, 5, 4]),
            ({"clients": 10}, IID),
            ({"clients": 20}, [12, 14, 13, 12, 15]),
            ({"clients": 10, "local_epochs": 3}, [3, 3, 2, 3, 3]),
        ]
    )
    clients = fed_analysis.compare_table(frame, "clients")
    assert list(clients["value"]) == [10, 20] and (clients["baseline"] == 5).all()
    assert (clients["context"] == "local_epochs=1").all()  # the local_epochs=3 point has no clients=5 beside it
    epochs = fed_analysis.compare_table(frame, "local_epochs")
    assert len(epochs) == 1 and epochs.loc[0, "context"] == "clients=10" and epochs.loc[0, "value"] == 3
    text = fed_analysis.describe_factor(frame, "clients")
    assert "clients=20 vs 5:" in text and "more rounds" in text and "more bytes" in text
    with pytest.raises(ParameterError, match="factor"):
        fed_analysis.compare_table(frame, "momentum")
    with pytest.raises(ParameterError, match="baseline"):
        fed_analysis.compare_table(frame, "clients", baseline=7)


# -- notebook 09 -------------------------------------------------------------------------

SMALL = {
    "workers": [2],
    "clients": 3,
    "client_counts": [3, 6],
    "epoch_counts": [1, 2],
    "target_accuracy": 0.9,
    "max_rounds": 15,
    "repeats": 1,
    "warmup": 0,
    "budget_s": 10.0,
    "experiment": "nb09",
}


def test_notebook_declares_the_parameters_the_tests_set():
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(SMALL) | {"store"} <= set(declared)


def test_notebook_prints_its_answers_from_the_store(tmp_path, notebooks_store):
    store = notebooks_store.path  # shared with the other notebooks: read by experiment
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(store) as s:
        frame = s.trials_frame("nb09/fedavg")
    assert len(frame) == 2 * 3 and (frame["status"] == "ok").all()  # 2 splits × 3 points × 1 run
    assert set(frame["split"]) == {"iid", "label"} and frame["curve"].map(len).min() >= 2
    for answer in (
        fed_analysis.describe_federated(frame),
        fed_analysis.describe_noniid(frame),
        fed_analysis.describe_factor(frame, "clients"),
        fed_analysis.describe_factor(frame, "local_epochs"),
    ):
        assert answer in printed
    # One run a point gives no interval: no direction may be claimed.
    assert "): more rounds" not in printed and "): fewer rounds" not in printed
    if all_loaded(frame):
        assert NOTHING_LEFT in printed
    elif frame["under_load"].eq(True).any():  # some trials left out for outside load: the answer says so
        assert "trials that ran under outside load" in printed
    else:
        assert "an estimate: interval not available: one run per point" in printed
    assert result.html.read_text().count("<img") >= 4


def test_trials_under_outside_load_decide_nothing_in_the_federated_answers() -> None:
    # Quiet: label-skewed data needs as many rounds as IID. Twelve loaded runs needed twice as
    # many: with them the answer would say "more rounds".
    quiet = _frame([({"split": "iid"}, IID), ({"split": "label"}, [7, 6, 8, 7, 6, 7])]).assign(under_load=False)
    loaded = _frame([({"split": "label"}, [14, 15, 13, 14, 16, 14] * 2)]).assign(under_load=True)
    text = fed_analysis.describe_noniid(pd.concat([quiet, loaded], ignore_index=True))
    assert "the runs cannot tell" in text and "more rounds in 1" not in text
    assert "left out 12 of 24 trials that ran under outside load" in text
    every = fed_analysis.describe_noniid(loaded.assign(under_load=True))
    assert every.startswith("No trial is left to claim from") and "more rounds" not in every
