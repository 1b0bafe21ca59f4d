"""Hyperparameter search: the Optuna search finds a known optimum and records it with each trial,
pruners prune and still learn, scikit-learn's searches under the Dask backend match its own,
the conclusions claim a direction only with an interval, and notebook 06 runs headless."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labkit
from labkit import ResultStore, workloads
from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.studies.search import analysis as search_analysis
from labkit.studies.search import pruners as search_pruners
from labkit.studies.search import workloads as search

try:
    from .nbtext import all_loaded, printed_text
except ImportError:
    from nbtext import all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_hyperparameter_search.ipynb"


@pytest.fixture(scope="module")
def search_lab():
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab
    assert lab.closed


def _run(lab: labkit.Lab, name: str, **params: object) -> tuple[workloads.Work, dict, object]:
    w = workloads.get(name)
    state = w.setup(lab, **workloads.resolve_params(w, params))
    try:
        work = w.run(state)
        return work, w.metrics(state), state
    finally:
        w.teardown(state)


def test_the_search_finds_the_known_optimum_and_records_it_with_each_trial(search_lab, tmp_path) -> None:
    store = tmp_path / "store.db"
    sweep = labkit.Sweep(
        "optuna-search",
        grid={"workers": [2]},
        params={"objective": "quadratic", "n_trials": 60, "trial_cost_s": 0.01},
        repeats=2,
        warmup=0,
        experiment="quadratic",
        store=store,
    )
    sweep.run(search_lab, live=False)
    with ResultStore(store) as s:
        frame = s.trials_frame("quadratic")
    assert len(frame) == 2 and (frame["status"] == "ok").all()
    for row in frame.itertuples():
        # TPE with 60 trials on this 4 × 4 box: 40 seeds in a row came within 0.102 of the optimum.
        params = json.loads(row.best_params)
        assert abs(params["x"] - search.OPTIMUM["x"]) < 0.15 and abs(params["y"] - search.OPTIMUM["y"]) < 0.15
        assert row.best_score > search.OPTIMUM_SCORE - 0.03
        assert row.best_score == pytest.approx(search.quadratic_score(params["x"], params["y"]), abs=1e-12)
        assert row.amount == 60 and row.trials_completed == 60 and row.trials_pruned == 0
        assert 0 < row.time_to_within_1pct_s <= row.time_to_best_s <= row.wall_s
        assert row.curve[-1]["best"] == row.best_score and len(row.curve) == 60
        assert row.epochs_run is None  # the quadratic has no epochs: not a number
    assert frame["search_seed"].nunique() == 2  # each run samples afresh
    best = frame["best_score"].max()
    assert search_analysis.describe_best(frame).startswith(f"workers=2: best score {best:.4g} with {{")


@pytest.mark.parametrize("pruner", ["median", "successive-halving", "hyperband"])
def test_pruners_prune_and_the_search_still_learns(search_lab, pruner: str) -> None:
    work, m, _ = _run(search_lab, "optuna-search", pruner=pruner, n_trials=16, epochs=6)
    assert m["trials_pruned"] > 0, m
    assert m["trials_completed"] + m["trials_pruned"] == work.amount == 16
    assert m["epochs_run"] < 16 * 6  # a pruned trial stopped before its last epoch
    assert m["best_score"] > 0.8, m  # ten digits: chance is 0.1
    assert set(json.loads(m["best_params"])) == {"alpha", "eta0", "loss"}


def test_without_a_pruner_every_trial_runs_every_epoch(search_lab) -> None:
    work, m, _ = _run(search_lab, "optuna-search", n_trials=6, epochs=4)
    assert m["trials_pruned"] == 0 and m["trials_completed"] == 6 and m["epochs_run"] == 6 * 4
    assert m["trial_seconds"] > 0 and m["best_score"] > 0.8


@pytest.mark.parametrize("method", ["random", "halving"])
def test_sklearn_search_under_the_dask_backend_matches_sklearns_own(search_lab, method: str) -> None:
    work, m, state = _run(search_lab, "sklearn-search", method=method, n_candidates=6, cv=3, dataset="breast-cancer")
    on_dask = state.search
    x, y = search.load_dataset("breast-cancer")
    own = search.build_search(method, 6, 3, m["search_seed"]).set_params(n_jobs=1).fit(x, y)
    assert set(on_dask.cv_results_) == set(own.cv_results_)
    for key, value in own.cv_results_.items():
        assert len(on_dask.cv_results_[key]) == len(value), key
        got = on_dask.cv_results_[key]
        if key == "params" or np.asarray(value).dtype == object:
            assert list(got) == list(value), key
        elif "time" not in key:
            assert np.allclose(got, value, equal_nan=True), key
    assert on_dask.best_params_ == own.best_params_ and m["best_score"] == pytest.approx(own.best_score_)
    screened = own.n_candidates_[0] if method == "halving" else 6
    assert work.amount == screened == m["trials_completed"] + m["trials_pruned"]
    assert (m["trials_pruned"] > 0) == (method == "halving")
    assert m["time_to_best_s"] is None and m["curve"] is None  # scikit-learn does not say: not measured
    assert m["best_score"] > 0.9  # breast cancer, standardized RBF SVM


@pytest.mark.parametrize(
    ("workload", "grid"),
    [
        ("optuna-search", {"pruner": ["median", "sometimes"]}),
        ("optuna-search", {"objective": ["mnist"]}),
        ("optuna-search", {"n_trials": [0]}),
        ("optuna-search", {"epochs": [2.5]}),
        ("sklearn-search", {"method": ["grid"]}),
        ("sklearn-search", {"dataset": ["iris"]}),
        ("sklearn-search", {"cv": [1]}),
    ],
)
def test_bad_parameters_are_refused_before_any_cluster_work(workload: str, grid: dict) -> None:
    with pytest.raises((ParameterError, ParameterTypeError)):
        labkit.Sweep(workload, grid=grid)  # no lab: nothing has started


# -- the conclusions on trials whose answer is known -------------------------------------


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Search trials as the store gives them: a canonical point, status, throughput and metrics."""
    out = []
    for r in rows:
        params = {k: v for k, v in r.items() if k not in ("metrics", "wall_s")}
        out.append(
            {
                "point": json.dumps({"workload": "optuna-search", **params}, sort_keys=True),
                "workers": params["workers"],
                "status": "ok",
                "throughput": r["metrics"]["trials_per_s"],
                "unit": "trials",
                "wall_s": r.get("wall_s", 10.0),
                **r["metrics"],
            }
        )
    return pd.DataFrame(out)


