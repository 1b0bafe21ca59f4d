"""Questions asked of a Dask scheduler or worker that several parts of labkit need."""

from __future__ import annotations

from typing import Any


def scheduler_workers(client: Any, timeout: float | None = None) -> dict[str, Any]:
    """Every worker the scheduler knows, asked of the scheduler itself.

    ``Client.scheduler_info()`` returns a cached copy that the client's periodic refresh
    (made without workers) can replace mid-call, so it sometimes lists no workers at all.
    """
    return client.sync(client.scheduler.identity, n_workers=-1, callback_timeout=timeout)["workers"]


def running_tasks(dask_worker: Any) -> int:
    """Tasks occupying a worker's threads, cancelled ones included (run on each worker)."""
    return len(dask_worker.state.all_running_tasks)
