"""What a trial used, from the Monitor's samples: peak memory, CPU, spill, network, GPU, energy, outside load.

>>> samples = [Sample(t, "w1", "memory_bytes", m) for t, m in [(0.0, 1e8), (0.5, 3e8), (1.0, 2e8)]]
>>> resource_summary(samples, start=0.2, end=0.8).peak_memory_bytes
300000000.0
>>> resource_summary(samples, start=0.2, end=0.8).energy_method     # no counter: not measured
'not measured'
>>> resource_summary(samples, start=0.2, end=0.8).under_load is None  # load not read: not measured
True
>>> samples += [Sample(t, "client", "outside_cpu_percent", v) for t, v in [(0.0, 5.0), (0.5, 80.0), (1.0, 10.0)]]
>>> s = resource_summary(samples, start=0.2, end=0.8)     # 0.3 s at 80%, 0.3 s at 10%
>>> round(s.outside_cpu_percent, 6), s.under_load, s.resources_interpolated
(45.0, True, False)
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from .alerts import AlertRules
from .energy import SOURCES, trial_energy

#: The energy counters of the client's machine, as samples name them (see :mod:`.power`).
ENERGY_METRICS = tuple(SOURCES)


class Sample(NamedTuple):
    """One measurement in long format (see :mod:`labkit.measure.monitor` for the names)."""

    time: float
    worker: str
    metric: str
    value: float


def worker_metrics(w: dict[str, Any]) -> list[tuple[str, float]]:
    """``(metric, value)`` kept of one worker's entry in ``scheduler_info()["workers"]``
    (absent values stay absent: no GPU, no GPU metrics)."""
    m = w.get("metrics") or {}
    spilled = m.get("spilled_bytes") or {}
    values = [
        ("cpu_percent", m.get("cpu")),
        ("memory_bytes", m.get("memory")),
        ("memory_limit_bytes", w.get("memory_limit") or None),
        ("managed_bytes", m.get("managed_bytes")),
        ("spilled_memory_bytes", spilled.get("memory")),
        ("spilled_disk_bytes", spilled.get("disk")),
        ("executing", (m.get("task_counts") or {}).get("executing")),
        ("gpu_utilization_percent", m.get("gpu_utilization")),
        ("gpu_memory_bytes", m.get("gpu_memory_used")),
    ]
    return [(k, float(v)) for k, v in values if v is not None]


def host_metrics(m: dict[str, Any]) -> list[tuple[str, float]]:
    """``(metric, value)`` of the host-wide counters in a worker's heartbeat metrics."""
    net, disk = m.get("host_net_io") or {}, m.get("host_disk_io") or {}
    values = [
        ("net_read_bps", net.get("read_bps")),
        ("net_write_bps", net.get("write_bps")),
        ("disk_read_bps", disk.get("read_bps")),
        ("disk_write_bps", disk.get("write_bps")),
    ]
    return [(k, float(v)) for k, v in values if v is not None]


def fresh_samples(
    workers: dict[str, Any], last_time: dict[str, float]
) -> tuple[list[Sample], list[tuple[str, dict[str, Any], float | None]]]:
    """The samples in a scheduler ``identity`` reply that are newer than ``last_time``.

    ``last_time`` (worker -> time of its latest measurement) is updated. One worker per
    host reports the host's network and disk counters. Returns the samples and, for each
    worker that reported, ``(address, metrics, memory limit)``.
    """
    reporters: dict[str, str] = {}
    for addr in sorted(workers):
        reporters.setdefault(workers[addr].get("host", addr), addr)
    new: list[Sample] = []
    reported = []
    for addr, w in workers.items():
        m = w.get("metrics") or {}
        t = m.get("time")
        if t is None or last_time.get(addr) == t:
            continue
        last_time[addr] = t
        new += [Sample(t, addr, k, v) for k, v in worker_metrics(w)]
        host = w.get("host", addr)
        if reporters.get(host) == addr:
            new += [Sample(t, f"host:{host}", k, v) for k, v in host_metrics(m)]
        reported.append((addr, m, w.get("memory_limit") or None))
    return new, reported


