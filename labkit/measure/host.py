"""Readings of one machine for the load readings: its CPU counters and the CPU seconds of
chosen processes (closures, so that cloudpickle sends them by value to a worker elsewhere,
which runs them without labkit). :mod:`labkit.measure.load` turns two readings into rates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Longest time, in seconds, between two passes over every process on a machine by one reader
#: (:func:`host_reader`): the lab's process trees are looked for at least this often.
SCAN_EVERY_S = 2.0
#: Busy CPU that neither the cluster's nor the lab's known processes used since the last
#: reading, in cores, past which a reading passes over every process at once: a process the
#: lab started since the last pass (a server's workers) is then found in that reading, never
#: counted as outside load meanwhile.
RESCAN_CORES = 0.1
#: The CPU time fields of ``psutil.cpu_times()`` that are busy time (guest time is in user and nice).
BUSY = ("user", "nice", "system", "irq", "softirq")


def _cpu_counter(procs: dict[int, Any]) -> Callable[[set[int]], tuple[float, list[int]]]:
    """``cpu_of(pids)``: the CPU seconds the live ones of ``pids`` used so far, with those of the
    children each has waited for (a ``git`` or a server's worker that started and ended between
    two readings is counted with its parent, never as outside load), and which were found
    (``procs`` caches their psutil handles). A closure, so cloudpickle sends it by value."""

    def cpu_of(pids: set[int]) -> tuple[float, list[int]]:
        import os

        import psutil

        total, found = 0.0, []
        for pid in sorted(pids):
            try:
                if pid == os.getpid():
                    t: Any = os.times()
                else:
                    t = (procs.get(pid) or procs.setdefault(pid, psutil.Process(pid))).cpu_times()
            except psutil.Error:
                procs.pop(pid, None)
                continue
            total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
            found.append(pid)
        return total, found

    return cpu_of


def _proc_table() -> Callable[[], dict[int, tuple[str, int, float, float]] | None]:
    """``table()``: every process's ``(name, parent pid, CPU s, start time)`` from one read of
    each ``/proc/<pid>/stat`` (None where there is no such file: not Linux). The parents alone
    cost about as much (psutil reads the same files), so the snapshot comes nearly free."""

    def table() -> dict[int, tuple[str, int, float, float]] | None:
        import os

        if not os.path.exists("/proc/self/stat"):
            return None
        tick, out = 1.0 / os.sysconf("SC_CLK_TCK"), {}
        with open("/proc/stat", "rb") as f:  # the boot time, so that a start reads as epoch seconds
            boot = next((float(line.split()[1]) for line in f if line.startswith(b"btime ")), 0.0)
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", "rb") as f:
                        data = f.read()
                except OSError:  # it exited meanwhile
                    continue
                close = data.rindex(b")")  # the name may hold spaces and parentheses
                rest = data[close + 2 :].split()  # from field 3 (state): 4 ppid, 14 utime, 15 stime, 22 start
                name = data[data.index(b"(") + 1 : close].decode(errors="replace")
                out[int(entry.name)] = (
                    name,
                    int(rest[1]),
                    (int(rest[11]) + int(rest[12])) * tick,
                    boot + int(rest[19]) * tick,
                )
        return out

    return table


def snapshot_is_cheap() -> bool:
    """Whether a snapshot of every process's CPU costs about what the lab's own scan does
    (Linux: one pass over ``/proc`` gives both), so that each reading can take one."""
    import os

    return os.path.exists("/proc/self/stat")


def _scanner() -> Callable[[tuple[int, ...], bool], tuple[set[int], dict[int, Any] | None]]:
    """``scan(roots, top)`` for :func:`host_reader`: the descendants of ``roots`` and, with
    ``top``, every process's ``(name, CPU s, start time)`` (a closure: cloudpickle sends it by value).
    On Linux one pass over ``/proc`` gives both (:func:`_proc_table`); elsewhere psutil's."""
    table = _proc_table()

    def scan(roots: tuple[int, ...], top: bool) -> tuple[set[int], dict[int, Any] | None]:
        import psutil

        kids: dict[int, list[int]] = {}
        snap: dict[int, Any] | None = {} if top else None
        rows = table() if roots or top else None
        if rows is not None:
            for pid, (name, ppid, cpu_s, started) in rows.items():
                kids.setdefault(ppid, []).append(pid)
                if snap is not None:
                    snap[pid] = (name, cpu_s, started)
        attrs = ["ppid", "name", "cpu_times", "create_time"] if top else ["ppid"]
        for p in psutil.process_iter(attrs) if (roots or top) and rows is None else ():  # one pass over them
            kids.setdefault(p.info["ppid"], []).append(p.pid)
            if snap is not None and (t := p.info["cpu_times"]) is not None:
                snap[p.pid] = (p.info["name"] or "?", t.user + t.system, p.info["create_time"])
        out, todo = set(), list(roots)
        while todo:
            new = set(kids.get(todo.pop(), ())) - out
            out |= new
            todo += new
        return out, snap

    return scan


