"""Where a Lab's dashboard listens and how it is linked: a free port when the one asked for is busy.

Dask, given a busy dashboard port, moves to another and warns (``UserWarning: Port 8787 is
already in use ...``) into the cell and the report. A Lab that starts a cluster looks first
(:func:`free_address`): when the port is taken it asks Dask for the next free one, so Dask
has nothing to warn about, and the Lab says where its dashboard went (:meth:`Dashboard.note`).

A Lab that starts its cluster here links to :data:`PAGE`, Dask's status page redrawn every
:data:`PERIOD_MS` instead of every 100 ms (:func:`add_calm_page`). On a small machine the
status page's redraws (the scheduler building them in its event loop, the browser drawing
them) slow the trials they show: on 2 cores, timed with benchmarks/observer.py, the quickstart's
trials took 1.5x (1 worker) and 2.1x (2 workers) as long with /status open. Dask's own pages
are all still there, one click away in the page's menu.

>>> free_address("127.0.0.1:0")
('127.0.0.1:0', None)
"""

from __future__ import annotations

import errno
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .launch import LOCALHOST

#: How many ports after a busy one are tried before the system is asked for any free one.
TRIES = 20
#: The port a Lab's dashboard asks for (``Lab(dashboard_address="127.0.0.1:8787")``).
DEFAULT_PORT = 8787
#: The settings file that points JupyterLab's Dask sidebar at it (:func:`write_sidebar_settings`).
SIDEBAR_FILE = "labkit-dask-sidebar.json"
#: The dashboard page a Lab links to when it starts the cluster: :func:`add_calm_page`.
PAGE = "labkit"
#: How often that page redraws, in milliseconds (Dask's status page: 100).
PERIOD_MS = 1000


def port_is_busy(host: str, port: int) -> bool:
    """Whether something listens on ``host:port``, asked by binding it as Dask's web server does
    (Tornado's ``bind_sockets``, address reuse on). A host that cannot be bound for another
    reason is not called busy: Dask then says what is wrong with it."""
    from tornado.netutil import bind_sockets

    try:
        sockets = bind_sockets(port, host.strip("[]") or None)
    except OSError as e:
        return e.errno in (errno.EADDRINUSE, errno.EACCES)
    for sock in sockets:
        sock.close()
    return False


def free_address(address: str) -> tuple[str, int | None]:
    """``address`` (``"host:port"``) when its port is free or 0; else the same host on the next
    free port (or on port 0, any free one, after :data:`TRIES`), and the busy port."""
    host, _, text = address.rpartition(":")
    port = int(text)
    if port == 0 or not port_is_busy(host, port):
        return address, None
    for other in range(port + 1, min(port + TRIES, 65535) + 1):
        if not port_is_busy(host, other):
            return f"{host}:{other}", port
    return f"{host}:0", port


@dataclass
class Dashboard:
    """Where a Lab's dashboard listens and how it is linked.

    ``address`` is the ``"host:port"`` asked for, or None with the dashboard off (Dask's
    scheduler serves HTTP, metrics and health, even then: on any free loopback port, not
    8787). ``local`` says whether the Lab starts the cluster on this machine. ``busy`` is the
    port :meth:`listen` found taken, if it was.
    """

    address: str | None
    local: bool
    busy: int | None = None

    def listen(self) -> str:
        """The address to give Dask for a cluster the Lab starts: the one asked for, or the
        next free port when it is busy (:func:`free_address`)."""
        if self.address is None:
            return f"{LOCALHOST}:0"
        add_calm_page()
        address, self.busy = free_address(self.address)
        return address

    def link(self, client: Any) -> str | None:
        """The dashboard's URL (see :attr:`labkit.cluster.lab.Lab.dashboard_link`), or None when it is off."""
        port = client.scheduler_info(n_workers=0).get("services", {}).get("dashboard")
        if port is None or self.address is None:
            return None
        if self.local:
            if behind_jupyter_proxy():
                prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
                return f"{prefix.rstrip('/')}/proxy/{port}/{PAGE}"
            # Dask formats the link with the scheduler's host, which for an in-process
            # cluster is the machine's public address although we bound to loopback.
            return f"http://{self.address.rpartition(':')[0]}:{port}/{PAGE}"
        return client.dashboard_link

    def note(self, client: Any) -> str | None:
        """``"dashboard on :8788 (8787 was busy)"`` where the port asked for was taken, else None;
        in JupyterLab, with what its Dask sidebar then shows."""
        if self.busy is None:
            return None
        port = client.scheduler_info(n_workers=0).get("services", {}).get("dashboard")
        text = f"dashboard on :{port} ({self.busy} was busy)"
        if self.busy == DEFAULT_PORT and behind_jupyter_proxy():
            text += f"; JupyterLab's Dask sidebar shows :{DEFAULT_PORT}'s: its search button finds this one"
        return text


