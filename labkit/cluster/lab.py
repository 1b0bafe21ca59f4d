"""The Lab: one Dask cluster and its Client, for the length of an experiment.

>>> with Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:   # doctest: +SKIP
...     lab.scale(1)
...     lab.workers
1

``Lab()`` starts a ``distributed.LocalCluster`` sized by Dask for this machine;
``Lab(gpu=True)`` starts dask-cuda's ``LocalCUDACluster``; ``Lab(address=...)`` or
``Lab(scheduler_file=...)`` connects to a running scheduler; ``Lab(cluster=obj)`` adopts a
cluster object built elsewhere (dask-jobqueue, dask-kubernetes, a cloud service).
``security=distributed.security.Security(...)`` reaches a scheduler that speaks TLS
(``tls://`` addresses).

On a scheduler it did not start, a Lab leaves nothing behind: when it closes it removes the
scheduler plugins labkit added for it (see :data:`~labkit.cluster.launch.PLUGIN_USERS`), and
only those.
"""

from __future__ import annotations

import html
import os
import time
from typing import Any

from labkit.common import checks
from labkit.common.errors import ClusterError, ParameterError, ParameterTypeError
from labkit.common.logs import route_in_kernel
from labkit.common.scheduler import run_on_scheduler, running_tasks, scheduler_workers

from . import dashboard as dashboards
from . import launch, managers, retire
from .capacity import Capacity, cluster_capacity


