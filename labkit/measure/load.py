"""Outside load on the machines a cluster runs on: CPU used by other processes, steal, load average.

A reading is a set of cumulative counters taken on one machine: the machine's CPU times
(``psutil.cpu_times()``, from ``/proc/stat`` on Linux), the CPU seconds used so far by the
cluster's own processes there (the client process, the Dask scheduler, nannies and
workers), those used by the lab's other processes (``lab_cpu_s``, see below) and the 1-minute
load average. Two readings give the load in between:

>>> cpu = lambda user, idle, steal: {"user": user, "system": 0.0, "idle": idle, "steal": steal}
>>> a = {"time": 0.0, "cpu": cpu(10.0, 100.0, 1.0), "loadavg": 1.5, "cluster_cpu_s": 4.0, "pids": [7]}
>>> b = {"time": 2.0, "cpu": cpu(14.0, 104.0, 1.0), "loadavg": 1.7, "cluster_cpu_s": 6.0, "pids": [7]}
>>> {k: round(v, 2) for k, v in load_rates(a, b).items()}  # 4 s busy, 2 the cluster's, over 2 s
{'outside_cpu_percent': 100.0, 'steal_percent': 0.0, 'loadavg_1m': 1.7, 'cpu_percent': 50.0, 'lab_cpu_percent': 0.0, 'outside_resolution_percent': 10.06}

- ``outside_cpu_percent``: CPU used by every other process, in percent of one core (100 = a
  whole core), over the interval. NaN when the cluster's processes are not known, or
  they or the lab's changed in between (a process that exited took its last CPU time along).
- ``outside_resolution_percent``: how far the counters alone can move
  ``outside_cpu_percent`` (:func:`counters_error_s` over the interval): they count in
  10 ms ticks and the machine's busy time is sampled at each tick, so a 0.25 s interval on
  2 CPUs reads to about ±30% of a core. A figure is above a threshold only by more than
  this (:meth:`~labkit.measure.alerts.AlertRules.under_load`).
- ``steal_percent``: the share of the machine's CPU time the hypervisor gave to others
  (``top``'s ``%st``); NaN where the system does not report steal.
- ``loadavg_1m``: the 1-minute load average at the second reading; it counts the
  cluster's own runnable threads too, so it is context, not outside load.
- ``cpu_percent``: the machine's CPU in use by every process, cluster's included (100 =
  all its CPUs busy, as ``psutil.cpu_percent`` but without steal).
- ``lab_cpu_percent``: lab overhead, CPU of the lab's own processes besides the cluster's
  (% of one core), never outside load: every worker process seen since the lab started
  (:mod:`labkit.cluster.retire`; retiring or starting ones too) and its children, and the
  processes above the client that run the lab (``labkit run``, papermill, the Jupyter
  server: :func:`~labkit.cluster.retire.lab_parents`). Told by the pids the lab knew and by
  ancestry, not by name: a user's other Python process, or one the client starts, is outside
  load. The dashboard and live view are in the client process; the browsers that draw them
  (connected to the Jupyter server or the dashboard: :mod:`labkit.cluster.viewers`) are the
  lab's too, whole. A machine near its threshold
  is read with a snapshot of every process's CPU (``procs``), and so is every reading that
  passes over every process anyway (at least every :data:`~labkit.measure.host.SCAN_EVERY_S`
  on Linux): two give the top outside processes an alert names
  (:func:`~labkit.measure.alerts.top_processes`, since the last snapshot).

:class:`LoadWatcher` reads the client's machine itself and every other machine with
workers through one of its workers (one ``client.run`` to those workers per tick; none for
a local cluster). Its samples are labelled ``"client"`` (the client's machine) and
``"host:<host>"`` (the others).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.cluster import retire, viewers
from labkit.common.scheduler import run_on_scheduler, run_on_workers

from .alerts import AlertRules, load_alert, processes_over, top_processes
from .host import BUSY, host_reader
from .resources import Sample

logger = logging.getLogger("labkit.monitor")

#: The load metrics, as samples name them.
LOAD_METRICS = (
    "outside_cpu_percent",
    "steal_percent",
    "loadavg_1m",
    "cpu_percent",
    "lab_cpu_percent",
    "outside_resolution_percent",
)
#: Seconds between two looks for the browsers viewing the lab (their CPU is lab overhead).
VIEWERS_EVERY_S = 10.0
#: The machine's busy CPU time fields the outside figure reads (``/proc/stat``'s summary line).
BUSY_FIELDS = BUSY  # defined with the reader, which runs on workers without labkit
NOT_BUSY = ("idle", "iowait", "steal", "guest", "guest_nice")  # guest time is counted in user and nice


@dataclass(frozen=True)
class LoadReading:
    """The latest load of one machine (None: not measured), and whether it is above the rules' thresholds."""

    time: float
    source: str  # "client" (the client's machine) or "host:<host>"
    outside_cpu_percent: float | None
    steal_percent: float | None
    loadavg_1m: float | None
    under_load: bool | None  # None: outside CPU not measured and steal not above its threshold
    lab_cpu_percent: float | None = None  # lab overhead: the lab's own processes besides the cluster's
    top: tuple[tuple[str, int, float], ...] | None = None  # (name, pid, % of a core) outside; None: not read
    outside_resolution_percent: float | None = None  # how far its counters alone can move outside_cpu_percent


