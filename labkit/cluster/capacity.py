"""How many cores the cluster's threads share: oversubscription, said out loud, and worker counts that fit.

A worker count beyond the cores of its machine does not add hardware: its threads take
turns on the same cores, and a speedup measured there describes time-slicing. The Lab
reports this (:meth:`labkit.cluster.Lab.capacity`), the live view and reports show it,
and notebooks size their default worker counts with :func:`worker_counts`.

>>> Capacity({"10.0.0.5": HostCapacity(threads=4, cores=2)}).oversubscribed
True
>>> worker_counts(None, cores=6)
[1, 2, 4, 6]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.common.scheduler import scheduler_workers


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one).

    >>> usable_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class HostCapacity:
    """Worker threads placed on one host, and the cores it has (None: not measured)."""

    threads: int
    cores: int | None

    @property
    def ratio(self) -> float | None:
        """Threads per core; above 1 the threads share cores."""
        return None if not self.cores else self.threads / self.cores


@dataclass(frozen=True)
class Capacity:
    """Threads and cores per host of a cluster."""

    hosts: dict[str, HostCapacity] = field(default_factory=dict)

    @property
    def oversubscribed(self) -> bool:
        """Whether any host runs more worker threads than it has cores."""
        return any((h.ratio or 0) > 1 for h in self.hosts.values())

    @property
    def cores(self) -> int | None:
        """Cores over all hosts (None when a host's were not measured)."""
        counts = [h.cores for h in self.hosts.values()]
        return None if not counts or None in counts else sum(c for c in counts if c)

    def describe(self) -> str:
        """One sentence: threads on cores per host, and what oversubscription means.

        >>> print(Capacity({"127.0.0.1": HostCapacity(threads=4, cores=2)}).describe())
        Oversubscribed: 4 worker threads on 2 cores of 127.0.0.1 (2× as many threads as cores). Counts beyond 2 threads share cores, so their speedup measures time-slicing, not more hardware.
        """
        if not self.hosts:
            return "No workers: capacity not measured."
        parts = []
        for host, h in sorted(self.hosts.items()):
            cores = "an unknown number of cores" if h.cores is None else f"{h.cores} core{'s' if h.cores != 1 else ''}"
            parts.append(f"{h.threads} worker thread{'s' if h.threads != 1 else ''} on {cores} of {host}")
        text = "; ".join(parts)
        over = {host: h for host, h in self.hosts.items() if (h.ratio or 0) > 1}
        if not over:
            unknown = any(h.cores is None for h in self.hosts.values())
            return f"{text[0].upper()}{text[1:]}" + (
                ": cores not measured on every host." if unknown else ": no more threads than cores."
            )
        worst = max(over.values(), key=lambda h: h.ratio or 0)
        return (
            f"Oversubscribed: {text} ({worst.ratio:.3g}× as many threads as cores). Counts beyond "
            f"{worst.cores} threads share cores, so their speedup measures time-slicing, not more hardware."
        )

    def to_dict(self) -> dict[str, Any]:
        return {host: {"threads": h.threads, "cores": h.cores} for host, h in self.hosts.items()}


def cluster_capacity(client: Any, known_cores: dict[str, int | None] | None = None) -> Capacity:
    """Threads and cores per host of the cluster behind ``client``.

    Threads come from the scheduler; cores are asked of one worker per host not in
    ``known_cores`` (which is updated, so a Lab asks each host once).
    """
    known = {} if known_cores is None else known_cores
    workers = scheduler_workers(client)
    threads: dict[str, int] = {}
    first: dict[str, str] = {}
    for addr, w in sorted(workers.items()):
        host = w.get("host") or addr
        threads[host] = threads.get(host, 0) + int(w.get("nthreads") or 0)
        first.setdefault(host, addr)
    missing = [first[h] for h in threads if h not in known]
    if missing:
        try:
            answers = client.run(usable_cores, workers=missing)
        except Exception:  # noqa: BLE001 - an old or unreachable worker: its cores stay not measured
            answers = {}
        for host, addr in first.items():
            if host not in known:
                known[host] = answers.get(addr)
    return Capacity({h: HostCapacity(threads=t, cores=known.get(h)) for h, t in threads.items()})


def worker_counts(counts: Any = None, *, cores: int | None = None) -> list[int]:
    """The worker counts a notebook sweeps: ``counts`` as given, or, for None, powers of two
    up to the cores of this machine and the core count itself.

    Parameters
    ----------
    counts : list of int, int or None
        Given counts are checked and returned sorted; None sizes them to the machine.
    cores : int, optional
        Cores to size for (default: :func:`usable_cores`).

    >>> worker_counts(None, cores=2), worker_counts(None, cores=1), worker_counts([4, 1, 2])
    ([1, 2], [1], [1, 2, 4])
    """
    if counts is None:
        n = usable_cores() if cores is None else cores
        out = {1, n}
        p = 2
        while p < n:
            out.add(p)
            p *= 2
        return sorted(out)
    values = [counts] if isinstance(counts, int) else counts
    if not isinstance(values, (list, tuple)) or not values:
        raise ParameterTypeError("workers", counts, "None (sized to this machine's cores) or a list of worker counts")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ParameterError("workers", counts, "None or a list of integers >= 1")
    return sorted(set(values))
