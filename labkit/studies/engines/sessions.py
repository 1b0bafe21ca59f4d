"""The three engines behind one small interface: start, query, close; and which of them run here.

Each engine is a context manager that :meth:`start` s (what start-up times), answers
:meth:`query` with its rows and column names (run to the end, the rows in this process) and
:meth:`close` s, idempotently and whatever happened:

- :class:`~.spark.SparkEngine`: ``local[N]`` in a JVM of its own;
- :class:`DaskEngine`: a new :class:`labkit.Lab` of N single-thread workers (a
  ``LocalCluster``), its queries in dask.dataframe (:data:`~.queries.DASK`);
- :class:`DuckDBEngine`: an in-memory DuckDB database in this process with ``threads=N``.

:func:`problems` says, per engine, why it cannot run here; :func:`availability` words it.

>>> sorted(ENGINES)
['dask', 'duckdb', 'spark']
"""

from __future__ import annotations

import importlib.util
from typing import Any

from labkit.cluster import Lab

from . import queries
from .data import HINT, tpchgen
from .lifetime import EngineLifetime
from .spark import SparkEngine, spark_problem

ENGINES = ("spark", "dask", "duckdb")
"""The engines, in the order their answers are compared (the first is the reference)."""


class DaskEngine(EngineLifetime):
    """A Dask LocalCluster of ``workers`` single-thread worker processes (a :class:`labkit.Lab`)."""

    name = "dask"

    def load(self) -> None:
        import dask.dataframe  # noqa: F401 - the queries' module, imported before any timing

    def start(self) -> DaskEngine:
        if self.held is None:
            self.held = Lab(workers=self.workers, threads_per_worker=1, dashboard=False)
        return self

    def table(self, folder: str) -> str:
        return folder

    def query(self, name: str, tables: dict[str, str]) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Build the query's graph, compute it on this cluster, return its rows and columns."""
        computed = self.held.client.compute(queries.DASK[name](tables), sync=True)
        return queries.dask_answer(name, computed)


class DuckDBEngine(EngineLifetime):
    """An in-memory DuckDB database in this process, limited to ``workers`` threads."""

    name = "duckdb"

    def load(self) -> None:
        import duckdb  # noqa: F401 - imported before start-up is timed

    def start(self) -> DuckDBEngine:
        import duckdb

        if self.held is None:
            self.held = duckdb.connect(":memory:")
            self.held.execute(f"SET threads = {int(self.workers)}")
        return self

    def table(self, folder: str) -> str:
        return f"read_parquet('{folder}/*.parquet')"

    def query(self, text: str) -> tuple[list[tuple[Any, ...]], list[str]]:
        cursor = self.held.execute(text)
        rows = cursor.fetchall()
        return rows, [d[0] for d in cursor.description]


KINDS = {"spark": SparkEngine, "dask": DaskEngine, "duckdb": DuckDBEngine}


def run_query(engine: Any, name: str, tables: dict[str, str]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """One query on one engine, to the end: SQL for Spark and DuckDB, dask.dataframe for Dask."""
    if isinstance(engine, DaskEngine):
        return engine.query(name, tables)
    return engine.query(queries.sql(name, lambda t: engine.table(tables[t])))


def problems() -> dict[str, str]:
    """Why each engine cannot run here (absent where it can), and ``"data"`` where tpchgen-cli is missing."""
    out = {}
    if tpchgen() is None:
        out["data"] = f"tpchgen-cli is not installed ({HINT})"
    if spark := spark_problem():
        out["spark"] = spark
    if importlib.util.find_spec("duckdb") is None:
        out["duckdb"] = f"duckdb is not installed ({HINT})"
    return out


def available() -> bool:
    """Whether the study runs here: its data can be made and at least one engine runs."""
    missing = problems()
    return "data" not in missing and any(e not in missing for e in ENGINES)


def availability() -> str:
    """What runs here and what is skipped, in words."""
    missing = problems()
    if "data" in missing:
        return f"skipped: the TPC-H data cannot be made: {missing['data']}; nothing below is measured"
    ran = [e for e in ENGINES if e not in missing]
    said = f"engines here: {', '.join(ran)}"
    skipped = [f"{e} ({missing[e]})" for e in ENGINES if e in missing]
    return said + (f"; skipped: {'; '.join(skipped)}: not measured" if skipped else "; nothing skipped")
