"""The browsers that view the lab: their CPU is the lab's own overhead, not outside load.

In JupyterLab the live view's widgets and the Dask dashboard are drawn by a browser on the
same machine, and on a 2-core laptop that drawing competes with the workers. It is the lab's
doing, so it is measured and reported as lab overhead (``lab_cpu_percent``), never as outside
load (:mod:`labkit.measure.load`).

A viewer is told by what it is connected to, not by its name: a process on this machine with
an open TCP connection to a port the lab serves on (the Jupyter server's, the dashboard's),
taken with every process of its program above it (a browser's main process and its
renderers). A browser counts whole: another tab of the same browser counts as the lab's too,
which an outside-load alert then does not see.

>>> sorted(viewer_roots(set()))        # no port served: no viewer
[]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("labkit.monitor")


def serving_ports(pids: Iterable[int], client: Any = None) -> set[int]:
    """The TCP ports the Jupyter servers among ``pids`` listen on, and the dashboard's where the
    scheduler of ``client`` serves one on this machine."""
    import psutil

    ports: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if "jupyter" not in " ".join(proc.cmdline()[:3]).lower():
                continue
            ports |= {c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    port = _dashboard_port(client)
    return ports | ({port} if port else set())


def _dashboard_port(client: Any) -> int | None:
    """The port of the dashboard the client's scheduler serves, where it is on this machine."""
    from distributed.comm import get_address_host

    from .retire import local_hosts

    try:
        port = client.scheduler_info().get("services", {}).get("dashboard")
        host = get_address_host(client.scheduler.address)
    except Exception:  # noqa: BLE001 - no client, or no scheduler answer: no dashboard known
        return None
    return int(port) if port and host in local_hosts() else None


def viewer_roots(ports: set[int], exclude: Iterable[int] = ()) -> set[int]:
    """Pids of the processes that view the lab with their program's processes above them: for
    each process connected to one of ``ports`` on this machine (``exclude``: the lab's own, and
    this process), the highest ancestor that runs the same program. Empty where none is seen
    or the connections cannot be read."""
    import psutil

    if not ports:
        return set()
    skip = {os.getpid(), *exclude}
    try:
        connected = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.pid and c.raddr and c.raddr.port in ports and c.status == psutil.CONN_ESTABLISHED
        }
    except (psutil.Error, OSError) as e:  # e.g. not permitted: no viewer is known
        logger.debug("cannot read the TCP connections: %s", e)
        return set()
    return {root for pid in connected - skip if (root := _program_root(pid, skip)) is not None}


def _program_root(pid: int, skip: set[int]) -> int | None:
    """The highest ancestor of ``pid`` running the same executable, below any process in ``skip``."""
    import psutil

    try:
        proc = psutil.Process(pid)
        exe, chain = proc.exe(), [proc]
        while (parent := chain[-1].parent()) is not None and parent.pid > 1 and parent.pid not in skip:
            if parent.exe() != exe:
                break
            chain.append(parent)
    except psutil.Error:
        return None
    return chain[-1].pid