def _runs(workers: int, time_to_best: float, n: int, seed: int, **extra: object) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "workers": workers,
            **{k: v for k, v in extra.items() if k != "metrics"},
            "metrics": {
                "trials_per_s": 2.0 * workers * rng.normal(1, 0.03),
                "time_to_best_s": time_to_best * rng.normal(1, 0.1),
                "time_to_within_1pct_s": 0.5 * time_to_best * rng.normal(1, 0.1),
                "best_score": 0.95 + 0.002 * rng.standard_normal(),
                "trial_seconds": 20.0 * rng.normal(1, 0.03),
                **extra.get("metrics", {}),
            },
        }
        for _ in range(n)
    ]


def test_more_workers_are_said_to_pay_off_only_when_the_interval_excludes_one() -> None:
    same = search_analysis.describe_search_scaling(_frame(_runs(1, 10.0, 6, 1) + _runs(2, 10.0, 6, 2)))
    assert "Answer: the runs cannot tell whether more than 1 worker(s) pay off" in same
    assert "which holds 1" in same and "pay off for this search up to" not in same
    table = search_analysis.search_scaling_table(_frame(_runs(1, 10.0, 6, 1) + _runs(2, 10.0, 6, 2)))
    assert table.loc[1, "best_sooner_lo"] < 1 < table.loc[1, "best_sooner_hi"]
    faster = search_analysis.describe_search_scaling(_frame(_runs(1, 10.0, 6, 1) + _runs(2, 4.0, 6, 2)))
    assert faster.endswith("Answer: more workers pay off for this search up to 2, the most measured: each step up was "
                           "sooner to reach the best score, by an interval that excludes 1.\nTrials: outside load not "
                           "measured for 12. Each interval is at 95%, not adjusted for the 3 comparisons in this answer.")  # fmt: skip
    slower = search_analysis.describe_search_scaling(_frame(_runs(1, 4.0, 6, 1) + _runs(2, 10.0, 6, 2)))
    assert "Answer: more workers do not pay off beyond 1: 2 workers were" in slower
    few = search_analysis.describe_search_scaling(_frame(_runs(1, 10.0, 3, 1) + _runs(2, 4.0, 3, 2)))
    assert "(an estimate: interval not available: 3 runs per point; use repeats >= 5): no direction claimed" in few
    assert "faster" not in few and "sooner" not in few and "later" not in few
    assert "pay off for this search up to" not in few
    by_rate = search_analysis.describe_search_scaling(
        _frame(_runs(1, 10.0, 6, 1) + _runs(2, 10.0, 6, 2)), by="trials_per_s"
    )
    assert "pay off for this search up to 2" in by_rate  # trials/s doubles with the workers
    with pytest.raises(ParameterError, match="by"):
        search_analysis.describe_search_scaling(_frame(_runs(1, 10.0, 6, 1)), by="accuracy")


