"""Every command works on a store that all of labkit's notebooks wrote into: ``labkit export``
writes it as Parquet, CSV and a bundle of Parquet tables, and pandas reads each back with every
experiment's trials, parameters of any type included (issue 21).

The notebook tests run their notebooks into the session's one store (``notebooks_store`` in
conftest.py); this test runs at the end of the session and first runs the notebooks that did
not run into it (all of them when it runs alone), with the small parameters their tests use.
"""

from __future__ import annotations

import importlib
import json
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labkit import ResultStore
from labkit.cli import main

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _of(module: str, name: str = "SMALL") -> dict[str, Any]:
    """The small parameters a notebook's own test module sets."""
    return getattr(importlib.import_module(module), name)


# Each notebook's small parameters, given the store (notebook 11 writes its interrupted sweep there too).
SMALL: dict[str, Callable[[Path], dict[str, Any]]] = {
    "00_quickstart": lambda _: {"n": [128, 256], "chunk": 64, "repeats": 2},  # as tests/test_quickstart.py
    "01_data_parallel_scaling": lambda _: _of("test_notebook_01", "PARAMS"),
    "02_cpu_vs_gpu": lambda _: _of("test_devices"),
    "03_data_variety": lambda _: _of("test_notebooks_data")["03_data_variety"],
    "04_batch_vs_stream": lambda _: _of("test_notebooks_data")["04_batch_vs_stream"],
    "05_compression_io": lambda _: _of("test_notebooks_data")["05_compression_io"],
    "06_hyperparameter_search": lambda _: _of("test_search"),
    "07_distributed_training": lambda _: {**_of("test_training"), "experiment": "nb07"},
    "08_model_optimization": lambda _: _of("test_optimize"),
    "09_federated_learning": lambda _: _of("test_federated"),
    "10_autoscaling": lambda _: _of("test_autoscale"),
    "11_fault_tolerance": lambda store: {**_of("test_recovery"), "sweep_store": str(store)},
    "12_cost_energy": lambda _: _of("test_cost"),
    "13_remote_cluster": lambda _: _of("test_remote"),  # no address: on a local cluster
    "14_spark_vs_dask": lambda _: _of("test_engines"),
    "15_model_serving": lambda _: _of("test_serving"),
    "16_serverless": lambda _: _of("test_serverless"),
    "17_edge": lambda _: _of("test_edge"),
    "18_what_if": lambda _: _of("test_whatif"),
}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_text(values: pd.Series) -> bool:
    """Whether labkit documents this column's Parquet values as JSON text: values (missing
    left out) of more than one Python type, or lists or dicts (labkit/store/export.py)."""
    present = [v for v in values if not _missing(v)]
    return len({type(v) for v in present}) > 1 or any(isinstance(v, (list, dict)) for v in present)


def _mixed(frame: pd.DataFrame) -> list[str]:
    """The columns whose values (missing left out) are of more than one Python type."""
    return [c for c in frame.columns if len({type(v) for v in frame[c] if not _missing(v)}) > 1]


def _counts(store: Path, table: str) -> dict[str, int]:
    with sqlite3.connect(store) as db:
        return dict(db.execute(f"SELECT experiment, COUNT(*) FROM {table} GROUP BY experiment").fetchall())


def _run_the_rest(notebooks_store: Any, tmp: Path) -> None:
    """Run into the shared store each notebook that has not run into it in this session."""
    assert {p.stem for p in NOTEBOOKS} == set(SMALL), "every notebook needs its small parameters here"
    for notebook in NOTEBOOKS:
        if notebook.stem not in notebooks_store.ran:
            (tmp / notebook.stem).mkdir()
            params = SMALL[notebook.stem](notebooks_store.path)
            result = notebooks_store.run(notebook, params, tmp / notebook.stem)
            assert result.ok, f"{notebook.name}: {result.error}"
    assert notebooks_store.ran == set(SMALL)


def _same_as_stored(back: pd.DataFrame, stored: pd.DataFrame) -> None:
    """Each column of a Parquet export holds the stored values: of their own type where the
    column has one plain type, else as JSON text that ``json.loads`` reads back."""
    back, stored = back.set_index("trial_id").loc[stored["trial_id"]], stored.set_index("trial_id")
    assert list(back.columns) == list(stored.columns)
    for column in stored.columns:
        values = [None if _missing(v) else v for v in stored[column]]  # missing values stay missing
        if _json_text(stored[column]):
            assert all(isinstance(v, str) for v in back[column] if not _missing(v)), column
            assert [None if _missing(v) else json.loads(v) for v in back[column]] == values, column
        elif stored[column].dtype.kind == "O":
            read = [None if _missing(v) else v for v in back[column]]
            assert read == values and list(map(type, read)) == list(map(type, values)), column
        else:
            pd.testing.assert_series_equal(back[column], stored[column], check_dtype=False, obj=column)


def _csv_same_as_stored(back: pd.DataFrame, stored: pd.DataFrame, columns: list[str]) -> None:
    """CSV is text: each value of the mixed ``columns`` is JSON text, as in Parquet, missing ones empty."""
    back, stored = back.set_index("trial_id").loc[stored["trial_id"].astype(str)], stored.set_index("trial_id")
    for column in columns:
        assert [None if _missing(v) else json.loads(v) for v in back[column]] == [
            None if _missing(v) else v for v in stored[column]
        ], column


@pytest.mark.after_notebooks
@pytest.mark.timeout(900 * len(NOTEBOOKS))  # it may run every notebook, each a test's worth
def test_export_reads_back_every_experiment_the_notebooks_wrote(notebooks_store: Any, tmp_path: Path) -> None:
    _run_the_rest(notebooks_store, tmp_path)
    store = notebooks_store.path
    trials, runs = _counts(store, "trials"), _counts(store, "runs")
    with ResultStore(store) as s:
        stored = s.trials_frame()
    mixed = _mixed(stored)
    # Notebook 06 stores search_seed as JSON text (Optuna) and as an integer (scikit-learn).
    assert mixed, "no column of the store mixes types: this test no longer checks how they export"
    out = {"parquet": tmp_path / "trials.parquet", "csv": tmp_path / "trials.csv", "bundle": tmp_path / "bundle"}
    for path in out.values():
        assert main(["export", str(store), str(path)]) == 0, path

    parquet = pd.read_parquet(out["parquet"])
    csv = pd.read_csv(out["csv"], dtype=str)
    bundle = {p.stem: pd.read_parquet(p) for p in sorted(out["bundle"].iterdir())}
    # Notebook 18 traces its runs (Sweep(trace=True)): their traces come back too.
    assert set(bundle) == {"trials", "samples", "time_splits", "alerts", "runs", "fingerprints", "traces"}
    assert len(bundle["traces"]) > 0 and set(bundle["traces"]["trial_id"]) <= set(bundle["trials"]["trial_id"])
    for name, frame in {"parquet": parquet, "csv": csv, **bundle}.items():
        if name not in ("samples", "alerts", "fingerprints", "traces"):  # tables without an experiment column
            expected = runs if name == "runs" else trials
            assert frame["experiment"].value_counts().to_dict() == expected, name
    _same_as_stored(parquet, stored)
    _same_as_stored(bundle["trials"].drop(columns=["elapsed_s", "time"]), stored)
    _csv_same_as_stored(csv, stored, mixed)
    assert set(bundle["samples"]["run_id"]) | set(bundle["alerts"]["run_id"]) <= set(bundle["runs"]["run_id"])
    assert set(bundle["fingerprints"]["fingerprint"]) == set(stored["fingerprint"].dropna())