def client_samples(now: float) -> list[Sample]:
    """The client host's memory, through psutil (its CPU comes with the load readings of
    :mod:`labkit.measure.load`)."""
    import psutil

    return [Sample(now, "client", "memory_used_bytes", float(psutil.virtual_memory().used))]


@dataclass
class ResourceSummary:
    """What a trial used. None means "not measured" (never a guess).

    Values come from the worker measurements whose interval overlaps the trial, so their
    time resolution is one heartbeat (``resolution_s``, 0.5 s on small clusters): a trial
    shorter than that is seen through the heartbeat around it, which may also cover the
    trials next to it.
    """

    start: float
    end: float
    measurements: int  # worker heartbeats used
    workers: list[str]  # those with measurements overlapping the trial
    resolution_s: float | None  # typical time between a worker's measurements
    peak_memory_bytes: float | None  # largest worker process memory (RSS)
    peak_memory_fraction: float | None  # largest RSS / memory limit
    cpu_percent_mean: float | None  # mean over workers of each one's mean CPU % (100 = one core)
    spilled_bytes: float | None  # bytes that went to disk (sum of increases of spilled bytes)
    net_read_bytes: float | None  # host network counters (all interfaces, loopback too), summed over hosts
    net_write_bytes: float | None
    gpu_utilization_percent: float | None  # mean, where Dask's NVML support reports it
    gpu_memory_peak_bytes: float | None
    energy_j: float | None  # sum of the energy counters present on the client's host (None unless measured)
    # True: every worker ran on one machine, so the bytes between them were loopback traffic
    # (the counters add them to any other traffic of the machine); False: several machines
    net_loopback: bool | None = None
    resources_interpolated: bool | None = None  # the trial was shorter than resolution_s
    # Outside load, over the trial's window, on the most loaded of the cluster's machines
    # (and the client's): see labkit.measure.load. None where a machine was not measured.
    outside_cpu_percent: float | None = None  # CPU of other processes, 100 = one core
    outside_resolution_percent: float | None = None  # how far its counters alone can move it
    steal_percent: float | None = None  # share of CPU time the hypervisor took
    loadavg_1m: float | None = None  # counts the cluster's own threads too
    under_load: bool | None = None  # above AlertRules.outside_cpu_percent or .steal_percent
    # How energy_j was obtained (see labkit.measure.energy): "rapl", "nvml-energy", "nvml-power",
    # several joined by "+", "below-resolution" or "not measured"; what each counter measured
    energy_method: str = "not measured"
    energy_rapl_j: float | None = None  # CPU packages + DRAM
    energy_nvml_j: float | None = None  # GPUs
    energy_note: str | None = None  # what was below resolution, or what else was read
    # CPU time of the workers over the window: the sum of their mean CPU % / 100 × its length
    # (what an energy estimate multiplies by a declared watts-per-core)
    cpu_seconds: float | None = None
    energy_by_source: dict[str, float] = field(default_factory=dict)
    cpu_percent_by_worker: dict[str, float] = field(default_factory=dict)
    peak_memory_by_worker: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_metrics(self) -> dict[str, float | None]:
        """Flat scalars for a trial's metrics (per-worker detail left out)."""
        skip = {
            "start",
            "end",
            "workers",
            "energy_by_source",
            "cpu_percent_by_worker",
            "peak_memory_by_worker",
        }  # not scalars
        return {k: v for k, v in asdict(self).items() if k not in skip}


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _host(address: str) -> str:
    from distributed.comm import get_address_host

    try:
        return get_address_host(address)
    except (ValueError, TypeError):
        return address


