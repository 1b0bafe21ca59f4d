"""The machine reading's scan for the lab's descendant processes: psutil's parent map and
the full process walk find the same processes (the monitor reads it every tick)."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from labkit.measure.host import _scanner


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_descendants_by_parent_map_match_the_full_walk(child: int, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = _scanner()
    fast, none = scan((os.getpid(),), False)
    walked, snapshot = scan((os.getpid(),), True)  # the snapshot path walks every process
    assert none is None and snapshot is not None and child in snapshot
    assert child in fast and child in walked
    monkeypatch.delattr(psutil, "_ppid_map")  # an older psutil: the walk, as before
    slow, _ = scan((os.getpid(),), False)
    assert child in slow
    assert {child} <= fast & slow & walked
    assert scan((), False) == (set(), None)  # no roots, no snapshot: nothing read