def test_not_measured_times_are_said_so_and_trials_per_s_decides() -> None:
    none = {"metrics": {"time_to_best_s": None, "time_to_within_1pct_s": None}}
    text = search_analysis.describe_search_scaling(_frame(_runs(1, 1.0, 6, 1, **none) + _runs(2, 1.0, 6, 2, **none)))
    assert "time to the best score not measured, to within 1% of it not measured" in text
    assert "time to the best score: not measured" in text
    assert "Answer (time to the best score not measured for this search: judged by trials/s): more workers pay" in text
    assert math.isnan(search_analysis.search_scaling_table(_frame(_runs(1, 1.0, 6, 1, **none)))["time_to_best_s"][0])


def test_a_pruner_saves_at_equal_final_quality_only_when_the_score_interval_is_within_the_margin() -> None:
    base = _runs(2, 10.0, 6, 1, pruner="none")
    halves = _runs(2, 5.0, 6, 2, pruner="median", metrics={"trial_seconds": 10.0})
    rng = np.random.default_rng(3)
    for r in halves:
        r["metrics"]["trial_seconds"] *= rng.normal(1, 0.03)
    text = search_pruners.describe_pruners(_frame(base + halves), margin=0.01)
    assert "at equal final quality (difference" in text
    assert "Answer: median saves the most compute at equal final quality: 50% of the trial-seconds" in text
    table = search_pruners.pruner_table(_frame(base + halves)).set_index("pruner")
    assert table.loc["median", "compute_ratio"] == pytest.approx(0.5, rel=0.06)
    assert table.loc["median", "compute_ratio_hi"] < 1 and table.loc["none", "best_score_diff"] == 0
    worse = [{**r, "metrics": {**r["metrics"], "best_score": r["metrics"]["best_score"] - 0.1}} for r in halves]
    lower = search_pruners.describe_pruners(_frame(base + worse), margin=0.01)
    assert "at lower final quality" in lower and "Answer: no pruner was shown to save compute" in lower
    noisy = [
        {**r, "metrics": {**r["metrics"], "best_score": 0.95 + 0.05 * g}}
        for r, g in zip(halves, rng.standard_normal(6))
    ]
    unsure = search_pruners.describe_pruners(_frame(base + noisy), margin=0.01)
    assert "the runs cannot tell whether the final quality is equal" in unsure and "saves the most" not in unsure
    with pytest.raises(ParameterError, match="margin"):
        search_pruners.describe_pruners(_frame(base + halves), margin=0)
    with pytest.raises(ParameterError, match="baseline"):
        search_pruners.describe_pruners(_frame(base + halves), baseline="hyperband")
    # Every run of the baseline under outside load (a busy machine): nothing is claimed, and why
    loaded = _frame(base + halves).assign(under_load=lambda f: f["point"].str.contains('"pruner": "none"'))
    said = search_pruners.describe_pruners(loaded, margin=0.01)
    assert said.startswith("No trial is left to claim from: left out 6 of 12") and "baseline" in said, said


