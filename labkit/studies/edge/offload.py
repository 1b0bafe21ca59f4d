"""The edge study's work and its two places: the model's inference, the edge and cloud workers, the gateway.

:func:`infer` is the model: a dense layer of ``hidden`` units over the input read as rows of
64 float32 features, so its compute grows with the input's size. The *edge* worker is one
more worker of the Lab's cluster with one thread, a small memory limit (Dask's
``memory_limit``) and its process pinned to one core (``taskset``); the *cloud* worker is
the Lab's own, unconstrained. :class:`Gateway` is the cloud's front door: a TCP server on
the link's address that reads an input, has the cloud worker run the model on it (or, in
echo mode, answers at once: the link's transfer alone), and answers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import struct
import subprocess
import threading
import time
from typing import Any

import numpy as np

from labkit.common.errors import ClusterError


@functools.lru_cache(maxsize=4)
def _weights(hidden: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((64, hidden)).astype(np.float32)


def infer(payload: bytes | int, hidden: int) -> float:
    """Run the model on ``payload`` (or on that many zero bytes, made here); seconds the compute took."""
    data = bytes(payload) if isinstance(payload, int) else payload
    x = np.frombuffer(data, dtype=np.float32)[: len(data) // 256 * 64].reshape(-1, 64)
    w = _weights(hidden)
    t0 = time.perf_counter()
    for block in range(0, len(x), 512):  # 512 rows at a time: the activations stay a few MB on a small device
        float(np.maximum(x[block : block + 512] @ w, 0).sum())
    return time.perf_counter() - t0


class EdgeWorker:
    """One more worker on ``lab``'s cluster: one thread, ``memory_limit``, pinned to ``core``."""

    def __init__(self, lab: Any, memory_limit: str, core: int) -> None:
        self.lab, self.memory_limit, self.core = lab, memory_limit, core
        self.address: str | None = None
        self.cloud: str | None = None

    def __enter__(self) -> EdgeWorker:
        from distributed import Nanny

        cluster = self.lab.cluster
        if cluster is None or not hasattr(cluster, "worker_spec"):
            raise ClusterError(
                "the edge study adds a worker to the cluster: this Lab has no cluster object to add it to"
            )
        before = set(self.lab.client.scheduler_info()["workers"])
        self.cloud = sorted(before)[0]
        options = {"nthreads": 1, "memory_limit": self.memory_limit, "name": "edge", "silence_logs": logging.WARNING}
        cluster.worker_spec["edge"] = {"cls": Nanny, "options": options}
        try:
            cluster.sync(cluster._correct_state)
            self.lab.client.wait_for_workers(len(before) + 1, timeout=120)
            self.address = sorted(set(self.lab.client.scheduler_info()["workers"]) - before)[0]
            pid = self.lab.client.run(lambda: __import__("os").getpid(), workers=[self.address])[self.address]
            subprocess.run(["taskset", "-a", "-p", "-c", str(self.core), str(pid)], capture_output=True, check=True)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove the edge worker from the cluster (idempotent)."""
        cluster = self.lab.cluster
        if cluster is not None and cluster.worker_spec.pop("edge", None) is not None:
            cluster.sync(cluster._correct_state)

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise ConnectionError("the device closed the connection mid-input")
        buf += chunk
    return bytes(buf)


class Gateway:
    """A TCP server on ``host`` (a free port) that runs each input on the ``cloud`` worker and answers."""

    def __init__(self, lab: Any, cloud: str, host: str, hidden: int) -> None:
        self.lab, self.cloud, self.host, self.hidden = lab, cloud, host, hidden
        self.sock = socket.socket()
        self.compute: list[tuple[int, float]] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Gateway:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    mode, size = _read(conn, 1).decode(), struct.unpack("!Q", _read(conn, 8))[0]
                    payload = _read(conn, size)
                    took = 0.0
                    if mode == "c":
                        fut = self.lab.client.submit(infer, payload, self.hidden, workers=[self.cloud], pure=False)
                        took = fut.result()
                        self.compute.append((size, took))
                    conn.sendall(struct.pack("!d", took))
                except Exception as e:  # noqa: BLE001 - kept; the device sees a closed connection
                    self.errors.append(e)

    def close(self) -> None:
        """Stop listening and join the server thread (idempotent)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.thread.is_alive():
            self.thread.join(10.0)

    def __exit__(self, *exc: object) -> None:
        self.close()
