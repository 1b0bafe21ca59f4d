"""What if: replay a traced run on a cluster you do not have (notebook 18).

A sweep run with ``trace=True`` keeps each timed run's tasks (:mod:`labkit.measure.trace`);
:func:`predict` replays one trace on a :class:`VirtualCluster` (:mod:`.engine`: Dask's
scheduling policy, and where it departs) and predicts the wall time with an interval from
the spread of the measured task durations (:mod:`.replay`); :func:`what_if` asks several
questions at once, :func:`against_measured` sets predictions beside real runs.
``benchmarks/replay.py`` publishes the replay's error against real Dask runs.

>>> from labkit.studies import whatif
"""

from __future__ import annotations

from .analysis import against_measured, describe_against_measured, describe_what_if, trace_of, what_if
from .engine import Graph, VirtualCluster, simulate
from .figures import what_if_figure
from .replay import Prediction, cluster_of, graph_of, ignored, predict
from .workloads import SleepGraph

__all__ = [
    "Graph",
    "Prediction",
    "SleepGraph",
    "VirtualCluster",
    "against_measured",
    "cluster_of",
    "describe_against_measured",
    "describe_what_if",
    "graph_of",
    "ignored",
    "predict",
    "simulate",
    "trace_of",
    "what_if",
    "what_if_figure",
]
