"""Hyperparameter search workloads: an Optuna study spread over the workers, and scikit-learn's
searches under joblib's Dask backend. One timed run is one whole search of its candidates.

``optuna-search`` makes a fresh study per run in a ``DaskStorage`` (held by the scheduler)
and submits ``study.optimize`` once to each worker, pinned to it, splitting ``n_trials``
between them. Each worker samples with its own TPE sampler (``constant_liar``), seeded from
``seed``, the run's index in its setup and the worker's index, so repeats sample the
search's own variability (``search_seed`` lists the workers' seeds). Trial times are
completion times on the workers' clocks less the run's start on the client's (one host
here; between hosts, their clock offsets enter). ``objective`` is:

- ``"sgd-digits"``: scikit-learn's ``SGDClassifier`` (constant learning rate; the loss,
  ``alpha`` and ``eta0`` searched) trained by ``partial_fit`` for ``epochs`` epochs on 75% of
  the bundled digits, the accuracy on the other 25% reported after each epoch, so that a
  ``pruner`` (``"median"``, ``"successive-halving"``, ``"hyperband"``; ``"none"``) can stop
  a trial early. Chance is 0.1; a trial whose training overflows is recorded as failed.
- ``"quadratic"``: ``1 - (x - 0.3)² - (y + 1)²`` over ``x`` in [-2, 2], ``y`` in [-3, 1],
  after a fixed ``trial_cost_s`` a trial: its optimum, 1 at (0.3, -1), is known. It reports
  no intermediate score, so a pruner has nothing to act on.

``sklearn-search`` fits ``RandomizedSearchCV`` (``method="random"``) or
``HalvingRandomSearchCV`` (``"halving"``: over the number of samples, factor 3, the last
round on every sample) of ``n_candidates`` candidates of an RBF SVM (``C``, ``gamma``;
standardized features), ``cv``-fold, on a bundled ``dataset``, with ``n_jobs=-1`` under
``joblib.parallel_backend("dask")`` on the lab's client. scikit-learn does not say when
each candidate finished: its times to the best score are not measured (None).

Work is the candidates evaluated (unit ``"trials"``). ``metrics()`` gives, for the last run:
``best_score``, ``best_params`` (a JSON object), ``time_to_best_s`` (run start to the first
trial that reached the run's best score), ``time_to_within_1pct_s`` (to the first with
``score >= best - 0.01·|best|``), ``trials_completed``, ``trials_pruned`` (halving:
candidates dropped before the last round), ``trials_failed``, ``trials_per_s``,
``trial_seconds`` (compute spent: the trials' durations summed; scikit-learn: its fits and
scorings), ``epochs_run`` (sgd-digits: epochs summed over the trials; else None),
``search_seed`` and ``curve`` (per finished trial: ``t_s``, ``trial``, ``score``, None when
pruned, ``best`` so far).

>>> quadratic_score(0.3, -1.0), split_trials(10, 3), split_trials(1, 2)
(1.0, [4, 3, 3], [1, 0])
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.workloads.registry import BaseWorkload, Work

OBJECTIVES = ("sgd-digits", "quadratic")
PRUNERS = ("none", "median", "successive-halving", "hyperband")
METHODS = ("random", "halving")
DATASETS = ("digits", "breast-cancer", "wine")
LOSSES = ("hinge", "log_loss", "modified_huber")
OPTIMUM = {"x": 0.3, "y": -1.0}
"""Where the quadratic objective is best (its score there is :data:`OPTIMUM_SCORE`)."""
OPTIMUM_SCORE = 1.0
PINNED = {"allow_other_workers": False, "pure": False}
WITHIN = 0.01
"""A score within this fraction of the run's best counts for ``time_to_within_1pct_s``."""


def quadratic_score(x: float, y: float) -> float:
    """The synthetic objective: 1 at :data:`OPTIMUM`, lower everywhere else."""
    return OPTIMUM_SCORE - (x - OPTIMUM["x"]) ** 2 - (y - OPTIMUM["y"]) ** 2


def split_trials(n_trials: int, workers: int) -> list[int]:
    """Trials per worker: ``n_trials`` split as evenly as it goes, the first ones taking the rest."""
    base, rest = divmod(n_trials, workers)
    return [base + (i < rest) for i in range(workers)]


