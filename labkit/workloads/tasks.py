"""Scheduler-bound workloads: many tiny tasks, to expose Dask's per-task overhead."""

from __future__ import annotations

import importlib
from typing import Any

from labkit.cluster import backends

from .registry import BaseWorkload, ClientState, Work


def _tiny(i: int, backend: str) -> float:
    """A task that does almost nothing on the chosen array module."""
    xp = importlib.import_module(backend)  # validated by the sweep; no per-task GPU probe
    return float(xp.full(1, i).sum())


class TaskOverhead(BaseWorkload):
    """``tasks`` independent tiny tasks submitted at once: throughput is tasks per second."""

    name = "task-overhead"
    defaults = {"tasks": 1000, "backend": "numpy"}
    choices = {"backend": backends.BACKENDS}
    minimum = {"tasks": 1}

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        return int(params["tasks"])

    def setup(self, lab: Any, **params: Any) -> ClientState:
        return ClientState(lab.client, params)

    def run(self, state: ClientState) -> Work:
        from distributed import wait

        n, backend = state.params["tasks"], state.params["backend"]
        futures = state.client.map(_tiny, range(n), backend=backend, pure=False)
        wait(futures)
        errors = [f for f in futures if f.status != "finished"]
        if errors:
            errors[0].result()  # raises the task's own exception
        del futures
        return Work(n, "tasks")
