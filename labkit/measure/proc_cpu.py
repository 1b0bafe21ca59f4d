"""CPU seconds of a set of processes on this machine, for the load readings (a closure sent by value)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _cpu_counter(procs: dict[int, Any]) -> Callable[[set[int]], tuple[float, list[int]]]:
    """``cpu_of(pids)``: the CPU seconds the live ones of ``pids`` used so far, and which were found
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
            total += t.user + t.system
            found.append(pid)
        return total, found

    return cpu_of