@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits scaled to [0, 1]: 75% to train, 25% held out (stratified, seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return tuple(train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y))


def warm_worker() -> None:
    """Import Optuna and load the digits on a worker, so that no timed run pays for either."""
    import optuna_integration.dask  # noqa: F401

    digits_split()


def sgd_digits(trial: Any, epochs: int, prune: bool = True) -> float:
    """Held-out accuracy of an SGD-trained linear classifier, reported after each epoch (and the
    pruner asked whether to stop, when there is one: each question is a round trip to the storage)."""
    import optuna
    from sklearn.linear_model import SGDClassifier

    x_train, x_val, y_train, y_val = digits_split()
    model = SGDClassifier(
        loss=trial.suggest_categorical("loss", LOSSES),
        alpha=trial.suggest_float("alpha", 1e-6, 1.0, log=True),
        learning_rate="constant",
        eta0=trial.suggest_float("eta0", 1e-5, 1.0, log=True),
        random_state=trial.number,
    )
    score, classes = 0.0, np.arange(10)
    for epoch in range(epochs):
        model.partial_fit(x_train, y_train, classes=classes)
        score = float(model.score(x_val, y_val))
        trial.report(score, epoch)
        if prune and trial.should_prune():
            raise optuna.TrialPruned()
    return score


def quadratic(trial: Any, cost_s: float) -> float:
    """The synthetic objective at a sampled point, after a fixed cost of ``cost_s`` seconds."""
    x, y = trial.suggest_float("x", -2.0, 2.0), trial.suggest_float("y", -3.0, 1.0)
    time.sleep(cost_s)
    return quadratic_score(x, y)


def make_pruner(name: str, epochs: int) -> Any:
    """Optuna's pruner called ``name`` (one of :data:`PRUNERS`), sized to ``epochs``."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna without its line per study and trial, and without its warning that DaskStorage is experimental."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def optimize_on_worker(storage_name: str, study_name: str, n_trials: int, seed: int, params: dict[str, Any]) -> int:
    """Run ``n_trials`` trials of a study held in a registered ``DaskStorage`` (called on a worker)."""
    import optuna
    from optuna_integration import DaskStorage

    with quiet_optuna():
        storage = DaskStorage(name=storage_name, register=False)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=params["startup_trials"], constant_liar=True)
        pruner = make_pruner(params["pruner"], params["epochs"])
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        if params["objective"] == "quadratic":
            objective = functools.partial(quadratic, cost_s=float(params["trial_cost_s"]))
        else:
            objective = functools.partial(sgd_digits, epochs=params["epochs"], prune=params["pruner"] != "none")
        study.optimize(objective, n_trials=n_trials, catch=(ValueError, ArithmeticError))
    return n_trials


def trial_rows(trials: list[Any], t0: float) -> list[dict[str, Any]]:
    """Optuna's frozen trials as plain rows: state, score, completion ``t_s``, seconds, steps, params."""
    return [
        {
            "state": t.state.name.lower(),
            "score": None if t.value is None else float(t.value),
            "t_s": t.datetime_complete.timestamp() - t0,
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds(),
            "steps": len(t.intermediate_values),
            "params": {k: v.item() if hasattr(v, "item") else v for k, v in t.params.items()},
        }
        for t in trials
        if t.datetime_complete is not None
    ]


