"""Local stand-ins of two cluster managers, real end to end: dask-jobqueue's job path and a dask-gateway.

* :func:`jobqueue_cluster`: dask-jobqueue's ``LocalCluster``, its whole job path (a job
  script per worker, submitted and cancelled as a batch queue's would be) with local
  processes instead of a queue. The scheduler runs in this process.
* :func:`gateway_cluster`: a dask-gateway server (``dask-gateway-server``, its
  ``UnsafeLocalBackend``: schedulers and workers as local processes) started here as a
  process on 127.0.0.1, and one cluster from it through dask-gateway's client, over TLS
  through the gateway's proxy.

Both are context managers that close what they started even when the block fails: the
cluster, its jobs, the gateway server and every process it started. Everything listens on
127.0.0.1, on ports the system chose. Without the ``managers`` extra they raise
:class:`~labkit.common.errors.BackendUnavailable` naming what to install (:func:`missing`).

>>> sorted(MANAGERS)
['gateway-local', 'jobqueue-local']
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.common.errors import BackendUnavailable, ClusterError

#: The stand-ins, by name: the packages each needs.
MANAGERS = {"jobqueue-local": ("dask_jobqueue",), "gateway-local": ("dask_gateway", "dask_gateway_server")}
INSTALL = "pip install 'labkit[managers]' (dask-jobqueue, dask-gateway, dask-gateway-server)"
LOCALHOST = "127.0.0.1"


def missing(name: str) -> list[str]:
    """The packages stand-in ``name`` needs that are not installed (``[]``: it can run)."""
    return [m for m in MANAGERS[name] if importlib.util.find_spec(m) is None]


def _need(name: str) -> None:
    gone = missing(name)
    if gone:
        raise BackendUnavailable(f"{name} needs {', '.join(gone)}, not installed here: {INSTALL}")


@contextlib.contextmanager
def jobqueue_cluster(folder: str | Path | None = None) -> Iterator[Any]:
    """dask-jobqueue's ``LocalCluster`` with no workers yet: each worker a job of one process,
    one thread, no nanny (cancelling the job ends the worker), on 127.0.0.1."""
    _need("jobqueue-local")
    from dask_jobqueue.local import LocalCluster

    with contextlib.ExitStack() as stack:
        where = folder if folder is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="labkit-jq-"))
        cluster = LocalCluster(
            n_workers=0,
            cores=1,
            processes=1,
            memory="1GiB",
            nanny=False,
            python=sys.executable,
            local_directory=str(where),
            worker_extra_args=["--host", LOCALHOST, "--dashboard-address", f"{LOCALHOST}:0"],
            scheduler_options={"host": LOCALHOST, "dashboard_address": f"{LOCALHOST}:0"},
            silence_logs="error",
        )
        stack.callback(_close_jobqueue_cluster, cluster)
        yield cluster


def _close_jobqueue_cluster(cluster: Any, timeout_s: float = 30.0) -> None:
    """Close the cluster, then wait for its jobs' processes to be gone: cancelling a local job
    sends SIGKILL and returns before the process has ended."""
    import psutil

    procs = []
    for job_id in [getattr(job, "job_id", None) for job in cluster.workers.values()]:
        # only the ids: a job object kept alive here would fail the cluster's own closing check
        with contextlib.suppress(psutil.NoSuchProcess, TypeError, ValueError):
            procs.append(psutil.Process(int(job_id)))
    cluster.close()
    psutil.wait_procs(procs, timeout=timeout_s)


def free_port() -> int:
    """A port on 127.0.0.1 that the system says is free now."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def gateway_config(folder: Path, api_port: int, proxy_port: int) -> str:
    """The gateway server's configuration: local backend, loopback only, workers of one thread."""
    scheduler = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker = [sys.executable, "-m", "distributed.cli.dask_worker", "--host", LOCALHOST]
    lines = [
        f"c.DaskGateway.address = '{LOCALHOST}:{api_port}'",
        f"c.Proxy.address = '{LOCALHOST}:{proxy_port}'",
        "c.DaskGateway.backend_class = 'dask_gateway_server.backends.local.UnsafeLocalBackend'",
        "c.DaskGateway.authenticator_class = 'dask_gateway_server.auth.SimpleAuthenticator'",
        "c.DaskGateway.log_level = 'WARN'",
        f"c.LocalBackend.clusters_directory = {str(folder / 'clusters')!r}",
        f"c.ClusterConfig.scheduler_cmd = {scheduler!r}",
        f"c.ClusterConfig.worker_cmd = {worker!r}",
        "c.ClusterConfig.worker_cores = 1",
        "c.ClusterConfig.worker_threads = 1",
        "c.ClusterConfig.worker_memory = '1 G'",
        "c.ClusterConfig.adaptive_period = 1.0",
        "c.ClusterConfig.idle_timeout = 0",
    ]
    return "\n".join(lines) + "\n"


class GatewayServer:
    """A dask-gateway server process on 127.0.0.1; :meth:`stop` ends it and whatever it started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        api_port, proxy_port = free_port(), free_port()
        while proxy_port == api_port:
            proxy_port = free_port()
        self.address = f"http://{LOCALHOST}:{proxy_port}"
        config = folder / "gateway_config.py"
        config.write_text(gateway_config(folder, api_port, proxy_port))
        self.log = folder / "gateway.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dask_gateway_server", "-f", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=folder,
                start_new_session=True,  # its whole group is ended with it
            )

    def wait_ready(self, timeout_s: float) -> None:
        """Return once the gateway answers through its proxy; a ClusterError with its log if not."""
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.address}/api/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ClusterError(f"the dask-gateway server did not answer within {timeout_s:g} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (the gateway stops its clusters), then SIGKILL to what is left of its tree."""
        import psutil

        try:
            tree = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(tree, timeout=10)
        self.process.wait(10)


@contextlib.contextmanager
def gateway_cluster(folder: str | Path | None = None, timeout_s: float = 120.0) -> Iterator[Any]:
    """A dask-gateway server started here and one of its clusters, no workers yet; both closed at the end."""
    _need("gateway-local")
    from dask_gateway import BasicAuth, GatewayCluster

    with contextlib.ExitStack() as stack:
        where = folder if folder is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="labkit-gw-"))
        server = GatewayServer(Path(where))
        stack.callback(server.stop)
        server.wait_ready(timeout_s)
        cluster = GatewayCluster(server.address, auth=BasicAuth("labkit"), shutdown_on_close=True)
        stack.callback(_close_gateway_cluster, cluster)
        yield cluster


def _close_gateway_cluster(cluster: Any) -> None:
    """Shut the cluster down and close its gateway client once: that client's ``close`` is not
    idempotent, and its finaliser would close it again on a stopped loop (an error at exit)."""
    cluster.close()
    with contextlib.suppress(AttributeError):
        del cluster.gateway._loop_runner


def stand_in(name: str, folder: str | Path | None = None) -> contextlib.AbstractContextManager[Any]:
    """The stand-in called ``name`` (one of :data:`MANAGERS`), as a context manager."""
    return {"jobqueue-local": jobqueue_cluster, "gateway-local": gateway_cluster}[name](folder)
