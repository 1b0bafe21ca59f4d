"""Model optimisation on a real cluster: pruning, exact against approximate algorithms, transfer
learning, their conclusions on trials whose answer is known, and notebook 08 run headless."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labkit
from labkit import ResultStore, workloads
from labkit.common.errors import ParameterError
from labkit.studies.optimize import analysis as analysis
from labkit.studies.optimize import approx, pruning
from labkit.studies.training.workloads import torch_available

try:
    from .nbtext import printed_text
except ImportError:
    from nbtext import printed_text  # type: ignore[no-redef]

needs_torch = pytest.mark.skipif(not torch_available(), reason="needs PyTorch: pip install 'labkit[torch]'")
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_model_optimization.ipynb"
MLP = {"hidden": 64, "depth": 1, "epochs": 10, "batch": 64, "batches": 4}
SVD = {"size": 4000, "columns": 40, "rank": 5, "noise": 0.05, "chunk_rows": 1000}
TRANSFER = {"channels": 4, "source_epochs": 3, "target_samples": 100, "target_accuracy": 0.8, "max_epochs": 30}


@pytest.fixture(scope="module")
def opt_lab():
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


def run_once(lab, name, **params):
    """Set up, run once and tear down: the Work and the workload's metrics."""
    wl = workloads.get(name)
    state = wl.setup(lab, **workloads.resolve_params(wl, params))
    try:
        return wl.run(state), wl.metrics(state)
    finally:
        wl.teardown(state)


def test_the_workloads_are_registered():
    assert {"prune-infer", "approx-vs-exact", "transfer"} <= set(workloads.names())


@pytest.mark.parametrize(
    "name, key, value, words",
    [
        ("prune-infer", "sparsity", 0.97, "one of 0.0, 0.05"),
        ("prune-infer", "format", "coo", "'dense', 'sparse'"),
        ("prune-infer", "scope", "neuron", "'global', 'layer'"),
        ("prune-infer", "batches", 0, ">= 1"),
        ("approx-vs-exact", "algorithm", "svd-lanczos", "'svd-exact', 'svd-randomized', 'knn-exact', 'knn-approx'"),
        ("approx-vs-exact", "size", 1, ">= 2"),
        ("approx-vs-exact", "noise", -0.1, ">= 0.0"),
        ("transfer", "mode", "partial", "'head', 'full', 'scratch'"),
        ("transfer", "target_samples", 2, ">= 5"),
    ],
)
def test_bad_parameters_are_refused_before_any_cluster_work(name, key, value, words):
    with pytest.raises(ParameterError) as err:
        labkit.Sweep(name, grid={key: [value]})  # no lab: nothing has touched a cluster
    assert err.value.name == f"{name}.{key}" and words in str(err.value)


def test_parameters_that_do_not_fit_together_are_refused_before_the_data_is_made(opt_lab):
    wl = workloads.get("approx-vs-exact")
    with pytest.raises(ParameterError, match="rank"):
        wl.setup(opt_lab, **workloads.resolve_params(wl, {**SVD, "rank": 41}))
    with pytest.raises(ParameterError, match="chunk_rows"):
        wl.setup(opt_lab, **workloads.resolve_params(wl, {**SVD, "algorithm": "svd-exact", "chunk_rows": 20}))
    with pytest.raises(ParameterError, match="candidates"):
        wl.setup(opt_lab, **workloads.resolve_params(wl, {**SVD, "algorithm": "knn-approx", "candidates": 3}))


# -- pruning ---------------------------------------------------------------------------------


def _trained(lab):
    """The perceptron prune-infer trains for MLP (on a worker, cached on the client: trained once here)."""
    key = ("mlp", MLP["hidden"], MLP["depth"], MLP["epochs"], 0)
    return pruning.cached(key, lambda: lab.client.submit(pruning.train_mlp, *key[1:], pure=False).result())


@pytest.fixture(scope="module")
def mlp(opt_lab):
    return _trained(opt_lab)


@needs_torch
def test_pruning_at_zero_leaves_every_prediction_unchanged(opt_lab, mlp):
    pruned = pruning.prune_weights(mlp, 0.0, "global")
    assert all(np.array_equal(a, b) for a, b in zip(pruned, mlp))
    x = pruning.prune_split()[2]
    assert np.array_equal(pruning.logits(pruned, x), pruning.logits(mlp, x))  # bit for bit
    work, m = run_once(opt_lab, "prune-infer", sparsity=0.0, **MLP)
    assert work.amount == 4 * 64 and work.unit == "samples"
    assert m["predictions_changed"] == 0 and m["lost_right"] == m["gained_right"] == 0
    assert m["accuracy"] == m["accuracy_dense"] and m["accuracy_lost"] == 0.0
    assert m["sparsity_measured"] == 0.0 and m["nonzero_params"] == m["params_total"] == 64 * 64 + 64 + 64 * 10 + 10


