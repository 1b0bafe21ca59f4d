"""Serving: replicas of a model behind Dask actors and an HTTP service, at a latency bound (notebook 15).

MLPerf LoadGen drives each server in its Server scenario (Poisson arrivals, latency from
each query's scheduled time); the study searches the highest arrival rate whose percentile
stays under the bound, and compares it with an M/M/c queue built from the measured service
time. Its runs are far shorter than MLPerf's 600 s: not MLPerf-compliant.

>>> from labkit.studies import serving
"""

from __future__ import annotations

from .analysis import describe_serving, peak_table, percentile_estimate, runs_table
from .figures import curve_figure, peak_figure
from .loadgen import availability, available, find_peak, loadgen_available, server_run
from .models import DigitsModel, SleepModel, build, service_times
from .queueing import peak_rate, response_quantile
from .run import ServingResult, ServingStudy, replica_counts
from .servers import ActorServer, HttpServer, port_open

__all__ = [
    "ActorServer",
    "DigitsModel",
    "HttpServer",
    "ServingResult",
    "ServingStudy",
    "SleepModel",
    "availability",
    "available",
    "build",
    "curve_figure",
    "describe_serving",
    "find_peak",
    "loadgen_available",
    "peak_figure",
    "peak_rate",
    "peak_table",
    "percentile_estimate",
    "port_open",
    "replica_counts",
    "response_quantile",
    "runs_table",
    "server_run",
    "service_times",
]