def _window_mean(pts: list[tuple[float, float]], start: float, end: float) -> float | None:
    """Time-weighted mean over ``start..end`` of a series whose value at ``t`` describes the
    interval since the previous point; None unless known (not NaN) over all of it."""
    if end <= start:  # an instant: the interval that holds it
        return next((v for (t0, _), (t1, v) in itertools.pairwise(pts) if t0 < start <= t1 and v == v), None)
    total = covered = 0.0
    for (t0, _), (t1, v) in itertools.pairwise(pts):
        w = _overlap(t0, t1, start, end)
        if w > 0:
            if v != v:  # NaN: not measured over part of the trial
                return None
            total, covered = total + v * w, covered + w
    return total / covered if covered >= 0.999 * (end - start) else None


def _resolution(pts: list[tuple[float, float]], start: float, end: float) -> float | None:
    """How far the counters alone can move the outside CPU over ``start..end`` (percent of a
    core), from the readings' ``outside_resolution_percent``: their errors (CPU seconds) over
    the readings that overlap the window, added as independent, over the time they span, so
    that a window spanning k readings is about √k times closer than one. None where a
    reading has none."""
    span = variance = 0.0
    for (t0, _), (t1, v) in itertools.pairwise(pts):
        if _overlap(t0, t1, start, end) > 0 or (end <= start and t0 < start <= t1):
            if v != v:
                return None
            span, variance = span + (t1 - t0), variance + (v * (t1 - t0)) ** 2
    return math.sqrt(variance) / span if span > 0 else None


def _load(
    series: dict[tuple[str, str], list[tuple[float, float]]], start: float, end: float, rules: AlertRules
) -> dict[str, Any]:
    """Outside load over the trial on the most loaded machine (see :mod:`labkit.measure.load`):
    a figure is None unless every machine was measured; ``under_load`` is True as soon as
    one measured machine was above a threshold by more than its counters can move its figure."""
    per: dict[str, dict[str, float | None]] = {}
    for (w, m), pts in series.items():
        if (w == "client" or w.startswith("host:")) and pts[-1][0] > start and pts[0][0] < end:
            if m == "outside_resolution_percent":
                per.setdefault(w, {})[m] = _resolution(pts, start, end)
            elif m in ("outside_cpu_percent", "steal_percent", "loadavg_1m"):
                per.setdefault(w, {})[m] = _window_mean(pts, start, end)
    out: dict[str, Any] = {}
    for metric in ("outside_cpu_percent", "steal_percent", "loadavg_1m", "outside_resolution_percent"):
        values = [v[metric] for v in per.values() if metric in v]
        known = [x for x in values if x is not None]
        out[metric] = max(known) if known and len(known) == len(values) else None
    above = any(
        rules.under_load(
            v.get("outside_cpu_percent"), v.get("steal_percent"), resolution=v.get("outside_resolution_percent")
        )
        for v in per.values()
    )
    out["under_load"] = True if above else (None if out["outside_cpu_percent"] is None else False)
    return out


def resource_summary(
    samples: Iterable[Sample], start: float, end: float, rules: AlertRules | None = None
) -> ResourceSummary:
    """Summarise the samples (as a Monitor records them) for the time ``start..end``.

    A worker's sample at ``t`` describes the interval since its previous one; every sample
    whose interval overlaps the trial counts, rates are integrated over the overlap.
    ``rules`` gives the thresholds of ``under_load`` (default :class:`AlertRules`).
    """
    series = _series(samples)
    used = _worker_usage(series, start, end)
    net, net_hosts = _network(series, start, end)
    energy = trial_energy(series, start, end)
    load = _load(series, start, end, rules or AlertRules())
    resolution = statistics.median(used.gaps) if used.gaps else None
    return ResourceSummary(
        start,
        end,
        used.measurements,
        used.workers,
        resolution,
        peak_memory_bytes=max(used.peak.values()) if used.peak else None,
        peak_memory_fraction=max(used.frac) if used.frac else None,
        cpu_percent_mean=statistics.fmean(used.cpu.values()) if used.cpu else None,
        spilled_bytes=sum(used.spilled) if used.spilled else None,
        net_read_bytes=net["read"],
        net_write_bytes=net["write"],
        gpu_utilization_percent=statistics.fmean(used.util) if used.util else None,
        gpu_memory_peak_bytes=max(used.gpu_mem) if used.gpu_mem else None,
        energy_j=energy.joules,
        net_loopback=None if not net_hosts else len({_host(w) for w in used.workers} | net_hosts) == 1,
        resources_interpolated=None if resolution is None else end - start < resolution,
        **load,
        energy_method=energy.method,
        energy_rapl_j=energy.rapl_j,
        energy_nvml_j=energy.nvml_j,
        energy_note=energy.note,
        cpu_seconds=sum(used.cpu.values()) / 100 * max(0.0, end - start) if used.cpu else None,
        energy_by_source=energy.by_source,
        cpu_percent_by_worker=used.cpu,
        peak_memory_by_worker=used.peak,
    )