@needs_torch
def test_the_trained_model_learns(opt_lab):
    _, m = run_once(opt_lab, "prune-infer", sparsity=0.5, format="sparse", **MLP)
    assert m["accuracy_dense"] > 0.85  # ten classes: chance is 0.1
    assert m["heldout_samples"] == 899
    # The workers' sparse inference over the held-out images, taken cyclically, agrees with the client's
    # dense evaluation: 256 images, of which the first 256 held-out ones.
    x, y = pruning.prune_split()[2:]
    pruned = pruning.prune_weights(_trained(opt_lab), 0.5, "global")
    expected = np.mean(pruning.logits(pruned, x[:256]).argmax(1) == y[:256])
    assert abs(m["accuracy_inferred"] - expected) <= 1 / 256


@needs_torch
@pytest.mark.parametrize("sparsity", [0.3, 0.7, 0.95])
def test_the_measured_sparsity_is_the_one_asked(mlp, sparsity):
    layer = pruning.prune_weights(mlp, sparsity, "layer")
    for w in layer[::2]:
        assert abs(np.sum(w == 0) - sparsity * w.size) <= 1  # within one weight per layer
    whole = pruning.prune_weights(mlp, sparsity, "global")
    total = sum(w.size for w in whole[::2])
    assert abs(sum(np.sum(w == 0) for w in whole[::2]) - sparsity * total) <= len(whole) // 2
    assert all(np.array_equal(a, b) for a, b in zip(whole[1::2], mlp[1::2]))  # biases kept
    kept = np.concatenate([w[w != 0] for w in whole[::2]])
    gone = np.concatenate([m[w == 0] for w, m in zip(whole[::2], mlp[::2])])
    assert np.abs(gone).max() <= np.abs(kept).min()  # the smallest magnitudes went


# -- exact against approximate -----------------------------------------------------------------


def test_the_exact_svd_recovers_the_known_rank_and_the_randomized_one_adds_a_small_error(opt_lab):
    _, exact = run_once(opt_lab, "approx-vs-exact", algorithm="svd-exact", **SVD)
    work, randomized = run_once(opt_lab, "approx-vs-exact", algorithm="svd-randomized", **SVD)
    assert work.amount == 4000 and work.unit == "rows"
    assert exact["rank_found"] == 5 and "rank_found" not in randomized
    # The optimum for rank 5 of 40 columns: the noise left over, against the signal's scales 2 .. 1.
    scales = np.linspace(2.0, 1.0, 5)
    expected = np.sqrt(0.05**2 * 35 / (np.sum(scales**2) + 0.05**2 * 40))
    assert exact["error_exact"] == pytest.approx(expected, rel=0.05)
    assert exact["task_error"] == pytest.approx(exact["error_exact"], rel=1e-9)
    added = randomized["error_added"] / randomized["error_exact"]
    assert 1e-10 < added < 1e-2, added  # above rounding, below a percent


def test_approximate_nearest_neighbours_miss_some_and_exact_ones_match_scikit_learn(opt_lab):
    from sklearn.neighbors import NearestNeighbors

    knn = {**SVD, "queries": 50, "k": 5}
    _, exact = run_once(opt_lab, "approx-vs-exact", algorithm="knn-exact", **knn)
    _, rough = run_once(opt_lab, "approx-vs-exact", algorithm="knn-approx", projected=8, candidates=10, **knn)
    assert exact["task_error"] == 0.0 and exact["recall_at_k"] == 1.0
    # Found by chance, a neighbour would be one in 800; the projection keeps most, not all (0.8 here).
    assert 0.0 < rough["task_error"] < 0.5 and rough["recall_at_k"] == pytest.approx(1 - rough["task_error"])
    data = approx.low_rank_array(4000, 40, 5, 0.05, 1000, 0).compute()
    queries = approx.query_points(50, 40, 5, 0.05, 0)
    parts = [approx.knn_part(data[i : i + 1000], queries, 5, i, None) for i in range(0, 4000, 1000)]
    ours = np.sort(approx.knn_merge(parts, 5), axis=1)
    theirs = np.sort(NearestNeighbors(n_neighbors=5, algorithm="brute").fit(data).kneighbors(queries)[1], axis=1)
    assert np.array_equal(ours, theirs)


# -- transfer ----------------------------------------------------------------------------------