def load_rates(prev: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, float]:
    """The load between two readings of one machine (NaN: not measured; all NaN but the load
    average without a previous reading); see the module docstring."""
    nan = math.nan
    out = dict.fromkeys(LOAD_METRICS, nan)
    if now.get("loadavg") is not None:
        out["loadavg_1m"] = float(now["loadavg"])
    if prev is None or not now["time"] > prev["time"]:
        return out
    dt = now["time"] - prev["time"]
    delta = {k: v - prev["cpu"][k] for k, v in now["cpu"].items() if k in prev["cpu"]}
    total = sum(v for k, v in delta.items() if k not in ("guest", "guest_nice"))
    busy = sum(v for k, v in delta.items() if k not in NOT_BUSY)
    if total > 0:
        out["cpu_percent"] = 100.0 * max(0.0, busy) / total
    if "steal" in delta and total > 0:
        out["steal_percent"] = 100.0 * max(0.0, delta["steal"]) / total
    own_prev, own_now = prev.get("cluster_cpu_s"), now.get("cluster_cpu_s")
    lab_prev, lab_now = prev.get("lab_cpu_s", 0.0), now.get("lab_cpu_s", 0.0)
    if lab_prev is None or lab_now is None or prev.get("lab_pids", []) != now.get("lab_pids", []):
        return out  # a lab process started or exited in between: its CPU meanwhile is not known
    # CPU times tick at 10 ms, a machine's and a process's apart: a little below zero is zero
    lab = max(0.0, lab_now - lab_prev)
    out["lab_cpu_percent"] = 100.0 * lab / dt
    if own_prev is not None and own_now is not None and prev.get("pids") == now.get("pids"):
        out["outside_cpu_percent"] = 100.0 * max(0.0, busy - (own_now - own_prev) - lab) / dt
        counted = len(now.get("pids") or ()) + len(now.get("lab_pids") or ())
        error = counters_error_s(counted, dt, now.get("cpus"), now.get("tick_s"))
        out["outside_resolution_percent"] = 100.0 * error / dt
    return out


def counters_error_s(processes: int, seconds: float, cpus: int | None = None, tick_s: float | None = None) -> float:
    """How far, in CPU seconds, the counters alone can move the outside CPU of one interval of
    ``seconds``: about two standard deviations of their rounding and of the machine's sampling.

    - Rounding: every counter the outside figure reads (the machine's busy fields and each
      counted process's user and system time) counts in ticks of ``tick_s`` (10 ms on
      Linux), and the difference of two readings of one counter is off by less than a tick: a
      triangular error of standard deviation ``tick/√6`` each.
    - Sampling: the machine's busy time (``/proc/stat``) is, on most kernels, counted by
      sampling each CPU at every tick, while a process's own time is its measured run time;
      over ``n = cpus × seconds / tick`` samples the busy count is off by up to
      ``tick × √(n/4)`` (one standard deviation, at its largest, half the samples busy).

    Over a 0.25 s interval on 2 CPUs with eight processes counted that is about 0.08 s, a
    third of a core: a short window's figure near a threshold of 25% cannot tell outside
    load from the counters. The sampling part grows as the square root of the interval, so
    the figure of a longer window is closer (over 5 s: about 6% of a core).

    >>> round(counters_error_s(8, 0.25, cpus=2, tick_s=0.01), 3), round(counters_error_s(8, 5.0, 2, 0.01) / 5.0, 3)
    (0.08, 0.064)
    """
    tick = tick_s or 0.01
    rounding = tick**2 * (len(BUSY_FIELDS) + 2 * processes) / 6.0
    sampling = tick * (cpus or os.cpu_count() or 1) * seconds / 4.0
    return 2.0 * math.sqrt(rounding + sampling)