def _series(samples: Iterable[Sample]) -> defaultdict[tuple[str, str], list[tuple[float, float]]]:
    """The samples as ``(worker, metric) -> [(time, value), ...]``, each in time order."""
    series: defaultdict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        series[s.worker, s.metric].append((s.time, s.value))
    for v in series.values():
        v.sort()
    return series


class _WorkerUsage(NamedTuple):
    """What the workers' own measurements say of a trial (see :func:`_worker_usage`)."""

    workers: list[str]  # those with memory measurements overlapping the trial
    measurements: int
    gaps: list[float]  # times between a worker's memory measurements
    peak: dict[str, float]
    cpu: dict[str, float]
    frac: list[float]
    spilled: list[float]
    util: list[float]
    gpu_mem: list[float]


def _worker_usage(series: dict[tuple[str, str], list[tuple[float, float]]], start: float, end: float) -> _WorkerUsage:
    """Memory, CPU, spill and GPU of each worker over ``start..end``, from its own measurements."""
    gaps: list[float] = []

    def inside(worker: str, metric: str) -> tuple[list[float], float | None]:
        """Values overlapping the trial, and the last value before it."""
        pts, before, out, prev = series.get((worker, metric), []), None, [], None
        for t, v in pts:
            if t <= start:
                before = v
            elif prev is None or prev < end:
                out.append(v)
                if prev is not None and metric == "memory_bytes":
                    gaps.append(t - prev)
            prev = t
        return out, before

    candidates = sorted({w for w, _ in series if not w.startswith(("host:", "client"))})
    workers, peak, cpu, frac, spilled, util, gpu_mem, n = [], {}, {}, [], [], [], [], 0
    for w in candidates:
        mem, _ = inside(w, "memory_bytes")
        if not mem:
            continue
        workers.append(w)
        n += len(mem)
        peak[w] = max(mem)
        limit, _ = inside(w, "memory_limit_bytes")
        if limit and limit[-1] > 0:
            frac.append(max(mem) / limit[-1])
        c, _ = inside(w, "cpu_percent")
        if c:
            cpu[w] = statistics.fmean(c)
        disk, base = inside(w, "spilled_disk_bytes")
        if disk:
            seq = ([base] if base is not None else []) + disk
            spilled.append(sum(max(0.0, b - a) for a, b in itertools.pairwise(seq)))
        util += inside(w, "gpu_utilization_percent")[0]
        gpu_mem += inside(w, "gpu_memory_bytes")[0]
    return _WorkerUsage(workers, n, gaps, peak, cpu, frac, spilled, util, gpu_mem)


def _network(
    series: dict[tuple[str, str], list[tuple[float, float]]], start: float, end: float
) -> tuple[dict[str, float | None], set[str]]:
    """Bytes the hosts' network counters read and wrote over ``start..end`` (None: no counter
    overlapped it), and the hosts those counters came from."""
    net, net_hosts = {}, set()
    for direction in ("read", "write"):
        total, seen = 0.0, False
        for (w, metric), pts in series.items():
            if w.startswith("host:") and metric == f"net_{direction}_bps":
                for (t0, _), (t1, v) in itertools.pairwise(pts):
                    if t1 > start and t0 < end:
                        total += v * _overlap(t0, t1, start, end)
                        seen = True
                        net_hosts.add(w.removeprefix("host:"))
        net[direction] = total if seen else None
    return net, net_hosts