@needs_torch
def test_a_new_head_trains_fewer_parameters_and_reaches_the_target(opt_lab):
    work, head = run_once(opt_lab, "transfer", mode="head", **TRANSFER)
    _, full = run_once(opt_lab, "transfer", mode="full", **TRANSFER)
    assert head["reached_target"] and head["time_to_target_s"] > 0 and head["final_accuracy"] >= 0.8
    assert head["trainable_params"] == 32 * 4 * 5 + 5 < full["trainable_params"] == full["total_params"]
    assert head["flops_estimate"] < full["flops_estimate"] * head["epochs"] / max(full["epochs"], 1)
    assert work.amount == head["epochs"] * 100 and work.unit == "samples"
    curve = head["curve"]
    assert [p["step"] for p in curve] == list(range(head["epochs"] + 1))
    assert curve[-1]["accuracy"] == head["final_accuracy"] and json.dumps(curve)


# -- the conclusions on trials whose answer is known -------------------------------------------


def _trials(workload: str, rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        params = r["params"]
        point = json.dumps({"workload": workload, "workers": 2, **params}, sort_keys=True)
        out.append({"point": point, "workers": 2, "status": "ok", "unit": "samples", **r["metrics"]})
    return pd.DataFrame(out)


def _pruned(sparsity: float, lost: int, gained: int, speeds: dict[str, float]) -> list[dict]:
    rng = np.random.default_rng(int(sparsity * 100))
    model = {"scope": "global", "hidden": 64, "depth": 1, "epochs": 10, "seed": 0}
    metrics = {
        "accuracy": 0.95 - (lost - gained) / 900,
        "accuracy_dense": 0.95,
        "lost_right": lost,
        "gained_right": gained,
        "heldout_samples": 900,
        "sparsity_measured": sparsity,
        "nonzero_params": 1000,
        "params_total": 2000,
    }
    return [
        {"params": {"sparsity": sparsity, "format": f, **model}, "metrics": {**metrics, "throughput": t, "wall_s": 1}}
        for f, speed in speeds.items()
        for t in speed * rng.normal(1, 0.02, 6)
    ]


def test_the_cost_of_sparsity_is_claimed_only_by_its_interval():
    rows = _pruned(0.0, 0, 0, {"dense": 100, "sparse": 40}) + _pruned(0.5, 3, 1, {"dense": 100, "sparse": 100})
    rows += _pruned(0.8, 12, 2, {"dense": 100, "sparse": 150}) + _pruned(0.9, 60, 0, {"dense": 100, "sparse": 200})
    text = analysis.describe_pruning(_trials("prune-infer", rows), 0.01)
    # 0.5 loses 2 of 900 (0.22 points, interval well under 1); 0.8 loses 10 of 900 (1.1 points: straddles).
    assert (
        "Answer: sparsity 0.5 is the largest measured whose accuracy loss stays under 1 point by its interval" in text
    )
    assert "At sparsity 0.8 the runs cannot tell" in text
    speed = analysis.describe_sparse_speed(_trials("prune-infer", rows))
    first = speed.splitlines()[0]
    assert re.fullmatch(
        r"sparsity 0 on 2 worker\(s\): sparse ran at 0\.(39|40)\d*× the dense throughput \(95% interval .+×\): slower\.",
        first,
    )
    assert "Answer: sparse inference was shown faster at sparsity 0.8, 0.9; shown slower at 0." in speed
    assert "sparsity 0.5 on 2 worker(s)" in speed and "which holds 1): the runs cannot tell" in speed
    none = analysis.describe_pruning(_trials("prune-infer", _pruned(0.9, 60, 0, {"dense": 100})), 0.01)
    assert "Answer: every sparsity measured lost more than 1 point, by its interval.\nTrials: " in none
    lo = analysis.loss_interval(0, 0, 900)
    assert lo.lo < 0 < lo.hi and lo.hi - lo.lo > 0  # nothing changed, yet an interval with a width
    with pytest.raises(ParameterError, match="max_loss"):
        analysis.describe_pruning(_trials("prune-infer", rows), 1.5)


def test_time_saved_by_an_approximation_and_its_trend_with_size():
    rng = np.random.default_rng(5)
    rows = [
        {
            "params": {"algorithm": a, "size": n},
            "metrics": {"throughput": n / t, "wall_s": t, "task_error": err, "error_exact": 0.08},
        }
        for n, t_exact, t_approx in ((10_000, 1.0, 0.8), (40_000, 4.0, 1.0))
        for a, t0, err in (("svd-exact", t_exact, 0.08), ("svd-randomized", t_approx, 0.08 + 1e-6))
        for t in t0 * rng.normal(1, 0.02, 6)
    ]
    text = analysis.describe_approx(_trials("approx-vs-exact", rows))
    assert "randomized SVD against exact SVD on 2 worker(s)" in text
    assert "Answer (svd): from 10,000 to 40,000 rows the speed-up grew: went from 1.25× to 4×" in text
    table = analysis.approx_table(_trials("approx-vs-exact", rows)).set_index("size")
    assert table.loc[40_000, "speedup_lo"] > 3.5 and table.loc[10_000, "error_added"] == pytest.approx(1e-6)


def test_transfer_compares_time_to_target_only_where_every_run_reached_it():
    rng = np.random.default_rng(6)

    def runs(mode, ttt, flops, reached=6):
        return [
            {
                "params": {"mode": mode},
                "metrics": {
                    "throughput": 1.0,
                    "time_to_target_s": t if i < reached else None,
                    "reached_target": i < reached,
                    "target_accuracy": 0.9,
                    "final_accuracy": 0.9 + 0.005 * rng.random(),
                    "trainable_params": 100 if mode == "head" else 1000,
                    "flops_estimate": flops * (1 + 0.1 * rng.random()),
                    "epochs": 5,
                },
            }
            for i, t in enumerate(ttt * rng.normal(1, 0.05, 6))
        ]

    frame = _trials("transfer", runs("head", 0.2, 1e6) + runs("scratch", 2.0, 1e8) + runs("full", 1.5, 8e7, 4))
    text = analysis.describe_transfer(frame)
    head = next(line for line in text.splitlines() if line.startswith("Answer: head against scratch"))
    assert "× the time to target (95% interval" in head and "× the estimated FLOPs (95% interval" in head
    assert head.count("×): less") == 2 and "× the accuracy (95% interval" in head
    assert "which holds 1): the runs cannot tell" in head and "): higher" not in head and "): lower" not in head
    full = next(line for line in text.splitlines() if line.startswith("Answer: full against scratch"))
    assert "time to target not compared (full reached the target in 4 of 6 runs" in full


# -- notebook 08 ---------------------------------------------------------------------------------

SMALL = {
    "workers": [2],
    "sparsities": [0.0, 0.9],
    "hidden": 64,
    "train_epochs": 10,
    "infer_batch": 64,
    "infer_batches": 4,
    "algorithms": ["svd-exact", "svd-randomized"],
    "sizes": [4000, 8000],
    "columns": 32,
    "rank": 4,
    "projected": 8,
    "modes": ["head", "scratch"],
    "channels": 4,
    "source_epochs": 3,
    "target_samples": 100,
    "target_accuracy": 0.8,
    "max_epochs": 30,
    "repeats": 1,
    "warmup": 0,
    "budget_s": 10.0,
    "experiment": "nb08",
}


def test_notebook_08_runs_headless_and_prints_what_its_store_says(tmp_path, notebooks_store):
    import papermill

    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(SMALL) | {"store"} <= set(declared) and all(p["help"] for p in declared.values())
    store = notebooks_store.path  # shared with the other notebooks: read by experiment
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(store) as s:
        frames = {name: s.trials_frame(f"nb08/{name}") for name in ("pruning", "approx", "transfer")}
    assert len(frames["approx"]) == 2 * 2 and (frames["approx"]["status"] == "ok").all()
    assert analysis.describe_approx(frames["approx"]) in printed
    if torch_available():
        assert len(frames["pruning"]) == 2 * 2 and (frames["pruning"]["status"] == "ok").all()
        assert analysis.describe_pruning(frames["pruning"], 0.01) in printed
        assert analysis.describe_sparse_speed(frames["pruning"]) in printed
        assert analysis.describe_transfer(frames["transfer"]) in printed
        assert result.html.read_text().count("<img") >= 4
    else:
        assert "skipped: PyTorch not installed" in printed


def test_trials_under_outside_load_decide_nothing_in_the_optimize_answers() -> None:
    # Quiet: sparse runs as fast as dense at sparsity 0.5. Loaded sparse runs ran at a third of the
    # speed: with them the answer would say "shown slower at 0.5".
    quiet = _trials("prune-infer", _pruned(0.5, 3, 1, {"dense": 100, "sparse": 100})).assign(under_load=False)
    slow = _trials("prune-infer", _pruned(0.5, 3, 1, {"sparse": 30}) * 2).assign(under_load=True)
    speed = analysis.describe_sparse_speed(pd.concat([quiet, slow], ignore_index=True))
    assert "shown slower at 0.5" not in speed and "which holds 1): the runs cannot tell" in speed
    assert "left out 12 of 24 trials that ran under outside load" in speed
