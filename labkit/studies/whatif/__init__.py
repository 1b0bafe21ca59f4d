"""What if: replay a traced run on a cluster you do not have (notebook 18).

A sweep run with ``trace=True`` keeps each timed run's tasks (:mod:`labkit.measure.trace`);
:func:`predict` replays one trace on a :class:`VirtualCluster` (:mod:`.engine`: Dask's
scheduling policy, and where it departs) and predicts the wall time with an interval from
the spread of the measured task durations (:mod:`.replay`); :func:`what_if` asks several
questions at once, :func:`against_measured` sets predictions beside real runs.
:func:`measure_network` takes, beside a one-worker trace, what it cannot hold (transfer
latency and bandwidth, the scheduler's round trip); :func:`predict_chunks` answers "what
at another chunk size?" by rebuilding the graph (:func:`rebuild`) and estimating its tasks
from traces at other sizes.
``benchmarks/replay.py`` publishes the replay's error against real Dask runs.

>>> from labkit.studies import whatif
"""

from __future__ import annotations

from .analysis import (
    against_measured,
    describe_against_measured,
    describe_what_if,
    task_time_ratio,
    trace_of,
    traces_of,
    what_if,
)
from .chunks import describe_chunks, predict_chunks
from .engine import Graph, VirtualCluster, simulate
from .figures import what_if_figure
from .probe import Network, measure_network
from .rechunk import chunk_parameter, rebuild
from .replay import Prediction, cluster_of, graph_of, hops_of, ignored, predict
from .workloads import SleepGraph

__all__ = [
    "Graph",
    "Network",
    "Prediction",
    "SleepGraph",
    "VirtualCluster",
    "against_measured",
    "chunk_parameter",
    "cluster_of",
    "describe_against_measured",
    "describe_chunks",
    "describe_what_if",
    "graph_of",
    "hops_of",
    "ignored",
    "measure_network",
    "predict",
    "predict_chunks",
    "rebuild",
    "simulate",
    "task_time_ratio",
    "trace_of",
    "traces_of",
    "what_if",
    "what_if_figure",
]