def summarize_trials(rows: list[dict[str, Any]], wall_s: float, *, has_steps: bool) -> dict[str, Any]:
    """The search's figures (see the module's notes) from its trials as plain rows.

    >>> rows = [{"state": "complete", "score": s, "t_s": t, "seconds": 1.0, "steps": 0, "params": {"x": s}}
    ...         for s, t in ((0.5, 1.0), (0.995, 2.0), (1.0, 3.0))]
    >>> m = summarize_trials(rows, 4.0, has_steps=False)
    >>> m["best_score"], m["best_params"], m["time_to_best_s"], m["time_to_within_1pct_s"], m["epochs_run"]
    (1.0, '{"x": 1.0}', 3.0, 2.0, None)
    """
    done = sorted((r for r in rows if r["state"] in ("complete", "pruned")), key=lambda r: r["t_s"])
    scored = [r for r in done if r["state"] == "complete" and r["score"] is not None and np.isfinite(r["score"])]
    best = max((r["score"] for r in scored), default=float("nan"))
    first = next((r for r in scored if r["score"] >= best), None)
    near = next((r for r in scored if r["score"] >= best - WITHIN * abs(best)), None)
    out: dict[str, Any] = {
        "trials_completed": sum(r["state"] == "complete" for r in done),
        "trials_pruned": sum(r["state"] == "pruned" for r in done),
        "trials_failed": sum(r["state"] == "fail" for r in rows),
        "trials_per_s": len(done) / wall_s if wall_s > 0 else None,
        "trial_seconds": float(sum(r["seconds"] for r in rows)),
        "epochs_run": int(sum(r["steps"] for r in rows)) if has_steps else None,
        "best_score": first and best,
        "best_params": first and json.dumps(first["params"], sort_keys=True),
        "time_to_best_s": first and first["t_s"],
        "time_to_within_1pct_s": near and near["t_s"],
    }
    curve, running = [], None
    for i, r in enumerate(done):
        score = r["score"] if r in scored else None
        running = score if running is None or (score is not None and score > running) else running
        curve.append({"t_s": r["t_s"], "trial": i, "score": score, "best": running})
    out["curve"] = curve
    return out


@dataclass
class SearchState:
    client: Any
    params: dict[str, Any]
    storage: Any = None
    runs: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    search: Any = None


def run_seed(seed: int, run: int, workers: int) -> list[int]:
    """One sampler seed per worker for run ``run`` of a setup (a NumPy ``SeedSequence``)."""
    return [int(s) for s in np.random.SeedSequence([seed, run]).generate_state(workers)]


class OptunaSearch(BaseWorkload):
    """One Optuna study of ``n_trials`` trials, ``study.optimize`` running on every worker."""

    name = "optuna-search"
    description = "an Optuna study (TPE, optional pruner) over the workers through DaskStorage"
    defaults = {
        "n_trials": 24,
        "objective": "sgd-digits",
        "pruner": "none",
        "epochs": 10,
        "trial_cost_s": 0.02,
        "startup_trials": 8,
        "seed": 0,
    }
    choices = {"objective": OBJECTIVES, "pruner": PRUNERS}
    minimum = {"n_trials": 1, "epochs": 1, "trial_cost_s": 0.0, "startup_trials": 1, "seed": 0}

    def setup(self, lab: Any, **params: Any) -> SearchState:
        from optuna_integration import DaskStorage

        with quiet_optuna():
            storage = DaskStorage(client=lab.client)
        lab.client.run(warm_worker)  # imports and data on each worker once, untimed
        return SearchState(lab.client, params, storage)

    def run(self, state: SearchState) -> Work:
        import optuna

        from labkit.common.scheduler import scheduler_workers

        client, p = state.client, state.params
        addresses = sorted(scheduler_workers(client))  # as they are now: the lab may have been rescaled
        state.runs += 1
        seeds = run_seed(p["seed"], state.runs, len(addresses))
        name = f"labkit-{uuid.uuid4().hex}"
        with quiet_optuna():
            study = optuna.create_study(study_name=name, storage=state.storage, direction="maximize")
        t0, start = time.time(), time.perf_counter()
        futures = [
            client.submit(optimize_on_worker, state.storage.name, name, n, seed, p, workers=[a], **PINNED)
            for a, n, seed in zip(addresses, split_trials(p["n_trials"], len(addresses)), seeds)
            if n > 0
        ]
        try:
            client.gather(futures)
            wall = time.perf_counter() - start
            rows = trial_rows(study.get_trials(deepcopy=False), t0)
        finally:
            client.cancel(futures)
            optuna.delete_study(study_name=name, storage=state.storage)
        state.last = summarize_trials(rows, wall, has_steps=p["objective"] != "quadratic")
        state.last["search_seed"] = json.dumps(seeds)  # one sampler seed per worker
        done = state.last["trials_completed"] + state.last["trials_pruned"]
        return Work(float(done), "trials")

    def metrics(self, state: SearchState) -> dict[str, Any]:
        """Best score and parameters, times to the best and to within 1% of it, trials and compute of the last run."""
        return dict(state.last)

    def teardown(self, state: SearchState) -> None:
        """Drop the storage the studies lived in from the scheduler."""
        state.client.run_on_scheduler(drop_storage, name=state.storage.name)


