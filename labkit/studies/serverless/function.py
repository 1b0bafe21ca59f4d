"""The function a serverless study calls, and its three tiers of start, measured.

The function classifies one digit with a scikit-learn logistic regression trained here
(:func:`write_function` pickles it with the held-out images). Three tiers of start:

- ``process``: a fresh Python process per call (``python -c``): start the interpreter, load
  the model (scikit-learn's imports with it), answer, exit; timed from the spawn to its exit.
- ``worker``: a Dask worker started from nothing (the cluster asked for one more), then its
  first task, which loads the model and answers; timed from the ask to the answer.
- ``warm``: a worker that has the model loaded already; timed from submit to the answer.

What these are not: no virtual machine boots, no code or image is downloaded, and after
the first run the files come from a warm page cache; a cloud's cold start adds all of that.

>>> TIERS
('process', 'worker', 'warm')
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from labkit.common.errors import ClusterError
from labkit.common.scheduler import scheduler_workers

TIERS = ("process", "worker", "warm")
_LOADED: dict[str, Any] = {}
_CALL = (
    "import pickle, sys; m, x = pickle.load(open(sys.argv[1], 'rb')); "
    "print(int(m.predict(x[int(sys.argv[2]) % len(x)][None])[0]))"
)


def write_function(folder: Path, seed: int = 0) -> Path:
    """Train the function's model (seeded) and pickle it, with the held-out images, in ``folder``."""
    from sklearn.linear_model import LogisticRegression

    from labkit.workloads.learning import digits_split

    split = digits_split(seed)
    model = LogisticRegression(max_iter=200).fit(split.x_train, split.y_train)
    path = Path(folder) / "function.pkl"
    path.write_bytes(pickle.dumps((model, split.x_test)))
    return path


def handler(path: str, query: int) -> dict[str, Any]:
    """The function: load the model once per process (``init_s``), answer one query (``run_s``)."""
    from distributed import get_worker

    t0 = time.perf_counter()
    init = 0.0
    if path not in _LOADED:
        with open(path, "rb") as f:
            _LOADED[path] = pickle.load(f)
        init = time.perf_counter() - t0
    model, x = _LOADED[path]
    t1 = time.perf_counter()
    label = int(model.predict(x[query % len(x)][None])[0])
    run = time.perf_counter() - t1
    return {"label": label, "init_s": init, "run_s": run, "worker": get_worker().address, "end": time.time()}


def process_call(path: Path, query: int = 0, timeout_s: float = 120.0) -> float:
    """Seconds from spawning a fresh Python process that loads the model and answers one query to its exit."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CALL, str(path), str(query)], capture_output=True, timeout=timeout_s)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise ClusterError(f"the function's process failed: {done.stderr.decode(errors='replace')[-500:]}")
    return took


def worker_call(lab: Any, path: Path, query: int = 0, timeout_s: float = 120.0) -> float:
    """Seconds from asking the cluster for one more worker to that worker's first answer (model load included)."""
    n = lab.workers
    before, asked = set(scheduler_workers(lab.client)), time.perf_counter()
    lab.cluster.scale(n + 1)
    while not (new := set(scheduler_workers(lab.client)) - before):
        if time.perf_counter() - asked > timeout_s:
            raise ClusterError(f"no new worker within {timeout_s:g} s of asking for one")
        time.sleep(0.005)
    fut = lab.client.submit(handler, str(path), query, workers=sorted(new), allow_other_workers=False, pure=False)
    fut.result(timeout=timeout_s)
    took = time.perf_counter() - asked
    fut.release()
    lab.scale(n)
    return took


def warm_call(lab: Any, path: Path, query: int = 0, timeout_s: float = 120.0) -> float:
    """Seconds from submitting a query to a worker that has the model loaded to its answer."""
    t0 = time.perf_counter()
    lab.client.submit(handler, str(path), query, pure=False).result(timeout=timeout_s)
    return time.perf_counter() - t0


def tier_call(tier: str, lab: Any, path: Path, query: int) -> float:
    """One call of ``tier``'s start, in seconds."""
    if tier == "process":
        return process_call(path, query)
    if tier == "worker":
        return worker_call(lab, path, query)
    return warm_call(lab, path, query)


def percentiles(values: Any) -> dict[str, float]:
    """p50, p90 and p99 (s) of a tier's calls."""
    x = np.asarray(values, float)
    return {f"p{q}_s": float(np.percentile(x, q)) for q in (50, 90, 99)}
