"""Batch against stream: batch size against throughput and a per-batch latency target (notebook 04).

>>> from labkit.studies import stream
"""

from __future__ import annotations

from .analysis import describe_latency_target, latency_table, verdict
from .figures import latency_figure
from .workloads import StreamLatency

__all__ = ["StreamLatency", "describe_latency_target", "latency_figure", "latency_table", "verdict"]
