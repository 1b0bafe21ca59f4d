"""Hardware probes: the limits a scaling curve is measured against.

- :mod:`.kernels`: copy/triad bandwidth (credited with the bytes each moves) and matmul FLOP/s,
  on NumPy or CuPy, by one thread or several at once;
- :mod:`.node`: the host's ceiling, every worker on one host running a kernel at once;
- :mod:`.dask_costs`: Dask's task overhead and worker-to-worker network bandwidth;
- :mod:`.run`: :func:`run_probes`, every probe in the client, on each worker with its threads,
  on the whole host and on a GPU;
- :mod:`.concurrency`: :func:`concurrency_ceiling`, the cores' own scaling ceiling (``k``
  single-thread matmuls at once against one alone), with the outside load over it;
- :mod:`.cache`: :func:`cached_probes`, probes kept in the store per environment (never one
  taken under outside load); :func:`cached_ceiling`, this machine's concurrency ceiling;
- :mod:`.records`: the :class:`HardwareProbe` record and its table.
"""

from __future__ import annotations

from .cache import cached_ceiling, cached_probes, keep_ceiling
from .concurrency import concurrency_ceiling
from .dask_costs import DEFAULT_NETWORK_SIZES, DEFAULT_TASK_COUNTS, network_bandwidth, task_overhead
from .kernels import TRIAD_SCALAR, matmul_flops, stream_bandwidth
from .records import (
    ConcurrencyCeiling,
    HardwareProbe,
    MatmulResult,
    NetworkResult,
    NodeCeiling,
    StreamResult,
    TaskOverhead,
)
from .run import MATMUL_DTYPES, run_probes

__all__ = [
    "DEFAULT_NETWORK_SIZES",
    "DEFAULT_TASK_COUNTS",
    "MATMUL_DTYPES",
    "TRIAD_SCALAR",
    "ConcurrencyCeiling",
    "HardwareProbe",
    "MatmulResult",
    "NetworkResult",
    "NodeCeiling",
    "StreamResult",
    "TaskOverhead",
    "cached_ceiling",
    "cached_probes",
    "concurrency_ceiling",
    "keep_ceiling",
    "matmul_flops",
    "network_bandwidth",
    "run_probes",
    "stream_bandwidth",
    "task_overhead",
]
