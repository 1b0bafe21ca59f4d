"""Engines: TPC-H Q1 and Q3 on Spark ``local[N]``, a Dask LocalCluster of N workers and DuckDB (notebook 14).

The data are tpchgen-cli's Parquet at scale factors from 0.1 up, made once and kept. Each
engine's start-up, its first (cold) run of each query and its warm repeats are timed apart
and stored as trials; the three engines' answers are compared; which engine is faster is
said only where the interval of the ratio of their warm medians excludes 1. Spark, DuckDB
and tpchgen-cli come with the ``spark`` extra (``pip install -e '.[spark]'``); an engine
that is missing is skipped, and said so.

>>> from labkit.studies import engines
"""

from __future__ import annotations

from .analysis import comparison_table, describe_engines, scaling_table, timings_table
from .answers import answer_frame, compare
from .data import Dataset, dataset, default_scale_factors, parts_for, tpchgen
from .figures import phases_figure, scale_figure, workers_figure
from .queries import DASK, KEYS, QUERIES, sql
from .results import EngineResult
from .run import EngineStudy, scale_factors, worker_counts
from .sessions import ENGINES, DaskEngine, DuckDBEngine, availability, available, problems, run_query
from .spark import SparkEngine, spark_problem

__all__ = [
    "DASK",
    "ENGINES",
    "KEYS",
    "QUERIES",
    "DaskEngine",
    "Dataset",
    "DuckDBEngine",
    "EngineResult",
    "EngineStudy",
    "SparkEngine",
    "answer_frame",
    "availability",
    "available",
    "compare",
    "comparison_table",
    "dataset",
    "default_scale_factors",
    "describe_engines",
    "parts_for",
    "phases_figure",
    "problems",
    "run_query",
    "scale_factors",
    "scale_figure",
    "scaling_table",
    "spark_problem",
    "sql",
    "timings_table",
    "tpchgen",
    "worker_counts",
    "workers_figure",
]