def test_trials_under_outside_load_decide_nothing_in_the_search_answers() -> None:
    # Quiet: 2 workers reach the best score later than 1. Twelve loaded 2-worker runs reach it
    # far sooner: with them the answer would be "more workers pay off".
    quiet = _runs(1, 4.0, 6, 1, metrics={"under_load": False}) + _runs(2, 10.0, 6, 2, metrics={"under_load": False})
    loaded = _runs(2, 1.0, 12, 3, metrics={"under_load": True})
    text = search_analysis.describe_search_scaling(_frame(quiet + loaded))
    assert "Answer: more workers do not pay off beyond 1: 2 workers were" in text
    assert "pay off for this search up to" not in text and "18 runs" not in text
    assert "Trials: left out 12 of 24 trials that ran under outside load." in text
    # Every trial loaded: nothing is claimed.
    alone = search_analysis.describe_search_scaling(_frame(loaded))
    assert alone.startswith("No trial is left to claim from: left out 12 of 12") and "pay off" not in alone
    # Pruners: quiet, median saves nothing; loaded, it would save half.
    base = _runs(2, 10.0, 6, 1, pruner="none", metrics={"under_load": False})
    same = _runs(2, 10.0, 6, 4, pruner="median", metrics={"under_load": False})
    cheap = _runs(2, 5.0, 12, 5, pruner="median", metrics={"trial_seconds": 5.0, "under_load": True})
    pruned = search_pruners.describe_pruners(_frame(base + same + cheap), margin=0.01)
    assert "saves the most" not in pruned and "no pruner was shown to save compute" in pruned
    assert "left out 12 of 24 trials that ran under outside load" in pruned


def test_a_pruner_saves_the_most_only_when_the_intervals_show_it() -> None:
    base = _runs(2, 10.0, 6, 1, pruner="none")
    rng = np.random.default_rng(7)
    close = [
        {**r, "metrics": {**r["metrics"], "trial_seconds": 10.0 * rng.normal(1, 0.03)}}
        for r in _runs(2, 5.0, 6, 2, pruner="median") + _runs(2, 5.0, 6, 3, pruner="hyperband")
    ]
    text = search_pruners.describe_pruners(_frame(base + close), margin=0.01)
    assert "saves the most compute" not in text and "cannot tell which saves the most" in text
    assert "not adjusted for the" in text
    apart = [
        {**r, "metrics": {**r["metrics"], "trial_seconds": 4.0 * rng.normal(1, 0.03)}}
        if r["pruner"] == "hyperband"
        else r
        for r in close
    ]
    text = search_pruners.describe_pruners(_frame(base + apart), margin=0.01)
    assert "Answer: hyperband saves the most compute at equal final quality: 80% of the trial-seconds" in text


# -- notebook 06 -------------------------------------------------------------------------

SMALL = {
    "workers": [2],
    "n_trials": 6,
    "epochs": 3,
    "pruners": ["none", "successive-halving"],
    "sklearn_methods": ["random", "halving"],
    "sklearn_candidates": 4,
    "dataset": "wine",
    "repeats": 1,
    "warmup": 0,
    "budget_s": 10.0,
    "experiment": "nb06",
}


def test_notebook_06_runs_and_prints_its_answers_from_the_store(tmp_path, notebooks_store) -> None:
    store = notebooks_store.path  # shared with the other notebooks: read by experiment
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(store) as s:
        scaling, pruners, sk = (s.trials_frame(f"nb06/{k}") for k in ("scaling", "pruners", "sklearn"))
    assert len(scaling) == 1 and len(pruners) == 2 and len(sk) == 2
    assert (pd.concat([scaling, pruners, sk])["status"] == "ok").all()
    assert search_analysis.describe_search_scaling(scaling) in printed
    assert search_pruners.describe_pruners(pruners, 0.01) in printed
    assert search_pruners.describe_pruners(sk, 0.01, by="method", baseline="random") in printed
    if scaling["under_load"].eq(True).all():  # a busy machine: the one scaling trial may carry no claim
        assert "No trial is left to claim from: left out 1 of 1 trials that ran under outside load" in printed
    else:
        assert "Answer: one worker count measured: whether more workers pay off was not measured." in printed
    assert "saves the most" not in printed  # one run a point: never claimed
    if not all_loaded(pruners):
        assert "interval not available: one run per point" in printed
    assert pruners["trials_pruned"][pruners["pruner"] == "successive-halving"].sum() > 0
    assert result.html.read_text().count("<img") >= 3