def drop_storage(dask_scheduler: Any, name: str) -> None:
    """Forget a ``DaskStorage`` registered on the scheduler (run there)."""
    extension = dask_scheduler.extensions.get("optuna")
    if extension is not None:
        extension.storages.pop(name, None)


@functools.lru_cache(maxsize=4)
def load_dataset(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a dataset bundled with scikit-learn (one of :data:`DATASETS`)."""
    from sklearn import datasets

    loaders = {"digits": datasets.load_digits, "breast-cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}
    return loaders[dataset](return_X_y=True)


def build_search(method: str, n_candidates: int, cv: int, seed: int) -> Any:
    """The unfitted scikit-learn search (``n_jobs=-1``: as parallel as the joblib backend allows)."""
    from scipy.stats import loguniform
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes HalvingRandomSearchCV importable)
    from sklearn.model_selection import HalvingRandomSearchCV, RandomizedSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = make_pipeline(StandardScaler(), SVC())
    space = {"svc__C": loguniform(1e-1, 1e3), "svc__gamma": loguniform(1e-4, 1e-1)}
    common = {"cv": cv, "random_state": seed, "n_jobs": -1}
    if method == "halving":
        return HalvingRandomSearchCV(
            model, space, n_candidates=n_candidates, factor=3, min_resources="exhaust", **common
        )
    return RandomizedSearchCV(model, space, n_iter=n_candidates, **common)


def search_metrics(search: Any, wall_s: float) -> dict[str, Any]:
    """The figures of a fitted scikit-learn search (see the module's notes)."""
    res = search.cv_results_
    screened = int(search.n_candidates_[0]) if hasattr(search, "n_candidates_") else len(res["params"])
    finished = int(search.n_candidates_[-1]) if hasattr(search, "n_candidates_") else screened
    seconds = np.nansum((res["mean_fit_time"] + res["mean_score_time"]) * search.n_splits_)
    params = {k.split("__")[-1]: float(v) for k, v in search.best_params_.items()}
    return {
        "best_score": float(search.best_score_),
        "best_params": json.dumps(params, sort_keys=True),
        "time_to_best_s": None,
        "time_to_within_1pct_s": None,
        "trials_completed": finished,
        "trials_pruned": screened - finished,
        "trials_failed": int(np.isnan(res["mean_test_score"]).sum()),
        "trials_per_s": screened / wall_s if wall_s > 0 else None,
        "trial_seconds": float(seconds),
        "epochs_run": None,
        "fits": int(len(res["params"]) * search.n_splits_),
        "curve": None,
    }


class SklearnSearch(BaseWorkload):
    """scikit-learn's randomized or successive-halving search, its fits spread by joblib's Dask backend."""

    name = "sklearn-search"
    description = "scikit-learn RandomizedSearchCV / HalvingRandomSearchCV under joblib's dask backend"
    defaults = {"method": "random", "n_candidates": 16, "cv": 3, "dataset": "digits", "seed": 0}
    choices = {"method": METHODS, "dataset": DATASETS}
    minimum = {"n_candidates": 2, "cv": 2, "seed": 0}

    def setup(self, lab: Any, **params: Any) -> SearchState:
        load_dataset(params["dataset"])
        return SearchState(lab.client, params)

    def run(self, state: SearchState) -> Work:
        import joblib

        p = state.params
        state.runs += 1
        seed = run_seed(p["seed"], state.runs, 1)[0]
        search = build_search(p["method"], p["n_candidates"], p["cv"], seed)
        x, y = load_dataset(p["dataset"])
        start = time.perf_counter()
        with joblib.parallel_backend("dask", client=state.client, scatter=[x, y]):
            search.fit(x, y)
        wall = time.perf_counter() - start
        state.search = search
        state.last = {**search_metrics(search, wall), "search_seed": seed}
        return Work(float(state.last["trials_completed"] + state.last["trials_pruned"]), "trials")

    def metrics(self, state: SearchState) -> dict[str, Any]:
        """Best score and parameters, candidates, compute and seed of the last run (no times to the best)."""
        return dict(state.last)