class Lab:
    """A Dask cluster and its Client, as a context manager.

    Parameters
    ----------
    workers : int, optional
        Number of workers to start (default: Dask's choice for this machine, or one per
        GPU with ``gpu=True``).
    threads_per_worker : int, optional
        Threads per worker (default: Dask's choice).
    memory_limit : str or int, default "auto"
        Memory limit per worker, e.g. ``"2GiB"``; ``"auto"`` shares the machine's memory.
    gpu : bool, default False
        Start dask-cuda's ``LocalCUDACluster``. Raises
        :class:`~labkit.common.errors.BackendUnavailable` naming what is missing.
    address : str, optional
        Connect to a running scheduler, e.g. ``"tcp://host:8786"``.
    scheduler_file : str, optional
        Connect to the scheduler described by this file.
    cluster : object, optional
        Adopt a cluster object built by any cluster manager: anything with Dask's cluster
        interface (``scheduler_address``, ``scale``, ``adapt``, ``close``; see
        :mod:`~labkit.cluster.managers`), e.g. dask-jobqueue, dask-gateway, dask-kubernetes,
        Coiled. The Lab scales it only when asked (``scale``, ``adapt``, a sweep over
        ``workers``) and never closes it: it closes only its Client.
    processes : bool, default True
        Workers in separate processes (True) or threads of this process.
    dashboard : bool, default True
        Serve Dask's dashboard on ``dashboard_address``.
    dashboard_address : str, default "127.0.0.1:8787"
        Where the dashboard listens; for a busy port the Lab picks the next free one and
        says so where it shows its dashboard link (``dashboard on :8788 (8787 was busy)``).
    connect_timeout : float, default 10
        Seconds to wait for a running scheduler (``address``, ``scheduler_file``) to answer.
    start_timeout : float, default 120
        Seconds to wait for the ``workers`` of a cluster this Lab starts to be running; past
        it the Lab closes its Client and that cluster and raises
        :class:`~labkit.common.errors.ClusterError`.
    security : distributed.security.Security, optional
        TLS files (or Dask's temporary credentials) for the Client, e.g.
        ``Security(tls_ca_file=..., tls_client_cert=..., tls_client_key=..., require_encryption=True)``
        with a ``tls://`` address; with a cluster the Lab starts, that cluster uses it too.
        Checked (type, files, scheme) before connecting.
    **cluster_kwargs
        Passed to the cluster class.
    """

    def __init__(
        self,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        memory_limit: str | int | None = "auto",
        *,
        gpu: bool = False,
        address: str | None = None,
        scheduler_file: str | os.PathLike[str] | None = None,
        cluster: Any = None,
        processes: bool = True,
        dashboard: bool = True,
        dashboard_address: str = f"{launch.LOCALHOST}:8787",
        connect_timeout: float = 10.0,
        start_timeout: float = 120.0,
        security: Any = None,
        **cluster_kwargs: Any,
    ) -> None:
        checks.count("workers", workers, none=True)
        checks.count("threads_per_worker", threads_per_worker, none=True)
        launch.check_memory(memory_limit)
        for name, flag in (("processes", processes), ("dashboard", dashboard), ("gpu", gpu)):
            if not isinstance(flag, bool):
                raise ParameterTypeError(name, flag, "bool")
        launch.check_dashboard_address(dashboard_address)
        if scheduler_file is not None and not isinstance(scheduler_file, (str, os.PathLike)):
            raise ParameterTypeError("scheduler_file", scheduler_file, "a path (str or os.PathLike)")
        checks.seconds("connect_timeout", connect_timeout)
        checks.seconds("start_timeout", start_timeout)
        remote = _vet_kind(gpu, address, scheduler_file, cluster, workers, threads_per_worker, security, cluster_kwargs)

        from distributed import Client

        route_in_kernel()  # in Jupyter, Dask's logs and warnings stay out of the cells
        self.kind = "local"
        self.owns_cluster = False
        self.cluster: Any = None
        self._closed = False
        self._cores: dict[str, int | None] = {}  # host -> cores, asked once per host
        self._dash = dashboards.Dashboard(dashboard_address if dashboard else None, not (remote or cluster is not None))
        self.client: Any = None
        try:
            if remote:
                self.kind = "remote"
                self.client = launch.connect(address, scheduler_file, connect_timeout, security)
            elif cluster is not None:
                self.kind, self.cluster = "adopted", cluster
                self.client = Client(cluster)
            else:
                if security is not None:
                    cluster_kwargs["security"] = security
                self.cluster = launch.start_cluster(
                    gpu, workers, threads_per_worker, memory_limit, processes, self._dash.listen(), cluster_kwargs
                )
                self.kind, self.owns_cluster = ("gpu" if gpu else "local"), True
                self.client = Client(self.cluster)
                if workers:
                    launch.wait_started(self.client, workers, start_timeout)
        except BaseException:
            self.close()  # the Client and the cluster it started, whatever failed
            raise

    # -- what the cluster is -------------------------------------------------------------

    def _workers_info(self) -> dict[str, Any]:
        return scheduler_workers(self.client)

    @property
    def workers(self) -> int:
        """Number of workers the scheduler knows now."""
        return len(self._workers_info())

    @property
    def threads(self) -> int:
        """Total threads over all workers."""
        return sum(w["nthreads"] for w in self._workers_info().values())

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard's URL, or None when it is off.

        Inside Jupyter, where jupyter-server-proxy is installed, a cluster this Lab started
        is linked through the Jupyter server (``{prefix}proxy/{port}/status``, with
        JupyterHub's service prefix when there is one), so the link works from the browser
        that shows the notebook, on a laptop or a JupyterHub alike.
        """
        return self._dash.link(self.client)

    @property
    def dashboard_note(self) -> str | None:
        """Where the dashboard went when the port asked for was busy (``"dashboard on :8788 (8787
        was busy)"``), shown with the Lab; None when it listens where it was asked to."""
        return self._dash.note(self.client)

    def capacity(self) -> Capacity:
        """Worker threads and cores per host now; ``.oversubscribed`` and ``.describe()`` say
        whether the threads share cores (see :mod:`labkit.cluster.capacity`)."""
        return cluster_capacity(self.client, self._cores)

    def info(self) -> dict[str, Any]:
        """Plain facts about the cluster: kind, scheduler, workers, threads, memory, cores."""
        ws = self._workers_info()
        capacity = self.capacity()
        return {
            "kind": self.kind,
            "scheduler": self.client.scheduler.address,
            "workers": len(ws),
            "threads": sum(w["nthreads"] for w in ws.values()),
            "memory_limit": sum(w.get("memory_limit") or 0 for w in ws.values()),
            "cores": capacity.cores,
            "oversubscribed": capacity.oversubscribed,
            "dashboard": self.dashboard_link,
        }

    def __repr__(self) -> str:
        if self._closed:
            return "<Lab closed>"
        i = self.info()
        text = f"<Lab {i['kind']}: {i['workers']} workers, {i['threads']} threads, dashboard {i['dashboard']}>"
        notes = (self.dashboard_note, self.capacity().describe() if i["oversubscribed"] else None)
        return "\n".join([text, *(n for n in notes if n)])

    def _repr_html_(self) -> str:
        if self._closed:
            return "<p>Lab closed</p>"
        from dask.utils import format_bytes

        i = self.info()
        link = f'<a href="{i["dashboard"]}" target="_blank">{i["dashboard"]}</a>' if i["dashboard"] else "off"
        cores = "cores not measured" if i["cores"] is None else f"{i['cores']} cores"
        note, moved = self.capacity().describe() if i["oversubscribed"] else "", self.dashboard_note
        return (
            f"<p><b>Lab</b> ({i['kind']}): {i['workers']} workers, {i['threads']} threads on {cores}, "
            f"{format_bytes(i['memory_limit'])} memory; scheduler <code>{i['scheduler']}</code>; "
            f"dashboard {link}</p>"
            + (f"<p>{html.escape(moved)}</p>" if moved else "")
            + (f"<p><b>{html.escape(note)}</b></p>" if note else "")
        )

    # -- changing it -------------------------------------------------------------------

    def scale(self, n: int, *, timeout: float = 120.0) -> str | None:
        """Set the number of workers to ``n``; wait until the scheduler has exactly ``n``, then (bounded) until
        retired worker processes have exited and every worker is idle: None, or what was not (:mod:`.retire`)."""
        checks.count("n", n)
        if self.workers == n:
            return None
        if self.cluster is None:
            raise ClusterError(
                f"cannot scale to {n} workers: this Lab is connected to a scheduler by address and has no cluster object "
                "to scale. Scale that cluster where it was started, or pass Lab(cluster=...) so labkit can scale it."
            )
        before = retire.workers_now(self.client)
        self.cluster.scale(n)
        deadline = time.monotonic() + timeout
        # wait_for_workers returns at once on scale-down while the scheduler still lists the retiring ones
        while self.workers != n:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"scale({n}) did not settle within {timeout:.0f} s: the scheduler has {self.workers} workers"
                )
            time.sleep(0.05)
        return retire.settle(self.client, before)

    def adapt(self, minimum: int = 1, maximum: int | None = None, **kwargs: Any) -> Any:
        """Turn on Dask's adaptive scaling between ``minimum`` (0: scale to zero when idle) and
        ``maximum`` workers."""
        checks.count("minimum", minimum, least=0)
        checks.count("maximum", maximum, none=True)
        if maximum is not None and maximum < minimum:
            raise ParameterError("maximum", maximum, f"an integer >= minimum ({minimum})")
        if self.cluster is None:
            raise ClusterError("adapt() needs a cluster object; this Lab is connected by address")
        return self.cluster.adapt(minimum=minimum, maximum=maximum, **kwargs)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no worker thread runs a task (cancelled ones included); True if idle.

        A cancelled Python task keeps its thread until it returns, and the scheduler may
        give that worker new tasks meanwhile: after a timeout the sweep waits here so the
        next trial does not queue behind the abandoned one.
        """
        deadline = time.monotonic() + timeout
        while True:
            busy = self.client.run(running_tasks)
            if not any(busy.values()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def barrier(self, timeout: float = 300.0) -> None:
        """Return once no earlier work is running or queued: the point before a timed run.

        It waits until none of this Client's futures is pending and the scheduler has no
        unfinished task (waiting, queued, processing, or waiting for a worker) of this
        Client's, or of anyone's on a cluster this Lab started. A task the scheduler has
        cancelled but a worker thread still runs is :meth:`wait_idle`'s concern.

        Parameters
        ----------
        timeout : float, default 300
            Longest wait, in seconds.

        Raises
        ------
        ClusterError
            When earlier work is still unfinished after ``timeout`` seconds (the message
            says how many tasks, in which states).
        """
        checks.seconds("timeout", timeout)
        deadline = time.monotonic() + timeout
        client, check = self.client, launch.busy_scheduler()
        owner = None if self.owns_cluster else client.id  # on a shared scheduler, only this Client's work
        where = f"on the scheduler {client.scheduler.address}"
        pause = 0.002
        while True:
            left = deadline - time.monotonic()
            pending = sum(1 for state in list(client.futures.values()) if state.status == "pending")
            try:
                busy = (
                    {"pending futures": pending}
                    if pending
                    else run_on_scheduler(client, check, max(left, 1.0), client_id=owner, states=launch.UNFINISHED)
                )
            except TimeoutError:
                raise ClusterError(f"barrier: no answer {where} within {max(left, 1.0):g} s") from None
            if not busy:
                return
            if left <= 0:
                what = ", ".join(f"{n} {state}" for state, n in busy.items())
                raise ClusterError(
                    f"barrier: earlier work was still unfinished after {timeout:g} s ({what} {where}); "
                    "a timed run now would overlap it"
                )
            time.sleep(min(pause, left))
            pause = min(2 * pause, 0.05)

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the Client and, when this Lab started it, the cluster. Idempotent.

        On a scheduler this Lab did not start, the scheduler plugins labkit added for it are
        removed first (a plugin that was there before stays).
        """
        if self._closed:
            return
        self._closed = True
        client = getattr(self, "client", None)
        try:
            if client is not None and not self.owns_cluster and client.status == "running":
                launch.release_plugins(client)
        finally:
            try:
                if client is not None:
                    client.close()
            finally:
                if self.owns_cluster and self.cluster is not None:
                    self.cluster.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _vet_kind(
    gpu: bool,
    address: str | None,
    scheduler_file: str | os.PathLike[str] | None,
    cluster: Any,
    workers: int | None,
    threads_per_worker: int | None,
    security: Any,
    cluster_kwargs: dict[str, Any],
) -> bool:
    """Vet the kind of cluster asked for (at most one of gpu, address, scheduler_file, cluster)
    against the other arguments, before anything starts; True when it is a running scheduler's."""
    given = (
        ("gpu", bool(gpu)),
        ("address", address is not None),
        ("scheduler_file", scheduler_file is not None),
        ("cluster", cluster is not None),
    )
    sources = [k for k, v in given if v]
    if len(sources) > 1:
        raise ParameterError(
            sources[1], "given", f"only one of gpu, address, scheduler_file, cluster (also got {sources[0]})"
        )
    if scheduler_file is not None and not os.path.exists(scheduler_file):
        raise ParameterError("scheduler_file", str(scheduler_file), "the path of an existing scheduler file")
    remote = address is not None or scheduler_file is not None
    if remote and (workers or threads_per_worker or cluster_kwargs):
        raise ParameterError(
            "workers",
            workers,
            "not set when connecting to a running scheduler; use lab.scale() if its cluster can scale",
        )
    target = launch.scheduler_file_address(scheduler_file) if scheduler_file is not None else address
    launch.check_security(security, target, adopted=cluster is not None)
    launch.check_cluster_kwargs(cluster_kwargs)
    if cluster is not None:
        managers.check_cluster(cluster)
    return remote