def add_calm_page(period_ms: int = PERIOD_MS) -> None:
    """Serve :data:`PAGE` on the dashboard of every scheduler this process starts from now on:
    Dask's status page (the same plots, from Dask's own code) with each redraw that Dask
    schedules more often than every ``period_ms`` moved to every ``period_ms``.

    Dask's scheduler reads its pages from ``distributed.dashboard.scheduler.applications``
    when it starts; this adds one entry there, once. A scheduler in another process (a remote
    or adopted cluster) has only Dask's pages, and a Lab links those to ``/status``.
    """
    from distributed.dashboard import scheduler as pages
    from distributed.dashboard.components.scheduler import status_doc

    pages.applications.setdefault(f"/{PAGE}", functools.partial(calm_doc, status_doc, period_ms))


def calm_doc(page: Any, period_ms: int, scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    """Build Dask's ``page`` into ``doc``, then move each of its periodic redraws that runs more
    often than every ``period_ms`` to every ``period_ms``."""
    from bokeh.server.callbacks import PeriodicCallback

    page(scheduler, extra, doc)
    for callback in list(doc.session_callbacks):
        if isinstance(callback, PeriodicCallback) and callback.period < period_ms:
            doc.remove_periodic_callback(callback)
            doc.add_periodic_callback(callback.callback, period_ms)
    doc.title = f"{doc.title} (every {period_ms / 1000:g} s)"


def sidebar_settings(port: int = DEFAULT_PORT) -> dict[str, Any]:
    """dask-labextension's settings that point JupyterLab's Dask sidebar at the dashboard a Lab
    started in one of its kernels serves on ``port``, through the Jupyter server's proxy: the
    sidebar connects as soon as that dashboard is up, without a click.

    >>> sidebar_settings()
    {'dask-labextension:plugin': {'defaultURL': 'proxy/8787/status'}}
    """
    return {"dask-labextension:plugin": {"defaultURL": f"proxy/{port}/status"}}


def write_sidebar_settings(settings_dir: str | os.PathLike[str], port: int = DEFAULT_PORT) -> Path:
    """Write :func:`sidebar_settings` as an override in JupyterLab's application settings folder
    (``<prefix>/share/jupyter/lab/settings``; ``make lab`` does it for ``.venv``), in its
    ``overrides.d`` where each file adds to the others; return the file's path."""
    path = Path(settings_dir) / "overrides.d" / SIDEBAR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sidebar_settings(port), indent=2) + "\n", encoding="utf-8")
    return path


def behind_jupyter_proxy() -> bool:
    """In a kernel a Jupyter server started (it sets ``JPY_SESSION_NAME``; papermill's kernels,
    which no browser shows, have none) where that server can proxy local ports."""
    import importlib.util

    from labkit.common.jupyter import in_jupyter

    served = bool(os.environ.get("JPY_SESSION_NAME"))
    return served and in_jupyter() and importlib.util.find_spec("jupyter_server_proxy") is not None
