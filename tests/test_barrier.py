"""Lab.barrier waits behind running and queued work; a Lab whose workers never run closes what it opened."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import psutil
import pytest
from distributed import Client, Event, futures_of
from distributed.deploy.spec import SpecCluster

import labkit
from labkit.common.errors import ClusterError, ParameterError


def _wait_for_go(name: str) -> bool:
    """A task that runs until the test sets the Event ``name`` (at most 60 s)."""
    return Event(name).wait(60)


def test_barrier_waits_for_a_task_submitted_just_before(lab):
    lab.barrier()
    future = lab.client.submit(time.sleep, 1.5, pure=False)
    lab.barrier()
    assert future.done() and future.status == "finished"


def test_barrier_waits_for_persisted_work(lab):
    import dask.array as da

    x = lab.client.persist(da.ones(4, chunks=1).map_blocks(lambda b: time.sleep(0.4) or b, dtype=float))
    futures = futures_of(x)
    assert len(futures) == 4
    lab.barrier()
    assert all(f.done() for f in futures)
    assert float(x.sum().compute()) == 4.0


def test_barrier_counts_every_client_on_its_own_cluster_and_only_its_own_on_a_shared_one(lab):
    go = "labkit-test-barrier-go"
    with Client(lab.client.scheduler.address) as other:
        held = other.submit(_wait_for_go, go, pure=False)
        wait_until(lambda: other.processing() and any(other.processing().values()))
        # The Lab started this cluster: another Client's running task is earlier work too.
        with pytest.raises(ClusterError, match=r"1 processing on the scheduler tcp://127\.0\.0\.1:"):
            lab.barrier(timeout=0.5)
        # A Lab on a scheduler it did not start waits for its own work only.
        with labkit.Lab(address=lab.client.scheduler.address) as shared:
            shared.barrier(timeout=30)
            assert not held.done()
            own = shared.client.submit(time.sleep, 1.0, pure=False)
            shared.barrier(timeout=30)
            assert own.done() and not held.done()
        Event(go, client=other).set()
        assert held.result(timeout=30) is True
    lab.barrier(timeout=30)


def test_barrier_refuses_a_bad_timeout(lab):
    with pytest.raises(ParameterError, match="timeout"):
        lab.barrier(timeout=0)


def wait_until(condition, limit: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def _open_clients() -> set[int]:
    return {id(c) for c in list(Client._instances) if c.status not in ("closed", "closing")}


def _running_clusters() -> set[int]:
    return {id(c) for c in list(SpecCluster._instances) if c.status.name not in ("closed", "closing")}


def _spawned() -> set[int]:
    """This process's worker processes (multiprocessing children that run Dask workers)."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                out.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return out


PAUSED = """
import dask, psutil, labkit
from distributed import Client, SpecCluster
from labkit.common.errors import ClusterError

def spawned():
    return {c.pid for c in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(c.cmdline())}

clients = {id(c) for c in list(Client._instances) if c.status not in ("closed", "closing")}
# Real workers that pause at once: their process is over a tiny pause fraction of its
# memory limit, and nothing terminates them, so they never report "running".
paused = {
    "distributed.worker.memory.pause": 1e-4,
    "distributed.worker.memory.terminate": False,
    "distributed.worker.memory.monitor-interval": "10ms",
}
# A worker registers as running and its memory monitor pauses it a moment later: a Lab
# that polls in that moment starts. Such a Lab is closed and the refusal tried again.
for attempt in range(6):
    try:
        with dask.config.set(paused):
            labkit.Lab(workers=2, threads_per_worker=1, dashboard=False, start_timeout=2).close()
        print("NO ERROR")
    except ClusterError as e:
        print("ERROR", e)
        break
assert {id(c) for c in list(Client._instances) if c.status not in ("closed", "closing")} <= clients
import gc
gc.collect()  # the refused Lab's objects, held by the exception until now
assert not [c for c in list(SpecCluster._instances) if c.status.name not in ("closed", "closing")]
import time
deadline = time.monotonic() + 30
while spawned() and time.monotonic() < deadline:
    time.sleep(0.05)
print("SPAWNED LEFT", sorted(spawned()))
"""


def test_workers_that_never_run_close_the_client_and_the_cluster():
    """In a process of its own: the pause settings are global Dask config, and any worker
    another cluster of this process (re)started meanwhile would take them too."""
    done = subprocess.run([sys.executable, "-c", PAUSED], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"ERROR .*2 workers were started .* 2 paused", out), out
    assert "closed its Client and the cluster" in out and "SPAWNED LEFT []" in out, out
