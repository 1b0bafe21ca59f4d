"""A calibration workload with a known scaling curve: sleeping tasks.

``synthetic`` does no computing at all: its tasks sleep. Sleeping tasks do not compete for
the machine's cores, so a 2-core laptop can run it on 8 or 16 workers and still see the
curve it was configured for. That curve is the Universal Scalability Law (USL)::

    X(N) = N·X(1) / (1 + σ(N-1) + κN(N-1))

with ``σ = serial_fraction`` (contention: the part of the work only one worker can do) and
``κ = coherency`` (a cost every worker pays for every other one, as when workers must agree
on shared state). With ``κ = 0`` it is Amdahl's law.

How a run produces it. With ``T1 = work_s`` (the single-worker time) and ``N`` workers, each
with one thread, a run submits, all at once and each pinned to its worker:

- one *serial* task sleeping ``σ·T1`` on the first worker;
- ``tasks_per_worker`` *parallel* tasks per worker, each sleeping
  ``((1-σ)·T1/N + κ·(N-1)·T1) / tasks_per_worker``.

A worker runs its tasks one after another, so the first worker is busy ``σ·T1`` longer than
the others, which have nothing to do meanwhile: Amdahl's serial part. The wall time is

    T(N) = T1·(σ + (1-σ)/N + κ(N-1)) = T1·(1 + σ(N-1) + κN(N-1)) / N

and since every run does the same work, ``T1·1000`` *items* (an item is one millisecond of
single-worker work), the throughput is ``X(N) = 1000·N / (1 + σ(N-1) + κN(N-1))`` items/s:
the USL with ``X(1) = 1000`` exactly, in expectation. What a real cluster adds (scheduling,
a few milliseconds a run) appears as a slightly larger fitted σ, and shrinks as ``work_s``
grows.
"""

from __future__ import annotations

import time
from typing import Any

from labkit.common.errors import ParameterError
from labkit.common.scheduler import scheduler_workers

from .registry import BaseWorkload, ClientState, Work

ITEMS_PER_SECOND = 1000.0  # one item is one millisecond of single-worker work


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def expected_time(workers: int, work_s: float, serial_fraction: float, coherency: float) -> float:
    """Wall time of one run on ``workers`` workers, by construction (no overheads).

    >>> round(expected_time(4, 1.0, 0.1, 0.0), 3)
    0.325
    """
    n = workers
    return work_s * (serial_fraction + (1 - serial_fraction) / n + coherency * (n - 1))


class Synthetic(BaseWorkload):
    """Sleeping tasks whose throughput follows the USL with set ``σ`` and ``κ``."""

    name = "synthetic"
    description = "sleeping tasks with a known serial fraction and coherency cost (calibration)"
    defaults = {"work_s": 0.8, "serial_fraction": 0.1, "coherency": 0.0, "tasks_per_worker": 1}
    minimum = {"work_s": 1e-3, "serial_fraction": 0.0, "coherency": 0.0, "tasks_per_worker": 1}

    def check_params(self, params: dict[str, Any]) -> None:
        """The serial fraction is a share of the work: below 1."""
        if params.get("serial_fraction", 0.0) >= 1:
            raise ParameterError("synthetic.serial_fraction", params["serial_fraction"], "a fraction in [0, 1)")

    def setup(self, lab: Any, **params: Any) -> ClientState:
        self.check_params(params)
        return ClientState(lab.client, params)

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Tasks one run submits: the serial one and ``tasks_per_worker`` per worker."""
        return 1 + workers * params["tasks_per_worker"]

    def run(self, state: ClientState) -> Work:
        from distributed import wait

        client, p = state.client, state.params
        # Read at every run: the worker count is the N of the curve, whatever scaled the lab.
        info = scheduler_workers(client)
        _check_one_thread(info)
        addrs = sorted(info)
        n, m, t1 = len(addrs), p["tasks_per_worker"], p["work_s"]
        share = ((1 - p["serial_fraction"]) * t1 / n + p["coherency"] * (n - 1) * t1) / m
        # Each task is placed on its worker, but may run elsewhere should that worker leave
        # (a restarted worker comes back under a new address): a task pinned strictly to a
        # gone address would wait for it forever.
        place = {"allow_other_workers": True, "pure": False}
        futures = [client.submit(_sleep, p["serial_fraction"] * t1, workers=[addrs[0]], **place)]
        futures += [client.submit(_sleep, share, workers=[a], **place) for a in addrs for _ in range(m)]
        wait(futures)
        failed = [f for f in futures if f.status != "finished"]
        if failed:
            failed[0].result()  # raises the task's own exception
        del futures
        return Work(t1 * ITEMS_PER_SECOND, "items")


def _check_one_thread(info: dict[str, Any]) -> None:
    threads = sorted({w["nthreads"] for w in info.values()})
    if threads != [1]:
        raise ParameterError(
            "threads_per_worker",
            threads,
            "1: synthetic's tasks of one worker must run one after another for the curve to "
            "hold; start the lab with Lab(threads_per_worker=1)",
        )
