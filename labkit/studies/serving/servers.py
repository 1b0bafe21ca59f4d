"""Two servers for one model: ``replicas`` Dask actors, and an HTTP service under uvicorn with as many workers.

Both take queries through ``submit(index, done)``, which returns at once, and call
``done(seconds, error)`` when the answer is back (``seconds``: from handing the query on to
its answer). Both are context managers that leave nothing behind: the actors are released
and their dispatch threads joined; the uvicorn process group is stopped, waited for and its
port checked closed, even when the run inside failed.

:class:`ActorServer` holds one first-come queue in this process and one dispatch thread
per actor (a replica takes the next query when it is free: ``c`` servers, one queue).
:class:`HttpServer` runs ``uvicorn --workers N`` on 127.0.0.1 at a port the system chose
free; each query is one new connection from a pool of client threads, and a uvicorn worker
busy with a query accepts no other, so the kernel's accept queue is the one queue.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pickle
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labkit.common.errors import ClusterError

from .models import one_thread

MODEL_ENV = "LABKIT_SERVING_MODEL"
"""The environment variable that gives the HTTP service the path of its pickled model."""


class Replica:
    """A Dask actor holding one copy of the model."""

    def __init__(self, model: Any) -> None:
        one_thread()
        self.model = model

    def serve(self, query: int) -> tuple[int, float]:
        return self.model.serve(query)


class ActorServer:
    """``replicas`` actors, one on each of as many single-thread workers of ``lab`` (scaled to that)."""

    kind = "dask-actors"

    def __init__(self, lab: Any, model: Any, replicas: int) -> None:
        self.lab, self.model, self.replicas = lab, model, replicas
        self.queue: queue.Queue[Any] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.futures: list[Any] = []

    def __enter__(self) -> ActorServer:
        try:
            self.lab.scale(self.replicas)
            client = self.lab.client
            for address in sorted(client.scheduler_info()["workers"]):
                fut = client.submit(Replica, self.model, actor=True, workers=[address], allow_other_workers=False)
                self.futures.append(fut)
            actors = [f.result() for f in self.futures]
            for actor in actors:
                actor.serve(0).result()  # warm: the model is loaded and has answered once
                self.threads.append(threading.Thread(target=self._loop, args=(actor,), daemon=True))
            for t in self.threads:
                t.start()
        except BaseException:
            self.close()
            raise
        return self

    def _loop(self, actor: Any) -> None:
        while (item := self.queue.get()) is not None:
            index, done = item
            t0, error = time.perf_counter(), None
            try:
                actor.serve(index).result()
            except Exception as e:  # noqa: BLE001 - handed to the driver, which raises it after the run
                error = e
            done(time.perf_counter() - t0, error)

    def submit(self, index: int, done: Any) -> None:
        self.queue.put((index, done))

    def close(self) -> None:
        """Stop the dispatch threads and release the actors (idempotent)."""
        for _ in self.threads:
            self.queue.put(None)
        for t in self.threads:
            t.join(30.0)
        self.threads = []
        if self.futures:
            with contextlib.suppress(Exception):
                self.lab.client.cancel(self.futures)
            self.futures = []

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the system reports free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _get(port: int, path: str, timeout: float = 60.0) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise ClusterError(f"GET {path} answered {response.status}: {body[:200]!r}")
        return body
    finally:
        conn.close()


class HttpServer:
    """A FastAPI service under uvicorn with ``replicas`` worker processes on 127.0.0.1."""

    kind = "http-uvicorn"

    def __init__(self, model: Any, replicas: int, *, threads: int | None = None, start_timeout: float = 60.0) -> None:
        self.model, self.replicas, self.start_timeout = model, replicas, start_timeout
        self.threads = threads or max(16, 4 * replicas)
        self.process: subprocess.Popen[bytes] | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.folder: Path | None = None
        self.port = 0

    def __enter__(self) -> HttpServer:
        try:
            self._start()
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="labkit-http")
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="labkit-serving-"))
        (self.folder / "model.pkl").write_bytes(pickle.dumps(self.model))
        env = {**os.environ, MODEL_ENV: str(self.folder / "model.pkl"), "OMP_NUM_THREADS": "1"}
        env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
        self.port = free_port()
        command = [sys.executable, "-m", "uvicorn", "--factory", "labkit.studies.serving.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.replicas)]
        command += ["--log-level", "warning", "--no-access-log"]
        log = open(self.folder / "uvicorn.log", "wb")  # closed below: the child keeps its own copy
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until every worker process has answered (each new connection goes to a free one)."""
        deadline, seen = time.monotonic() + self.start_timeout, set()
        while len(seen) < self.replicas:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "uvicorn.log").read_text(errors="replace")[-2000:]
                raise ClusterError(f"uvicorn did not start {self.replicas} workers on port {self.port}: {log}")
            with contextlib.suppress(OSError, ClusterError):
                seen.add(_get(self.port, "/health", timeout=5.0))
                continue
            time.sleep(0.05)

    def _one(self, index: int, done: Any) -> None:
        t0, error = time.perf_counter(), None
        try:
            _get(self.port, f"/q/{index}")
        except Exception as e:  # noqa: BLE001 - handed to the driver, which raises it after the run
            error = e
        done(time.perf_counter() - t0, error)

    def submit(self, index: int, done: Any) -> None:
        self.pool.submit(self._one, index, done)

    def close(self) -> None:
        """Stop the client threads and uvicorn's process group, and remove the model's copy (idempotent)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15.0)
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __exit__(self, *exc: object) -> None:
        self.close()
