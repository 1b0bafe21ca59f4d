"""Autoscaling: bursty load on fixed and adaptive clusters, latency against worker-seconds, and a worker's cold start (notebook 10).

>>> from labkit.studies import autoscale
"""

from __future__ import annotations

from .run import BurstyComparison, cold_start

__all__ = ["BurstyComparison", "cold_start"]
