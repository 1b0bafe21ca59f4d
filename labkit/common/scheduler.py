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


def run_on_scheduler(client: Any, function: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """``client.run_on_scheduler(function, **kwargs)``, giving up after ``timeout`` seconds."""
    return client.sync(client._run_on_scheduler, function, callback_timeout=timeout, **kwargs)


def run_on_workers(client: Any, function: Any, workers: list[str], timeout: float | None = None, **kwargs: Any) -> Any:
    """``client.run(function, workers=workers, on_error="return", **kwargs)``, giving up after
    ``timeout`` seconds: ``{address: result or exception}``."""
    return client.sync(client._run, function, workers=workers, on_error="return", callback_timeout=timeout, **kwargs)
