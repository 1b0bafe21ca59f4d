"""A Dask preload that keeps a local cluster's worker processes out of the kernel's interrupts.

Jupyter interrupts a kernel by sending SIGINT to its whole process group, and the worker
processes a ``LocalCluster``'s nannies start are in that group: without this, interrupting a
sweep also stops every worker, and the nannies, seeing them close cleanly, start no new ones.
Loaded into each worker process (``preload=["labkit.cluster.interrupt"]``), it makes the
process ignore SIGINT; the sweep in the kernel still gets its ``KeyboardInterrupt`` and
cancels its tasks on the workers, which stay up for the next cell. SIGTERM and SIGKILL
stop them as before.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

logger = logging.getLogger("labkit.cluster")

PRELOAD = __name__


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in the worker's process as it starts: ignore SIGINT there."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the process's main thread (a worker in the client's own process): nothing to do
        logger.debug("worker %s runs outside a main thread: SIGINT left as it is", getattr(worker, "name", "?"))