def _processes() -> Any:
    """On the scheduler: its own process and every worker's ``(host, pid, has a nanny)``."""

    def processes(dask_scheduler: Any) -> dict[str, Any]:
        import os

        from distributed.comm import get_address_host

        workers = {a: (ws.host, ws.pid, ws.nanny is not None) for a, ws in dask_scheduler.workers.items()}
        return {"host": get_address_host(dask_scheduler.address), "pid": os.getpid(), "workers": workers}

    return processes


def _hosts(workers: dict[str, Any]) -> set[str]:
    return {w.get("host", a) for a, w in workers.items()}


def _on_worker() -> Any:
    read = host_reader()

    def on_worker(dask_worker: Any, plan: dict[str, tuple]) -> dict[str, Any]:
        return read(*plan[dask_worker.address])

    return on_worker


class LoadWatcher:
    """Readings of the client's machine and of every other machine with workers, as samples.

    Parameters
    ----------
    client : distributed.Client
    local_hosts : set of str
        Names and addresses of the client's machine (workers there are read in-process).
    rules : AlertRules
        The thresholds of ``under_load``.
    timeout : float
        Longest wait for the scheduler or a worker to answer.
    every : float, default 0.25
        Shortest time between two readings: CPU times count in 10 ms ticks, so a shorter
        interval would read mostly rounding. :meth:`sample` called sooner returns nothing.
    """

    def __init__(
        self, client: Any, local_hosts: set[str], rules: AlertRules, timeout: float = 5.0, every: float = 0.25
    ) -> None:
        self.client, self.local_hosts, self.rules, self.timeout, self.every = client, local_hosts, rules, timeout, every
        self._next = 0.0
        self.read_at = 0.0  # when the client's machine was last read (epoch seconds)
        self.latest: dict[str, LoadReading] = {}
        self._read = host_reader()
        self._on_worker = _on_worker()
        self._procs: dict[str, Any] | None = None  # the scheduler's answer to _processes
        self._workers: frozenset[str] = frozenset()
        self._retry_at = 0.0
        self._last: dict[str, dict[str, Any]] = {}
        self._parents = tuple(retire.lab_parents())  # above the client: labkit run, papermill, Jupyter
        self._viewers: tuple[float, set[int]] = (-math.inf, set())  # (when read, browsers viewing the lab)
        self._scan: set[str] = set()  # machines near their threshold: read with a process snapshot
        self._waited: dict[str, set[float]] = {}  # readings an alert waited for the top processes
        self._lab: deque[tuple[float, float, str, float]] = deque(maxlen=20_000)  # (from, to, source, lab %)
        self._tops: deque[tuple[float, float, str, Any]] = deque(maxlen=20_000)  # (from, to, source, top)
        self._snapped: dict[str, dict[str, Any]] = {}  # machine -> its last reading with a snapshot

    def _refresh(self, workers: dict[str, Any]) -> None:
        self._workers, self._procs = frozenset(workers), None
        try:
            self._procs = run_on_scheduler(self.client, _processes(), timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - e.g. run_on_scheduler forbidden: outside CPU not measured
            logger.debug("cannot learn the cluster's processes: %s", e)
            self._retry_at = time.monotonic() + 10.0
            return
        retire.remember(self.client, [(h, p) for h, p, _ in self._procs["workers"].values()], self.local_hosts)

    def _plan(self, workers: dict[str, Any]) -> dict[str, tuple]:
        """``machine -> (pids, nannied, lab, trees)``: the cluster's processes on each machine with
        workers and on the client's (``"client"``; pids None where they are not known), and the
        lab's other processes there (see :func:`host_reader`)."""
        machines = {"client"} | {"client" if h in self.local_hosts else h for h in _hosts(workers)}
        if self._procs is None:
            return dict.fromkeys(machines, (None, (), (), ()))
        pids: dict[str, list[int]] = {m: [] for m in machines}
        nannied: dict[str, list[int]] = {m: [] for m in machines}
        trees: dict[str, set[int]] = {m: set() for m in machines}
        pids["client"].append(os.getpid())
        hosts = [(self._procs["host"], self._procs["pid"], False), *self._procs["workers"].values()]
        for host, pid, nanny in hosts:
            m = "client" if host in self.local_hosts else host
            if m in pids and pid:
                pids[m].append(pid)
                if nanny:
                    nannied[m].append(pid)
        for host, pid in retire.known(self.client, self.local_hosts):  # workers seen, current or not
            trees.setdefault("client" if host in self.local_hosts else host, set()).add(pid)
        trees["client"].update(retire.spawned(self.client))  # an in-process cluster's, starting ones too
        trees["client"].update(self._viewing(pids["client"]))  # browsers drawing the live view or dashboard
        lab = {m: self._parents if m == "client" else () for m in machines}
        return {m: (pids[m], tuple(nannied[m]), lab[m], tuple(sorted(trees[m]))) for m in machines}

    def _viewing(self, own: list[int]) -> set[int]:
        """The browsers viewing the lab on the client's machine (:mod:`labkit.cluster.viewers`),
        looked for at most every :data:`VIEWERS_EVERY_S` (reading the connections costs a scan
        of every process's sockets)."""
        at, roots = self._viewers
        if time.monotonic() - at >= VIEWERS_EVERY_S:
            ports = viewers.serving_ports(self._parents, self.client)
            roots = viewers.viewer_roots(ports, exclude=(*own, *self._parents))
            self._viewers = (time.monotonic(), roots)
        return roots

    def sample(self, workers: dict[str, Any], force: bool = False) -> list[Sample]:
        """Read every machine once; the load since the previous reading, as samples (none
        sooner than ``every`` after the last, unless ``force``). Never raises: a machine that
        cannot be read is not measured, and the monitor goes on."""
        if not force and time.monotonic() < self._next:
            return []
        self._next = time.monotonic() + self.every
        try:
            return self._sample(workers)
        except Exception as e:  # noqa: BLE001 - e.g. /proc unreadable: the load is not measured this tick
            logger.debug("cannot read the load: %s", e)
            return []

    def _read_others(self, workers: dict[str, Any], plan: dict[str, tuple]) -> dict[str, dict[str, Any]]:
        """Readings of the machines other than the client's, each through one of its workers."""
        by_host: dict[str, str] = {}
        for addr in sorted(workers):
            by_host.setdefault(workers[addr].get("host", addr), addr)
        ask = {by_host[h]: h for h in plan if h in by_host}
        there = {a: (*plan[h], h in self._scan) for a, h in ask.items()}  # with a snapshot where near
        try:
            got = run_on_workers(self.client, self._on_worker, list(ask), timeout=self.timeout, plan=there)
        except Exception as e:  # noqa: BLE001 - a slow or lost worker: those machines not read this tick
            logger.debug("cannot read the load of %s: %s", sorted(plan), e)
            got = {}
        out = {f"host:{ask[a]}": r for a, r in got.items() if isinstance(r, dict)}
        for source, r in out.items():  # a worker process seen there and not found has exited
            if r.get("pids") is not None:
                retire.prune(self.client, source.removeprefix("host:"), [*r["pids"], *(r.get("lab_pids") or ())])
        return out

    def _sample(self, workers: dict[str, Any]) -> list[Sample]:
        if frozenset(workers) != self._workers or (self._procs is None and time.monotonic() >= self._retry_at):
            self._refresh(workers)
        plan = self._plan(workers)
        readings = {"client": self._read(*plan.pop("client"), "client" in self._scan)}
        self.read_at = readings["client"]["time"]
        if plan:
            readings.update(self._read_others(workers, plan))
        out, latest = [], {}
        for source, reading in readings.items():
            prev, self._last[source] = self._last.get(source), reading
            rates = load_rates(prev, reading)
            out += [Sample(reading["time"], source, k, v) for k, v in rates.items()]
            since = self._snapped.get(source)  # top processes since the last snapshot
            top = top_processes(since, reading)
            latest[source] = self.reading(source, reading["time"], rates, top)
            if top is not None:
                self._tops.append((since["time"], reading["time"], source, top))
            if reading.get("procs") is not None:
                self._snapped[source] = reading
            if prev is not None and not math.isnan(rates["lab_cpu_percent"]):
                self._lab.append((prev["time"], reading["time"], source, rates["lab_cpu_percent"]))
            near = self.rules.outside_cpu_percent is not None and not rates["outside_cpu_percent"] < (
                self.rules.outside_cpu_percent / 2
            )
            (self._scan.add if near else self._scan.discard)(source.removeprefix("host:"))
        for source in set(self._last) - set(readings):  # a machine no longer read: start again when it is
            del self._last[source]
            self._snapped.pop(source, None)
        self.latest = latest  # replaced whole: other threads read it
        return out

    def most_loaded(self) -> LoadReading | None:
        """The latest reading of the most loaded machine: under load first, then the highest
        outside CPU, measured before not measured (None before the first reading)."""
        return max(
            self.latest.values(),
            key=lambda r: (r.under_load is True, r.outside_cpu_percent is not None, r.outside_cpu_percent or 0.0),
            default=None,
        )

    def lab_overhead(self, start: float, end: float) -> float | None:
        """Lab overhead (``lab_cpu_percent``) over ``start..end`` on the machine where it was
        highest, time-weighted over the readings' intervals (None: not measured)."""
        per: dict[str, tuple[float, float]] = {}
        for t0, t1, source, v in list(self._lab):
            if (w := max(min(t1, end) - max(t0, start), 0.0)) > 0 or t0 <= start == end <= t1:
                total, weight = per.get(source, (0.0, 0.0))
                per[source] = (total + v * max(w, 1e-9), weight + max(w, 1e-9))
        return max((total / weight for total, weight in per.values()), default=None)

    def outside_processes(self, start: float, end: float) -> tuple[tuple[str, int, float], ...] | None:
        """The top outside processes over ``start..end`` on the machine where they used the most
        (:func:`~labkit.measure.alerts.processes_over`; None: no reading with a snapshot then)."""
        spans: dict[str, list[tuple[float, float, Any]]] = {}
        for t0, t1, source, top in list(self._tops):
            spans.setdefault(source, []).append((t0, t1, top))
        seen = [p for s in spans.values() if (p := processes_over(s, start, end)) is not None]
        return max(seen, key=lambda p: sum(x[2] for x in p), default=None)

    def alert_conditions(self, active: set[tuple[str, Any]], window_at: Callable[[float], Any]) -> list[tuple]:
        """``(kind, source, holds, message, time, window)`` of the "outside-load" condition of
        each machine at its latest reading; ``active`` are the alert episodes in progress,
        ``window_at(t)`` the trial window at time ``t``. A reading without the outside CPU
        that does not hold says nothing: it neither starts nor ends an episode. An episode
        that would start without the top outside processes known waits for them (at most two
        readings: the machine is read with a process snapshot from the next reading on)."""
        out = []
        for r in self.latest.values():
            on = ("outside-load", r.source) in active
            holds, message = load_alert(self.rules, r, on)
            outside = self.rules.under_load(r.outside_cpu_percent, None, resolution=r.outside_resolution_percent)
            if holds and not on and outside and r.top is None and len(self._waited.get(r.source, ())) < 2:
                self._waited.setdefault(r.source, set()).add(r.time)  # the same reading counts once
                continue
            self._waited.pop(r.source, None)
            if holds or r.outside_cpu_percent is not None:
                out.append(("outside-load", r.source, holds, message, r.time, window_at(r.time)))
        return out

    def reading(self, source: str, t: float, rates: dict[str, float], top: Any = None) -> LoadReading:
        """A :class:`LoadReading` of the rates (NaN becomes None) and the top outside processes."""
        v = {k: (None if math.isnan(x) else x) for k, x in rates.items()}
        outside, steal = v["outside_cpu_percent"], v["steal_percent"]
        res = v.get("outside_resolution_percent")
        under = self.rules.load_flag(outside, steal, res)
        return LoadReading(t, source, outside, steal, v["loadavg_1m"], under, v.get("lab_cpu_percent"), top, res)
