"""Environment capture: what ran where, stored once per run beside its trials.

>>> snap = capture()
>>> sorted(snap)[:3]
['cpu_count', 'cpu_model', 'git_commit']
>>> sorted(fingerprint_parts(snap))
['machine', 'versions']
>>> worker_shape({"tcp://a:1": {"nthreads": 2, "memory_limit": 4e9}, "tcp://b:1": {"nthreads": 2, "memory_limit": 4e9}})
{'workers': 2, 'threads_per_worker': 2, 'memory_limit': 4000000000.0, 'processes': True}
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

PACKAGES = ("labkit", "dask", "distributed", "numpy", "pandas", "cupy", "dask-cuda", "papermill")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(path: str | None = None) -> str | None:
    """The git commit of the working directory (or ``path``), with ``+dirty`` if modified."""
    try:
        cwd = path or os.getcwd()
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def capture(lab: Any = None) -> dict[str, Any]:
    """A JSON-serialisable snapshot of versions, host, GPUs, git commit and the cluster."""
    import psutil

    from .gpu import gpu_info

    snap: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_total": psutil.virtual_memory().total,
        "gpus": gpu_info(),
        "versions": {p: v for p in PACKAGES if (v := _version(p))},
        "git_commit": git_commit(),
    }
    if lab is not None:
        snap["cluster"] = lab.info()
    return snap


def fingerprint_parts(snap: dict[str, Any]) -> dict[str, Any]:
    """The machine (host, CPU, memory, GPUs) and the versions (Python and :data:`PACKAGES`)
    a snapshot describes: what a measurement depends on besides the cluster and the code."""
    machine = {k: snap.get(k) for k in ("hostname", "cpu_model", "cpu_count", "memory_total", "gpus")}
    return {"machine": machine, "versions": {"python": snap.get("python"), **(snap.get("versions") or {})}}


def worker_shape(workers: dict[str, Any]) -> dict[str, Any]:
    """The shape of a cluster from the scheduler's worker table (address -> info).

    ``threads_per_worker`` and ``memory_limit`` (bytes per worker; 0 or None: no limit) are
    single values when every worker has the same, else the sorted distinct values;
    ``processes`` is False for workers that are threads of the scheduler's process
    (``inproc://`` addresses).
    """

    def one(values: set[Any]) -> Any:
        ordered = sorted(values, key=lambda v: (v is None, v or 0))
        return ordered[0] if len(ordered) == 1 else (ordered or None)

    return {
        "workers": len(workers),
        "threads_per_worker": one({w.get("nthreads") for w in workers.values()}),
        "memory_limit": one({w.get("memory_limit") for w in workers.values()}),
        "processes": one({not str(a).startswith("inproc://") for a in workers}),
    }


def cluster_shape(client: Any) -> dict[str, Any]:
    """:func:`worker_shape` of the cluster a Dask client is connected to, asked now."""
    from labkit.common.scheduler import scheduler_workers

    return worker_shape(scheduler_workers(client))


def fingerprint(snap: dict[str, Any]) -> str:
    """A short key for the hardware and software a snapshot describes (not the cluster size)."""
    keep = {k: snap.get(k) for k in ("hostname", "cpu_model", "cpu_count", "memory_total", "gpus", "versions")}
    return hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]
