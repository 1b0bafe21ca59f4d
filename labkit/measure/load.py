"""Outside load on the machines a cluster runs on: CPU used by other processes, steal, load average.

A reading is a set of cumulative counters taken on one machine: the machine's CPU times
(``psutil.cpu_times()``, from ``/proc/stat`` on Linux), the CPU seconds used so far by the
cluster's own processes there (the client process, the Dask scheduler, nannies and
workers) and the 1-minute load average. Two readings give the load in between:

>>> cpu = lambda user, idle, steal: {"user": user, "system": 0.0, "idle": idle, "steal": steal}
>>> a = {"time": 0.0, "cpu": cpu(10.0, 100.0, 1.0), "loadavg": 1.5, "cluster_cpu_s": 4.0, "pids": [7]}
>>> b = {"time": 2.0, "cpu": cpu(14.0, 104.0, 1.0), "loadavg": 1.7, "cluster_cpu_s": 6.0, "pids": [7]}
>>> load_rates(a, b)     # 4 s busy, 2 of them the cluster's, over 2 s: one core's worth outside
{'outside_cpu_percent': 100.0, 'steal_percent': 0.0, 'loadavg_1m': 1.7, 'cpu_percent': 50.0}

- ``outside_cpu_percent``: CPU used by every other process, in percent of one core (100 = a
  whole core), over the interval. NaN when the cluster's processes are not known, or
  changed in between (a worker that starts uses CPU before labkit knows its process).
- ``steal_percent``: the share of the machine's CPU time the hypervisor gave to others
  (``top``'s ``%st``); NaN where the system does not report steal.
- ``loadavg_1m``: the 1-minute load average at the second reading; it counts the
  cluster's own runnable threads too, so it is context, not outside load.
- ``cpu_percent``: the machine's CPU in use by every process, cluster's included (100 =
  all its CPUs busy, as ``psutil.cpu_percent`` but without steal).

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.common.scheduler import run_on_scheduler, run_on_workers

from .alerts import AlertRules
from .resources import Sample

logger = logging.getLogger("labkit.monitor")

#: The load metrics, as samples name them.
LOAD_METRICS = ("outside_cpu_percent", "steal_percent", "loadavg_1m", "cpu_percent")
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
    if own_prev is not None and own_now is not None and prev.get("pids") == now.get("pids"):
        # CPU times tick at 10 ms, a machine's and a process's apart: a little below zero is zero
        out["outside_cpu_percent"] = 100.0 * max(0.0, busy - (own_now - own_prev)) / dt
    return out


def host_reader() -> Callable[..., dict[str, Any]]:
    """A function ``read(pids, nannied)`` that takes a reading of the machine it runs on.

    ``pids`` are the cluster's processes there (None: not known), ``nannied`` those of them
    whose parent process (their nanny) is the cluster's too. It keeps the processes it has
    seen, so that a reading costs one read of the machine's counters and one per process.
    Built here so that cloudpickle sends it by value: a worker on another machine runs it
    without needing labkit.
    """
    procs: dict[int, Any] = {}  # pid -> psutil.Process
    parents: dict[int, int] = {}  # pid -> its parent's pid

    def read(pids: list[int] | None = None, nannied: tuple[int, ...] = ()) -> dict[str, Any]:
        import os
        import time

        import psutil

        now, cpu = time.time(), psutil.cpu_times()._asdict()
        try:
            loadavg: float | None = os.getloadavg()[0]
        except (OSError, AttributeError):
            loadavg = None
        if pids is None:
            return {"time": now, "cpu": cpu, "loadavg": loadavg, "cluster_cpu_s": None, "pids": None}
        wanted = set(pids)
        for pid in nannied:
            if pid not in parents:
                try:
                    parents[pid] = psutil.Process(pid).ppid()
                except psutil.Error:
                    continue
            if parents[pid] > 1:
                wanted.add(parents[pid])
        own, found = 0.0, []
        for pid in sorted(wanted):
            try:
                if pid == os.getpid():
                    t: Any = os.times()
                else:
                    t = (procs.get(pid) or procs.setdefault(pid, psutil.Process(pid))).cpu_times()
            except psutil.Error:
                procs.pop(pid, None)
                continue
            own += t.user + t.system
            found.append(pid)
        for pid in set(procs) - wanted:
            del procs[pid]
        return {"time": now, "cpu": cpu, "loadavg": loadavg, "cluster_cpu_s": own, "pids": found}

    return read


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

    def on_worker(dask_worker: Any, plan: dict[str, tuple[list[int] | None, tuple[int, ...]]]) -> dict[str, Any]:
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

    def _refresh(self, workers: dict[str, Any]) -> None:
        self._workers, self._procs = frozenset(workers), None
        try:
            self._procs = run_on_scheduler(self.client, _processes(), timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - e.g. run_on_scheduler forbidden: outside CPU not measured
            logger.debug("cannot learn the cluster's processes: %s", e)
            self._retry_at = time.monotonic() + 10.0

    def _plan(self, workers: dict[str, Any]) -> dict[str, tuple[list[int] | None, tuple[int, ...]]]:
        """``machine -> (pids, nannied)``: the cluster's processes on each machine with workers
        and on the client's (``"client"``); pids None where they are not known."""
        machines = {"client"} | {"client" if h in self.local_hosts else h for h in _hosts(workers)}
        if self._procs is None:
            return dict.fromkeys(machines, (None, ()))
        pids: dict[str, list[int]] = {m: [] for m in machines}
        nannied: dict[str, list[int]] = {m: [] for m in machines}
        pids["client"].append(os.getpid())
        hosts = [(self._procs["host"], self._procs["pid"], False), *self._procs["workers"].values()]
        for host, pid, nanny in hosts:
            m = "client" if host in self.local_hosts else host
            if m in pids and pid:
                pids[m].append(pid)
                if nanny:
                    nannied[m].append(pid)
        return {m: (pids[m], tuple(nannied[m])) for m in machines}

    def sample(self, workers: dict[str, Any]) -> list[Sample]:
        """Read every machine once; the load since the previous reading, as samples. Never
        raises: a machine that cannot be read is not measured, and the monitor goes on."""
        if time.monotonic() < self._next:
            return []
        self._next = time.monotonic() + self.every
        try:
            return self._sample(workers)
        except Exception as e:  # noqa: BLE001 - e.g. /proc unreadable: the load is not measured this tick
            logger.debug("cannot read the load: %s", e)
            return []

    def _sample(self, workers: dict[str, Any]) -> list[Sample]:
        if frozenset(workers) != self._workers or (self._procs is None and time.monotonic() >= self._retry_at):
            self._refresh(workers)
        plan = self._plan(workers)
        readings = {"client": self._read(*plan.pop("client"))}
        self.read_at = readings["client"]["time"]
        if plan:
            by_host: dict[str, str] = {}
            for addr in sorted(workers):
                by_host.setdefault(workers[addr].get("host", addr), addr)
            ask = {by_host[h]: h for h in plan if h in by_host}
            try:
                got = run_on_workers(
                    self.client,
                    self._on_worker,
                    list(ask),
                    timeout=self.timeout,
                    plan={a: plan[h] for a, h in ask.items()},
                )
            except Exception as e:  # noqa: BLE001 - a slow or lost worker: those machines not read this tick
                logger.debug("cannot read the load of %s: %s", sorted(plan), e)
                got = {}
            readings.update({f"host:{ask[a]}": r for a, r in got.items() if isinstance(r, dict)})
        out, latest = [], {}
        for source, reading in readings.items():
            prev, self._last[source] = self._last.get(source), reading
            rates = load_rates(prev, reading)
            out += [Sample(reading["time"], source, k, v) for k, v in rates.items()]
            latest[source] = self.reading(source, reading["time"], rates)
        for source in set(self._last) - set(readings):  # a machine no longer read: start again when it is
            del self._last[source]
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

    def alert_conditions(self, active: set[tuple[str, Any]], window_at: Callable[[float], Any]) -> list[tuple]:
        """``(kind, source, holds, message, time, window)`` of the "outside-load" condition of
        each machine at its latest reading; ``active`` are the alert episodes in progress,
        ``window_at(t)`` the trial window at time ``t``. A reading without the outside CPU
        that does not hold says nothing: it neither starts nor ends an episode."""
        out = []
        for r in self.latest.values():
            holds, message = load_alert(self.rules, r, ("outside-load", r.source) in active)
            if holds or r.outside_cpu_percent is not None:
                out.append(("outside-load", r.source, holds, message, r.time, window_at(r.time)))
        return out

    def reading(self, source: str, t: float, rates: dict[str, float]) -> LoadReading:
        """A :class:`LoadReading` of the rates (NaN becomes None)."""
        v = {k: (None if math.isnan(x) else x) for k, x in rates.items()}
        outside, steal = v["outside_cpu_percent"], v["steal_percent"]
        under = self.rules.under_load(outside, steal) or (None if outside is None else False)
        return LoadReading(t, source, outside, steal, v["loadavg_1m"], under)


def load_alert(rules: AlertRules, reading: LoadReading, active: bool) -> tuple[bool, Callable[[], str]]:
    """Whether an "outside-load" episode holds at this reading (it starts above a threshold and
    ends once below half of each), and its message."""
    holds = rules.under_load(reading.outside_cpu_percent, reading.steal_percent, scale=0.5 if active else 1.0)

    def message() -> str:
        where = "the client's machine" if reading.source == "client" else reading.source.removeprefix("host:")
        seen = [
            f"other processes used {reading.outside_cpu_percent / 100:.2f} cores"
            if reading.outside_cpu_percent is not None
            else None,
            f"steal {reading.steal_percent:.1f}%" if reading.steal_percent is not None else None,
            f"load average {reading.loadavg_1m:.2f}" if reading.loadavg_1m is not None else None,
        ]
        limits = [
            f"{rules.outside_cpu_percent:g}% of a core outside" if rules.outside_cpu_percent is not None else None,
            f"{rules.steal_percent:g}% steal" if rules.steal_percent is not None else None,
        ]
        return (
            f"outside load on {where}: {', '.join(x for x in seen if x)} (threshold "
            f"{' or '.join(x for x in limits if x)}); trials meanwhile are flagged under_load"
        )

    return holds, message
