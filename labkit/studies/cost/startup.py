"""Cluster start-up, measured: a Lab of each size started and closed, timed until its workers run.

The store records each run's start and each trial's start and end, but not how long the
cluster took to start; a cloud bills that time too. :func:`measure_startup` measures it for
this machine: for every worker count, ``repeats`` times, it starts a
:class:`~labkit.cluster.Lab` with that many workers, times it from the call to the moment
every worker is running (``Lab`` waits for them), and closes it. Local processes start far
faster than cloud machines (minutes to boot and pull an image): the figure is this
machine's, and :func:`labkit.analysis.cost.bill` takes any other the user declares instead.

:func:`stored_runs` gives the runs' starts from the store, so that the time from a run's
start to its first trial is billed too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from labkit.cluster import Lab
from labkit.cluster.capacity import worker_counts
from labkit.common.errors import ParameterError
from labkit.store import ResultStore

if TYPE_CHECKING:
    import pandas as pd


def measure_startup(workers: Any, repeats: int = 2, *, gpu: bool = False, **lab_kwargs: Any) -> pd.DataFrame:
    """Seconds a Lab of each worker count takes to start (its workers running), ``repeats`` times each.

    Parameters
    ----------
    workers : list of int
        Worker counts (as a sweep's grid has them).
    repeats : int, default 2
        Starts per count.
    gpu : bool, default False
        Start GPU Labs (``Lab(gpu=True)``); the rows' ``device`` is ``"gpu"``.
    **lab_kwargs
        Passed to :class:`~labkit.cluster.Lab` (``threads_per_worker``, ``memory_limit`` ...);
        the dashboard is off.

    Returns
    -------
    DataFrame
        ``workers``, ``device``, ``repeat``, ``startup_s``.
    """
    import pandas as pd

    counts = worker_counts(workers)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ParameterError("repeats", repeats, "an integer >= 1 (starts per worker count)")
    rows = []
    for w in counts:
        for i in range(repeats):
            t0 = time.perf_counter()
            lab = Lab(workers=w, gpu=gpu, dashboard=False, **lab_kwargs)
            took = time.perf_counter() - t0
            lab.close()
            rows.append({"workers": w, "device": "gpu" if gpu else "cpu", "repeat": i, "startup_s": took})
    return pd.DataFrame(rows)


def stored_runs(store: Any) -> pd.DataFrame:
    """The store's runs: ``run_id`` and ``started_at`` (seconds since the epoch)."""
    with ResultStore(store) as s:
        runs = s.runs_frame()
    return runs.loc[:, ["run_id", "started_at"]]
