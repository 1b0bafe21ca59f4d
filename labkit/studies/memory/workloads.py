"""Memory-pressure workload: a working set sized against the workers' memory limit.

``ratio`` sets the working set as a share of the cluster's memory limit (the sum of the
workers' limits, as the scheduler reports them): 0.25 fits in memory, 2 is twice what the
workers may hold. One timed run generates the working set on the workers (uniform random
float64, seeded, blocks of ``chunk_mb``), holds all of it (``persist``), then reads it twice,
as a two-pass variance does (the mean, then the mean squared deviation), checks both against
the uniform distribution's (1/2 and 1/12, within six standard errors), and releases it.
Once the data held passes Dask's memory target (60% of a worker's limit by default) the
workers spill the oldest blocks to disk and read them back when they are needed, so the
same work is done, more slowly, instead of failing: the slowdown is the throughput
against a run that fits (``ratio`` < 0.6). On 2 workers of 512 MiB, 64 MiB blocks held 1×
and 2× the limit (the workers pausing and resuming as they spilled), while 300 MiB blocks
failed at 0.5×: a worker that passes 95% of its limit while making one block is restarted,
and after four such deaths Dask gives up on the task (``KilledWorker``), which the sweep
records as the trial's error. A disk too small for the spilled part would end it too (not
tried); ``timeout_s`` bounds a run that slows past use.

Workers also spill once their process passes 70% of the limit, so the memory their
libraries and earlier work hold (``process_bytes_before``: the workers' process memory
before the run) makes them spill sooner. What the workers spilled comes from their spill
buffers (:meth:`MemorySpill.metrics`): ``spilled_bytes`` (bytes on disk while the whole
working set was held, pickled), ``spill_write_bytes`` and ``spill_read_bytes`` (written to
and read from disk during the run); ``None`` where the workers do not spill (no memory
limit, or spilling turned off).

>>> within(0.5, 0.5 + 1e-4, standard_error=1e-4, sigmas=6)
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from labkit.common.errors import LabkitError
from labkit.common.scheduler import scheduler_workers
from labkit.workloads.registry import BaseWorkload, Work

MiB = 2**20


def within(value: float, expected: float, *, standard_error: float, sigmas: float = 6.0) -> bool:
    """Whether ``value`` is within ``sigmas`` standard errors of ``expected``."""
    return abs(value - expected) <= sigmas * standard_error


def _spill_counters(dask_worker: Any) -> dict[str, float] | None:
    process = float(dask_worker.monitor.get_process_memory())
    data = dask_worker.data
    total = getattr(data, "spilled_total", None)
    metrics = getattr(data, "cumulative_metrics", None)
    if total is None or metrics is None:
        return None
    return {
        "process": process,
        "held": float(total.disk),
        "written": float(metrics.get(("disk-write", "bytes"), 0.0)),
        "read": float(metrics.get(("disk-read", "bytes"), 0.0)),
    }


def spill_counters(client: Any) -> dict[str, float] | None:
    """Spill figures summed over the workers: their processes' memory, bytes held on disk now,
    and bytes written to and read from disk so far; None where a worker does not spill."""
    per_worker = client.run(_spill_counters)
    if not per_worker or any(v is None for v in per_worker.values()):
        return None
    return {k: sum(v[k] for v in per_worker.values()) for k in ("process", "held", "written", "read")}


def memory_limit(client: Any) -> int | None:
    """The sum of the workers' memory limits, in bytes (None where any has none)."""
    limits = [w.get("memory_limit") or 0 for w in scheduler_workers(client).values()]
    return int(sum(limits)) if limits and all(limits) else None


def _count_keys(dask_scheduler: Any, keys: list[Any]) -> int:
    return sum(k in dask_scheduler.tasks for k in keys)


@dataclass
class MemoryState:
    client: Any
    params: dict[str, Any]
    limit: int
    elements: int
    chunk: int
    last: dict[str, Any] = field(default_factory=dict)


class MemorySpill(BaseWorkload):
    """Hold and read twice a working set of ``ratio`` × the cluster's memory limit."""

    name = "memory-spill"
    description = "working set against the memory limit: spilling to disk, slowdown, failure"
    defaults = {"ratio": 0.5, "chunk_mb": 16.0}
    minimum = {"ratio": 1e-3, "chunk_mb": 1e-3}

    def setup(self, lab: Any, **params: Any) -> MemoryState:
        limit = memory_limit(lab.client)
        if limit is None:
            raise LabkitError("memory-spill needs workers with a memory limit, e.g. Lab(memory_limit='2GiB')")
        elements = max(1, int(params["ratio"] * limit) // 8)
        chunk = max(1, min(elements, int(params["chunk_mb"] * MiB) // 8))
        return MemoryState(lab.client, params, limit, elements, chunk)

    def run(self, state: MemoryState) -> Work:
        import dask
        import dask.array as da
        from distributed import futures_of, wait

        client, n = state.client, state.elements
        before = spill_counters(client)
        x = client.persist(da.random.default_rng(17).random(n, chunks=state.chunk))
        keys = [f.key for f in futures_of(x)]
        wait(x)
        held = spill_counters(client)
        mean = float(x.mean().compute())
        (var,) = dask.compute(((x - mean) ** 2).mean())
        after = spill_counters(client)
        del x
        while client.run_on_scheduler(_count_keys, keys=keys):  # released before the next run
            time.sleep(0.01)
        if not within(mean, 0.5, standard_error=(1 / (12 * n)) ** 0.5) or not within(
            float(var), 1 / 12, standard_error=(1 / (180 * n)) ** 0.5
        ):
            raise RuntimeError(f"the working set's mean {mean!r} or variance {float(var)!r} is not uniform's")
        spilled = before is not None and held is not None and after is not None
        state.last = {
            "working_set_bytes": n * 8,
            "memory_limit_bytes": state.limit,
            "process_bytes_before": before["process"] if spilled else None,
            "spilled_bytes": held["held"] if spilled else None,
            "spill_write_bytes": after["written"] - before["written"] if spilled else None,
            "spill_read_bytes": after["read"] - before["read"] if spilled else None,
        }
        return Work(float(n * 8), "bytes")

    def metrics(self, state: MemoryState) -> dict[str, Any]:
        """The working set, the memory limit and the spill figures of the last run (bytes)."""
        return dict(state.last)