def _gauge() -> Callable[[float, dict[str, float], float], bool]:
    """``busier(now, cpu, counted_s)``: whether the machine (``psutil.cpu_times()``, as a dict)
    was busier since the last call than the counted processes' CPU (``counted_s``, so far) grew,
    by more than :data:`RESCAN_CORES`. A second call at the same ``now`` only records its figures.
    A closure, so cloudpickle sends it by value."""
    last: list[Any] = [None]  # the last call's (time, busy CPU s, counted CPU s)
    rescan, busy = RESCAN_CORES, BUSY

    def busier(now: float, cpu: dict[str, float], counted_s: float) -> bool:
        machine = sum(cpu.get(k, 0.0) for k in busy)
        prev, last[0] = last[0], (now, machine, counted_s)
        if prev is None or not now > prev[0]:
            return False
        return (machine - prev[1]) - (counted_s - prev[2]) > rescan * (now - prev[0])

    return busier


def _with_nannies() -> Callable[[list[int], tuple[int, ...]], set[int]]:
    """``with_nannies(pids, nannied)``: ``pids`` and the parents (their nannies) of ``nannied``,
    each parent looked up once. A closure, so cloudpickle sends it by value."""
    parents: dict[int, int] = {}  # pid -> its parent's pid

    def with_nannies(pids: list[int], nannied: tuple[int, ...]) -> set[int]:
        import psutil

        wanted = set(pids)
        for pid in nannied:
            if pid not in parents:
                try:
                    parents[pid] = psutil.Process(pid).ppid()
                except psutil.Error:
                    continue
            if parents[pid] > 1:
                wanted.add(parents[pid])
        return wanted

    return with_nannies


def host_reader() -> Callable[..., dict[str, Any]]:
    """A function ``read(pids, nannied, lab, trees, top)`` that takes a reading of the machine it runs on.

    ``pids`` are the cluster's processes there (None: not known), ``nannied`` those whose parent
    (their nanny) is the cluster's too; ``lab`` the lab's other processes and ``trees`` those
    that are the lab's with their descendants (``lab_cpu_s``, less the cluster's); ``top``: take
    a snapshot of every process's CPU (``procs``). A reading costs one read of the machine's
    counters, one per process counted and (with ``top``, or ``trees`` new or last looked for
    :data:`SCAN_EVERY_S` ago) one pass over the rest: that pass was most of the monitor's cost
    on a small cluster, so in between the trees' descendants are those the last one found. A
    reading whose machine was busier than its counted processes by :data:`RESCAN_CORES` passes
    at once: a child born since the last pass is found there (the reading's process set then
    changed, so that interval is not measured), never counted as outside load.
    Built here so that cloudpickle sends it by value: a worker elsewhere runs it without labkit.
    """
    procs: dict[int, Any] = {}  # pid -> psutil.Process
    scan, cpu_of, every = _scanner(), _cpu_counter(procs), SCAN_EVERY_S
    busier, with_nannies = _gauge(), _with_nannies()
    found: list[Any] = [float("-inf"), None, set()]  # when the trees were last scanned, which, their descendants

    def read(
        pids: list[int] | None = None,
        nannied: tuple[int, ...] = (),
        lab: tuple[int, ...] = (),
        trees: tuple[int, ...] = (),
        top: bool = False,
    ) -> dict[str, Any]:
        import os
        import time

        import psutil

        now, cpu = time.time(), psutil.cpu_times()._asdict()
        tick_s = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else None
        cpus = psutil.cpu_count() or None
        try:
            loadavg: float | None = os.getloadavg()[0]
        except (OSError, AttributeError):
            loadavg = None
        out = {
            "time": now,
            "cpu": cpu,
            "loadavg": loadavg,
            "cluster_cpu_s": None,
            "pids": None,
            "tick_s": tick_s,
            "cpus": cpus,
        }
        out |= {"lab_cpu_s": None, "lab_pids": None, "procs": None}
        if pids is None:
            return out
        wanted = with_nannies(pids, nannied)
        cheap = os.path.exists("/proc/self/stat")  # a snapshot comes with each pass
        fresh = top or trees != found[1] or now - found[0] >= every
        if fresh:
            children, out["procs"] = scan(trees, top or cheap)
            found[:] = [now, trees, children]
        mine = (set(lab) | set(trees) | found[2]) - wanted
        out["cluster_cpu_s"], out["pids"] = cpu_of(wanted)
        out["lab_cpu_s"], out["lab_pids"] = cpu_of(mine)
        if busier(now, cpu, out["cluster_cpu_s"] + out["lab_cpu_s"]) and not fresh:  # a process the lab started?
            children, out["procs"] = scan(trees, top or cheap)
            found[:] = [now, trees, children]
            mine = (set(lab) | set(trees) | children) - wanted
            out["lab_cpu_s"], out["lab_pids"] = cpu_of(mine)
            busier(now, cpu, out["cluster_cpu_s"] + out["lab_cpu_s"])  # what the next reading compares with
        for pid in set(procs) - wanted - mine:
            del procs[pid]
        return out

    return read
