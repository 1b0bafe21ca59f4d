"""Engines: answers compared within a tolerance and a mismatch reported, faster only where the interval
says so, parameters refused before any work, Spark, Dask and DuckDB run for real on tiny TPC-H data
(the three agree; a failed query still ends the session and its JVM; a failed step is stored and the
study goes on), and notebook 14 run headless."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import psutil
import pytest

from labkit import ResultStore
from labkit.common.errors import LabkitError, ParameterError
from labkit.studies import engines
from labkit.studies.engines import measure

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "14_spark_vs_dask.ipynb"
DATA = Path(tempfile.gettempdir()) / "labkit-tpch-tests"  # tpchgen-cli's tiny tables, shared by these tests
MISSING = engines.problems()
needs_engines = pytest.mark.skipif(
    bool(MISSING), reason=f"the spark extra or Java is missing here: {'; '.join(MISSING.values())}"
)


def _jvms(since: float = 0.0) -> list[psutil.Process]:
    """Spark JVMs this study started (its app name on their command line), started at or after ``since``."""
    found = []
    for p in psutil.process_iter(["cmdline", "create_time"]):
        line = " ".join(p.info["cmdline"] or ())
        if "labkit-engines" in line and "java" in line and (p.info["create_time"] or 0) >= since - 1:
            found.append(p)
    return found


# -- answers, claims, parameters: no engine --------------------------------------------------


def _q3(revenue: float, orderkey: int = 7) -> pd.DataFrame:
    return engines.answer_frame(
        "q3", [(orderkey, revenue, "1995-03-01", 0)], ["L_ORDERKEY", "revenue", "o_orderdate", "o_shippriority"]
    )


def test_answers_agree_within_the_tolerance_and_a_mismatch_is_named() -> None:
    ref = _q3(1000.0)
    assert engines.compare({"spark": ref, "dask": _q3(1000.0 * (1 + 1e-8))}, "q3") == []
    (diff,) = engines.compare({"spark": ref, "dask": _q3(1001.0)}, "q3")
    assert (diff["engine"], diff["reference"], diff["column"], diff["row"]) == ("dask", "spark", "revenue", 7)
    rows = engines.compare({"spark": ref, "duckdb": _q3(1000.0, orderkey=8)}, "q3")
    assert {(d["row"], d["value"]) for d in rows} == {(7, "missing"), (8, "present")}


def _frame(times: dict[str, list[float]], under_load: bool = False) -> pd.DataFrame:
    rows = [
        {"engine": e, "phase": "warm", "query": "q1", "scale_factor": 0.1, "workers": 2, "wall_s": t}
        | {"status": "ok", "under_load": under_load}
        for e, ts in times.items()
        for t in ts
    ]
    return pd.DataFrame(rows)


def test_faster_is_said_only_where_the_interval_excludes_one() -> None:
    rng = np.random.default_rng(0)
    times = {
        "spark": list(2.0 * rng.lognormal(0, 0.02, 7)),
        "dask": list(1.0 * rng.lognormal(0, 0.02, 7)),
        "duckdb": list(2.0 * rng.lognormal(0, 0.3, 7)),
    }
    table = engines.comparison_table(_frame(times)).set_index(["engine", "against"])
    assert table.loc[("dask", "spark"), "words"].endswith("× faster (95% interval 1.99–2.07×)")
    assert "the runs cannot tell" in table.loc[("duckdb", "spark"), "words"]
    skipped = {"spark": "pyspark is not installed (pip install -e '.[spark]')"}
    said = engines.describe_engines(_frame(times), "Answers: agree.", skipped, 2, {0.1: 30.0})
    assert "Dask against Spark: 2.03× faster" in said and "cannot tell: a shuffle between machines" in said
    assert "Skipped (not measured): Spark: pyspark is not installed (pip install -e '.[spark]')." in said
    loaded = engines.describe_engines(_frame(times, under_load=True), "Answers: agree.", {}, 2, {0.1: 30.0})
    assert loaded.startswith(NOTHING_LEFT) and "faster" not in loaded


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"scale_factors": [0]}, "scale_factors"),
        ({"scale_factors": "big"}, "scale_factors"),
        ({"workers": [0]}, "workers"),
        ({"workers": [1.5]}, "workers"),
        ({"queries": ["q2"]}, "queries"),
        ({"engines": ["polars"]}, "engines"),
        ({"repeats": 0}, "repeats"),
        ({"rounds": "2"}, "rounds"),
        ({"spark_memory": "lots"}, "spark_memory"),
        ({"rtol": -1}, "rtol"),
        ({"data_dir": "/proc/labkit-tpch"}, "data_dir"),
        ({"store": 3}, "store"),
        ({"experiment": ""}, "experiment"),
    ],
)
def test_bad_parameters_are_refused_before_any_work(kwargs: dict, name: str, tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises((ParameterError, TypeError)) as info:
        engines.EngineStudy(data_dir=str(tmp_path / "data"), **kwargs)
    assert name in str(info.value)
    assert not (tmp_path / "data").exists()  # no data made
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before  # no engine started


def test_a_missing_extra_is_named_and_what_it_skips_is_said(monkeypatch) -> None:
    from labkit.studies.engines import sessions

    monkeypatch.setattr(sessions, "spark_problem", lambda: "pyspark is not installed (pip install -e '.[spark]')")
    said = engines.availability()
    assert "skipped: spark (pyspark is not installed (pip install -e '.[spark]')): not measured" in said
    if "data" not in MISSING and "duckdb" not in MISSING:
        study = engines.EngineStudy(scale_factors=[0.01], workers=[1])
        assert study.engines == ("dask", "duckdb") and set(study.skipped) == {"spark"}
    monkeypatch.setattr(sessions, "tpchgen", lambda: None)
    assert not engines.available()
    assert engines.availability().startswith("skipped: the TPC-H data cannot be made: tpchgen-cli is not installed")
    with pytest.raises(LabkitError, match=r"tpchgen-cli is not installed .*pip install -e '\.\[spark\]'"):
        engines.EngineStudy(scale_factors=[0.01], workers=[1])


def test_an_engine_that_cannot_run_here_is_refused_by_name() -> None:
    with pytest.raises(LabkitError, match=r"spark: pyspark is not installed .*pip install -e '\.\[spark\]'"):
        engines.run.pick_engines(("spark", "dask"), {"spark": "pyspark is not installed (pip install -e '.[spark]')"})
    chosen, skipped = engines.run.pick_engines(None, {"duckdb": "duckdb is not installed"})
    assert chosen == ("spark", "dask") and set(skipped) == {"duckdb"}


# -- the engines, for real ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> engines.Dataset:
    """TPC-H at scale factor 0.01, four files per table (made once, then found in the cache)."""
    if "data" in MISSING:
        pytest.skip(MISSING["data"])
    return engines.dataset(0.01, DATA, engines.parts_for(0.01, cores=2))


@pytest.fixture(scope="module")
def spark():
    """One Spark session for the module (``start`` makes it, or makes it again after a test closed it)."""
    engine = engines.SparkEngine(2, "512m")
    yield engine
    engine.close()


@needs_engines
def test_the_three_engines_agree_on_q1_and_q3_and_a_changed_answer_is_reported(tiny, spark) -> None:
    tables = {t: tiny.table(t) for t in ("lineitem", "orders", "customer")}
    spark.start()
    with engines.DaskEngine(2) as dask, engines.DuckDBEngine(2) as duck:
        for query, rows in (("q1", 4), ("q3", 10)):
            got = {
                e.name: engines.answer_frame(query, *engines.run_query(e, query, tables)) for e in (spark, dask, duck)
            }
            assert all(len(a) == rows for a in got.values()), query
            assert engines.compare(got, query) == [], query
    changed = got["dask"].copy()
    changed.iloc[0, changed.columns.get_loc("revenue")] *= 1.01
    (diff,) = engines.compare({"spark": got["spark"], "dask": changed}, "q3")
    assert diff["column"] == "revenue" and diff["engine"] == "dask"


@needs_engines
def test_a_failed_query_still_stops_the_session_and_ends_its_jvm(spark) -> None:
    spark.start()
    (jvm,) = spark.pids()
    assert psutil.Process(jvm).is_running()
    with pytest.raises(Exception, match="(?i)path does not exist|not found"), spark:
        spark.query("select * from parquet.`/nonexistent/labkit-tpch`")
    assert spark.spark is None and not spark.pids()
    assert not psutil.pid_exists(jvm) or psutil.Process(jvm).status() == psutil.STATUS_ZOMBIE
    assert not [p for p in psutil.Process().children(recursive=True) if "java" in p.name()]


@needs_engines
def test_a_failed_step_is_stored_and_the_study_goes_on(tiny, scaled_lab, tmp_path: Path, monkeypatch) -> None:
    real = measure.run_query

    def failing(engine, query, tables):
        if query == "q3":
            raise RuntimeError("no such table")
        return real(engine, query, tables)

    monkeypatch.setattr(measure, "run_query", failing)
    store = tmp_path / "results" / "labkit.db"
    study = engines.EngineStudy(
        scale_factors=[0.01], workers=[1], engines=["duckdb"], repeats=2, data_dir=DATA, store=str(store)
    )
    result = study.run(scaled_lab)
    with ResultStore(store) as s:
        frame = s.trials_frame("engines/tpch")
    assert len(frame) == len(result.records) == 1 + 3 + 1  # start; q1 cold and 2 warm; q3 cold, failed
    failed = frame[frame["status"].eq("error")]
    assert list(failed["query"]) == ["q3"] and "no such table" in failed["error"].iloc[0]
    assert "Answers: only duckdb ran" in result.agreement()


# -- the notebook ----------------------------------------------------------------------------

SMALL = {"scale_factors": [0.01], "workers": [1], "repeats": 1, "data_dir": str(DATA), "experiment": "nb14"}


def test_notebook_declares_the_parameters_the_tests_set() -> None:
    assert set(SMALL) | {"store", "engine_names", "rounds", "queries"} <= set(papermill.inspect_notebook(str(NOTEBOOK)))


@needs_engines
def test_notebook_compares_the_three_engines_and_ends_spark(tmp_path: Path, notebooks_store) -> None:
    started = time.time()
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(notebooks_store.path) as s:
        frame = s.trials_frame("nb14/tpch")
    assert set(frame["engine"]) == {"spark", "dask", "duckdb"} and (frame["status"] == "ok").all()
    assert set(frame["phase"]) == {"start", "cold", "warm"}
    assert "engines here: spark, dask, duckdb; nothing skipped" in printed
    assert "Answers: spark, dask, duckdb returned the same answer for Q1 at SF 0.01, Q3 at SF 0.01" in printed
    if all_loaded(frame):
        assert NOTHING_LEFT in printed
    else:
        assert "Start-up, median: Spark (JVM and SparkSession)" in printed
        assert "cannot tell: a shuffle between machines" in printed and "spilling at 1 TB" in printed
    assert not _jvms(since=started)
