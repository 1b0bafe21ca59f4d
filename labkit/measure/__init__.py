"""Measurement while a sweep runs: the sampler, per-trial resources and load, where time went, alerts, energy.

- :mod:`.monitor`: the :class:`Monitor`, a background sampler of the scheduler's worker metrics;
- :mod:`.windows`: trial windows, and samples held until their trial settles;
- :mod:`.resources`: samples and the per-trial resource summary;
- :mod:`.timesplit`: where a trial's time went, from its Dask span and task stream;
- :mod:`.alerts`: thresholds and alerts, once per episode;
- :mod:`.load`: outside load on the cluster's machines (other processes' CPU, steal, load average);
- :mod:`.power`: energy counters (RAPL, NVML) where the machine has them.
"""

from __future__ import annotations

from .alerts import Alert, AlertRules
from .load import LoadReading
from .monitor import Monitor
from .resources import ResourceSummary, Sample

__all__ = ["Alert", "AlertRules", "LoadReading", "Monitor", "ResourceSummary", "Sample"]
