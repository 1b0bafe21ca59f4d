"""Starting or reaching the cluster a Lab uses, checking its options first, and what it runs on a scheduler.

The options (worker counts, memory, addresses, TLS) are checked here before any cluster
work starts. The functions a Lab runs on a scheduler (:func:`busy_scheduler`,
:func:`release_scheduler`) are built inside factories so that cloudpickle sends them by
value: a remote scheduler need not have labkit installed.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from labkit.common import logs
from labkit.common.errors import ClusterError, ParameterError, ParameterTypeError, did_you_mean
from labkit.common.scheduler import run_on_scheduler, scheduler_workers

from .interrupt import PRELOAD as INTERRUPT_PRELOAD

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"

#: Attribute that labkit sets on a scheduler plugin it added: the ids of the labkit Clients
#: using it. A Lab that closes on a scheduler it did not start removes such a plugin once no
#: connected labkit Client uses it; a plugin without the attribute was not labkit's and stays.
PLUGIN_USERS = "labkit_clients"

#: Scheduler task states of work that is not finished: waiting for inputs, queued, running,
#: or waiting for a worker that can run it.
UNFINISHED = ("waiting", "queued", "processing", "no-worker")

_TLS_FILES = ("tls_ca_file", "tls_client_cert", "tls_client_key")


def check_memory(value: Any) -> None:
    if value is None or (isinstance(value, str) and value == "auto"):
        return
    from dask.utils import parse_bytes

    ok = not isinstance(value, bool) and isinstance(value, (int, float, str))
    try:
        ok = ok and 0 < parse_bytes(value) < float("inf")
    except (ValueError, TypeError, OverflowError, AttributeError):
        ok = False
    if not ok:
        raise ParameterError("memory_limit", value, "'auto', None, a byte count, or a size such as '2GiB'")


def check_dashboard_address(value: Any) -> None:
    """A ParameterError unless ``value`` is ``"host:port"`` with a port number (0: any free one)."""
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not (host and port.isdigit() and int(port) < 65536):
        raise ParameterError("dashboard_address", value, "'host:port', e.g. '127.0.0.1:8787' (port 0: any free one)")


def check_cluster_kwargs(kwargs: dict[str, Any]) -> None:
    """A ParameterError for a keyword that neither ``LocalCluster`` nor its workers or nannies
    (nor dask-cuda's ``LocalCUDACluster``, where installed) accept: a misspelt keyword is
    refused before the scheduler starts, not with a TypeError once it runs."""
    import inspect

    from distributed import LocalCluster, Nanny, Worker

    classes: list[Any] = [LocalCluster, Worker, Nanny]
    try:
        from dask_cuda import LocalCUDACluster

        classes.append(LocalCUDACluster)
    except ImportError:
        pass
    known = {
        name
        for cls in classes
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name != "self"
    }
    for name in kwargs:
        if name not in known:
            hint = did_you_mean(name, sorted(known | {"workers", "threads_per_worker"}))
            raise ParameterError(name, kwargs[name], f"{hint}a keyword of Lab, LocalCluster, Worker or Nanny")


def start_cluster(
    gpu: bool,
    workers: int | None,
    threads: int | None,
    memory_limit: Any,
    processes: bool,
    dash: str | None,
    kwargs: dict[str, Any],
) -> Any:
    """Start the cluster a Lab owns: dask-cuda's ``LocalCUDACluster`` or a ``LocalCluster``.

    Its processes listen on 127.0.0.1 unless ``kwargs`` say otherwise (``host=...``), and
    its worker processes ignore SIGINT (:mod:`.interrupt`), so interrupting the kernel stops
    the sweep but not the cluster, and route their libraries' logs as the kernel does
    (:mod:`labkit.common.logs`).
    """
    if gpu:
        kwargs.setdefault("host", LOCALHOST)
        from .gpu import start_gpu_cluster

        return start_gpu_cluster(
            workers=workers, threads_per_worker=threads, memory_limit=memory_limit, dashboard_address=dash, **kwargs
        )
    from distributed import LocalCluster

    if processes:  # threads talk in-process; only TCP listens on a host
        kwargs.setdefault("host", LOCALHOST)
        # A kernel interrupt reaches the whole process group; the workers must outlive it. Where
        # the kernel keeps Dask's logs out of its cells, the workers' logs stay out too.
        preload = kwargs.get("preload") or []
        routed = [logs.PRELOAD] if logs.routed() else []
        kwargs["preload"] = [*([preload] if isinstance(preload, str) else preload), INTERRUPT_PRELOAD, *routed]
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        memory_limit=memory_limit,
        processes=processes,
        dashboard_address=dash,
        **kwargs,
    )


def scheduler_file_address(path: str | os.PathLike[str]) -> str:
    """The address written in a Dask scheduler file, or a ParameterError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            address = json.load(f)["address"]
    except (OSError, ValueError, KeyError, TypeError):
        address = None
    if not isinstance(address, str):
        raise ParameterError(
            "scheduler_file", os.fspath(path), "a Dask scheduler file: JSON with the scheduler's address"
        )
    return address


def check_address(address: Any) -> str:
    """The scheme of a scheduler address (``tcp`` when none is written); ParameterError if malformed."""
    from distributed.comm import parse_address
    from distributed.comm.registry import backends

    if not isinstance(address, str):
        raise ParameterTypeError("address", address, "str, e.g. 'tcp://host:8786' or 'tls://host:8786'")
    try:
        scheme, location = parse_address(address.strip())
        if scheme in ("tcp", "tls"):
            from distributed.comm.addressing import parse_host_port

            host, port = parse_host_port(location)
            location = location if host and 0 < int(port) < 65536 else ""
    except (ValueError, TypeError):
        scheme, location = "", ""
    if scheme not in backends or not location:
        allowed = ", ".join(f"{b}://" for b in sorted(backends))
        raise ParameterError("address", address, f"a scheduler address such as 'tcp://host:8786' (schemes: {allowed})")
    return scheme


def check_security(security: Any, address: str | None, *, adopted: bool = False) -> None:
    """Check a ``distributed.security.Security`` against where it will be used, before connecting.

    ``address`` is the scheduler's (None: a cluster the Lab starts or adopts). A ``tls://``
    address needs a CA file (from ``security`` or Dask's configuration); a Security that
    requires encryption needs a ``tls://`` address; the files it names must exist.
    """
    from distributed.security import Security

    scheme = None if address is None else check_address(address)
    if security is None:
        if scheme == "tls" and Security().tls_ca_file is None:
            raise ParameterError(
                "security",
                None,
                f"a distributed.security.Security(tls_ca_file=..., tls_client_cert=..., tls_client_key=...) for "
                f"the TLS scheduler at {address} (or Dask's distributed.comm.tls configuration)",
            )
        return
    if not isinstance(security, Security):
        raise ParameterTypeError("security", security, "distributed.security.Security or None")
    if adopted:
        raise ParameterError("security", security, "None with cluster=: the Client uses the adopted cluster's own")
    if scheme is not None and scheme != "tls" and security.require_encryption:
        raise ParameterError("address", address, "a tls:// address: this Security requires encryption")
    for name in _TLS_FILES:
        value = getattr(security, name)
        if value is not None and "-----BEGIN" not in value and not os.path.isfile(value):
            raise ParameterError(f"security.{name}", value, "the path of an existing PEM file (or PEM text)")
    if (security.tls_client_cert is None) != (security.tls_client_key is None):
        raise ParameterError("security", security, "both tls_client_cert and tls_client_key, or neither")


def connect(address: str | None, scheduler_file: Any, timeout: float, security: Any = None) -> Any:
    """A Client of a running scheduler, or a ClusterError that names it and says what to check."""
    from distributed import Client

    where = f"address={address!r}" if address else f"scheduler_file={os.fspath(scheduler_file)!r}"
    try:
        return Client(
            address=address,
            scheduler_file=None if scheduler_file is None else os.fspath(scheduler_file),
            timeout=timeout,
            security=security,
        )
    except (OSError, TimeoutError) as e:
        raise ClusterError(
            f"no Dask scheduler answered at {where} within {timeout:g} s ({type(e).__name__}: {e}). "
            "Check that `dask scheduler` is running there and reachable; a scheduler that uses TLS needs its "
            "tls:// address and security=Security(...). Or start a local cluster with Lab()."
        ) from None


def wait_started(client: Any, n: int, timeout: float) -> None:
    """Wait until ``n`` workers are running; a ClusterError saying what the scheduler lists if not."""
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        try:
            seen = [w.get("status", "?") for w in scheduler_workers(client, timeout=5).values()]
        except Exception:  # noqa: BLE001 - the message is the point here
            seen = []
        states = ", ".join(f"{seen.count(s)} {s}" for s in sorted(set(seen))) or "no workers"
        paused = " A paused worker is over the pause fraction of its memory limit." if "paused" in seen else ""
        raise ClusterError(
            f"{n} workers were started but they were not all running {timeout:g} s later (the scheduler "
            f"lists {states}); the Lab closed its Client and the cluster.{paused} The workers' logs say more."
        ) from None


def release_plugins(client: Any) -> None:
    """Remove from ``client``'s scheduler the plugins labkit added that no other labkit Client uses."""
    try:
        removed = run_on_scheduler(client, release_scheduler(), 10.0, client_id=client.id, attribute=PLUGIN_USERS)
    except Exception as e:  # noqa: BLE001 - the scheduler may be gone or refuse run_on_scheduler
        logger.warning("could not remove labkit's plugins from the scheduler %s: %s", client.scheduler.address, e)
        return
    if removed:
        logger.info("removed labkit's scheduler plugins %s", removed)


def busy_scheduler() -> Any:
    """A function for ``run_on_scheduler``: unfinished tasks by state, ``{}`` when none.

    With ``client_id`` None it counts every task on the scheduler; otherwise the tasks that
    Client holds (their inputs are unfinished only while they are).
    """

    def busy(dask_scheduler: Any, client_id: str | None = None, states: tuple[str, ...] = ()) -> dict[str, int]:
        counts = dict.fromkeys(states, 0)
        if client_id is None:
            # Each task's own state: the task groups' counts drift after a worker is lost
            # (seen: dozens "processing" for minutes after every task had finished).
            for ts in list(dask_scheduler.tasks.values()):
                if ts.state in counts:
                    counts[ts.state] += 1
        else:
            client = dask_scheduler.clients.get(client_id)
            for ts in client.wants_what if client is not None else ():
                if ts.state in counts:
                    counts[ts.state] += 1
        return {state: n for state, n in counts.items() if n}

    return busy


def release_scheduler() -> Any:
    """A function for ``run_on_scheduler``: forget a labkit Client as a user of the plugins
    labkit added, and remove those that no connected labkit Client uses; their names."""

    def release(dask_scheduler: Any, client_id: str, attribute: str) -> list[str]:
        removed = []
        for name, plugin in list(dask_scheduler.plugins.items()):
            users = getattr(plugin, attribute, None)
            if not isinstance(users, set):
                continue
            users.discard(client_id)
            users.intersection_update(dask_scheduler.clients)  # Clients gone without closing
            if not users:
                dask_scheduler.remove_plugin(name)
                removed.append(name)
        return removed

    return release
