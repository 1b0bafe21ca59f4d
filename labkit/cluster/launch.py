"""Starting the clusters a Lab owns, and checking the options for them before any work starts."""

from __future__ import annotations

from typing import Any

from labkit.common.errors import ParameterError, ParameterTypeError

LOCALHOST = "127.0.0.1"


def check_count(name: str, value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterTypeError(name, value, "int" + (" or None" if allow_none else ""))
    if value < 1:
        raise ParameterError(name, value, "an integer >= 1")


def check_memory(value: Any) -> None:
    if value is None or value == "auto":
        return
    from dask.utils import parse_bytes

    try:
        ok = parse_bytes(value) > 0
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ParameterError("memory_limit", value, "'auto', None, a byte count, or a size such as '2GiB'")


def start_cluster(
    gpu: bool,
    workers: int | None,
    threads: int | None,
    memory_limit: Any,
    processes: bool,
    dash: str | None,
    kwargs: dict[str, Any],
) -> Any:
    """Start the cluster a Lab owns: dask-cuda's ``LocalCUDACluster`` or a ``LocalCluster``."""
    if gpu:
        from .gpu import start_gpu_cluster

        return start_gpu_cluster(
            workers=workers, threads_per_worker=threads, memory_limit=memory_limit, dashboard_address=dash, **kwargs
        )
    from distributed import LocalCluster

    if processes:  # threads talk in-process; only TCP listens on a host
        kwargs.setdefault("host", LOCALHOST)
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        memory_limit=memory_limit,
        processes=processes,
        dashboard_address=dash,
        **kwargs,
    )
