"""The machine reading's scan for the lab's descendant processes and every process's CPU: one
pass over ``/proc`` and psutil's walk find the same (the monitor reads it every tick)."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from labkit.measure import host
from labkit.measure.host import _scanner


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_the_proc_table_and_psutils_walk_find_the_same_processes(child: int, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = _scanner()
    fast, none = scan((os.getpid(),), False)
    walked, snapshot = scan((os.getpid(),), True)  # the snapshot path walks every process
    assert none is None and snapshot is not None and child in snapshot
    assert child in fast and child in walked
    monkeypatch.setattr(host, "_proc_table", lambda: lambda: None)  # not Linux: psutil's walk
    slow, psutil_snapshot = host._scanner()((os.getpid(),), True)
    assert psutil_snapshot is not None and {child} <= fast & slow & walked
    name, cpu_s, _ = snapshot[child]
    assert name == psutil_snapshot[child][0] == psutil.Process(child).name()
    assert abs(cpu_s - psutil_snapshot[child][1]) < 0.5  # the same counter, read moments apart
    assert scan((), False) == (set(), None)  # no roots, no snapshot: nothing read
