"""Alerts: thresholds on what the Monitor sees, fired once per episode.

>>> log = AlertLog()
>>> log.update("memory", "w1", True, "w1 uses 85% of its memory limit", at=1.0).kind
'memory'
>>> log.update("memory", "w1", True, "still high", at=1.5) is None   # same episode
True
>>> _ = log.update("memory", "w1", False, "", at=2.0)               # clears: re-armed
>>> log.update("memory", "w1", True, "high again", at=2.5).message
'high again'

An alert is logged on the ``labkit.monitor`` logger (WARNING), kept in ``AlertLog.alerts``
and handed to an optional callback, which is where a sweep stores it with its trial and a
live view shows it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from labkit.common.errors import ParameterError

logger = logging.getLogger("labkit.monitor")

#: Every kind of alert, in the order a reader would care about them.
KINDS = ("worker-lost", "memory", "spill", "straggler", "outside-load", "gpu-idle")


@dataclass(frozen=True)
class Alert:
    """One alert: when, what kind, which worker (None for the cluster), and why."""

    time: float
    kind: str
    worker: str | None
    message: str
    trial: Any = None  # the trial running when it fired (its label or store id), or None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlertRules:
    """The thresholds alerts fire at.

    Parameters
    ----------
    memory_fraction : float or None, default 0.8
        Alert when a worker's process memory exceeds this fraction of its memory limit
        (None: never). Dask itself pauses a worker at 0.8 and restarts it at 0.95 by default.
    spill : bool, default True
        Alert when a worker starts holding spilled data on disk.
    worker_lost : bool, default True
        Alert when a worker disappears between two samples (outside ``Monitor.scaling()``).
    gpu_idle_percent : float or None, default 5.0
        Alert when a worker runs tasks while its GPU's utilisation is below this percent
        (only where Dask's NVML support reports utilisation; None: never).
    straggler_slowdown : float, default 1.5
        A worker is a straggler when the median time of its tasks of one kind (task prefix)
        is above this multiple of the median of the same kind of task on the other workers ...
    straggler_alpha : float, default 0.01
        ... and a one-sided Mann-Whitney U test says its durations are longer than theirs
        beyond the spread those tasks show (p below this, Bonferroni-corrected over the
        comparisons of the trial). A worker that was only less busy is never a straggler.
    straggler_min_s : float, default 0.05
        ... and the time its slow tasks took beyond the others' median adds up to at least this.
    outside_cpu_percent : float or None, default 25.0
        A trial is ``under_load`` (and an "outside-load" alert fires) when processes other
        than the cluster's (the client process, the scheduler, nannies and workers) used more
        CPU than this on one of its machines, in percent of one core (100 = a whole core),
        over the trial's window (None: never).
    steal_percent : float or None, default 5.0
        ... or when the hypervisor took more than this percent of a machine's CPU time
        (steal, where ``/proc/stat`` reports it; None: never). An alert episode ends once
        both are below half their threshold.
    """

    memory_fraction: float | None = 0.8
    spill: bool = True
    worker_lost: bool = True
    gpu_idle_percent: float | None = 5.0
    straggler_slowdown: float = 1.5
    straggler_alpha: float = 0.01
    straggler_min_s: float = 0.05
    outside_cpu_percent: float | None = 25.0
    steal_percent: float | None = 5.0

    def __post_init__(self) -> None:
        if self.memory_fraction is not None and not 0 < self.memory_fraction:
            raise ParameterError("memory_fraction", self.memory_fraction, "None or a fraction > 0")
        if self.gpu_idle_percent is not None and not 0 <= self.gpu_idle_percent <= 100:
            raise ParameterError("gpu_idle_percent", self.gpu_idle_percent, "None or a percent in 0..100")
        if not 0 < self.straggler_alpha < 1:
            raise ParameterError("straggler_alpha", self.straggler_alpha, "a probability in (0, 1)")
        if not self.straggler_slowdown > 1:
            raise ParameterError("straggler_slowdown", self.straggler_slowdown, "a ratio > 1")
        if not self.straggler_min_s >= 0:
            raise ParameterError("straggler_min_s", self.straggler_min_s, "seconds >= 0")
        if self.outside_cpu_percent is not None and not self.outside_cpu_percent >= 0:
            raise ParameterError("outside_cpu_percent", self.outside_cpu_percent, "None or a percent of one core >= 0")
        if self.steal_percent is not None and not 0 <= self.steal_percent <= 100:
            raise ParameterError("steal_percent", self.steal_percent, "None or a percent in 0..100")

    def under_load(
        self,
        outside_cpu_percent: float | None,
        steal_percent: float | None,
        *,
        scale: float = 1.0,
        resolution: float | None = None,
    ) -> bool:
        """Whether either figure is above its threshold (times ``scale``); a None figure is not above.

        ``resolution`` is how far the outside CPU figure can be off through its counters alone
        (their ticks' rounding and sampling; percent of a core; see :mod:`labkit.measure.load`):
        the figure is above its threshold only when it exceeds it by more than that, so that a
        short window's counting error is never read as someone else's load.

        >>> AlertRules().under_load(30.0, None), AlertRules().under_load(30.0, None, resolution=12.0)
        (True, False)
        """
        outside = None if outside_cpu_percent is None else outside_cpu_percent - (resolution or 0.0)
        checks = ((outside, self.outside_cpu_percent), (steal_percent, self.steal_percent))
        return any(v is not None and limit is not None and v > scale * limit for v, limit in checks)

    def load_flag(
        self, outside_cpu_percent: float | None, steal_percent: float | None, resolution: float | None = None
    ) -> bool | None:
        """A window's ``under_load``: True above a threshold (see :meth:`under_load`), None where the
        outside CPU was not measured (and steal was not above its own), else False.

        >>> rules = AlertRules()
        >>> rules.load_flag(30.0, None), rules.load_flag(None, 1.0), rules.load_flag(None, 9.0), rules.load_flag(3.0, None)
        (True, None, True, False)
        """
        if self.under_load(outside_cpu_percent, steal_percent, resolution=resolution):
            return True
        return None if outside_cpu_percent is None else False


class AlertLog:
    """Alerts fired so far, with episode tracking: a condition alerts when it starts and
    re-arms only once it has cleared.

    Parameters
    ----------
    on_alert : callable, optional
        Called with each new :class:`Alert` (from the thread that noticed it). Its
        exceptions are logged, never raised into the sampler.
    """

    def __init__(self, on_alert: Callable[[Alert], Any] | None = None) -> None:
        self.on_alert = on_alert
        self._lock = threading.Lock()
        self._alerts: list[Alert] = []
        self._active: set[tuple[str, str | None]] = set()

    @property
    def alerts(self) -> list[Alert]:
        """A copy of every alert fired, oldest first."""
        with self._lock:
            return list(self._alerts)

    def active(self) -> set[tuple[str, str | None]]:
        """``(kind, worker)`` of the episodes in progress."""
        with self._lock:
            return set(self._active)

    def update(
        self,
        kind: str,
        worker: str | None,
        active: bool,
        message: str | Callable[[], str],
        *,
        at: float,
        trial: Any = None,
    ) -> Alert | None:
        """Report whether a condition holds now; return the Alert if this starts an episode.

        ``message`` may be a callable, so that the text is only built when an alert fires.
        """
        key = (kind, worker)
        with self._lock:
            if not active:
                self._active.discard(key)
                return None
            if key in self._active:
                return None
            self._active.add(key)
        return self.event(kind, worker, message() if callable(message) else message, at=at, trial=trial)

    def event(self, kind: str, worker: str | None, message: str, *, at: float, trial: Any = None) -> Alert:
        """Fire a one-off alert (e.g. a worker lost): log it, keep it, hand it on."""
        alert = Alert(at, kind, worker, message, trial)
        with self._lock:
            self._alerts.append(alert)
        logger.warning("%s: %s", kind, message)
        if self.on_alert is not None:
            try:
                self.on_alert(alert)
            except Exception:  # a broken callback must not stop monitoring
                logger.exception("the on_alert callback failed for %r", alert)
        return alert

    def about(
        self,
        window: Any,
        kind: str,
        worker: str | None,
        holds: bool,
        message: Any,
        at: float,
        *,
        one_off: bool = False,
    ) -> Alert | None:
        """Fire (once per episode, or now with ``one_off``) an alert about the trial of
        ``window`` (a :class:`~labkit.measure.windows.TrialWindow`, or None: no trial), and
        keep it in ``window.alerts``."""
        trial = None if window is None else window.trial
        if one_off:
            alert: Alert | None = self.event(kind, worker, message, at=at, trial=trial)
        else:
            alert = self.update(kind, worker, holds, message, at=at, trial=trial)
        if alert is not None and window is not None:
            window.alerts.append(alert)
        return alert

    def forget(self, worker: str) -> None:
        """Drop the episodes of a worker that left, so a new worker at the same address starts clean."""
        with self._lock:
            self._active = {k for k in self._active if k[1] != worker}


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def worker_conditions(
    rules: AlertRules, worker: str, m: dict[str, Any], memory_limit: float | None
) -> list[tuple[str, bool, Callable[[], str]]]:
    """The per-sample conditions of one worker: ``(kind, holds, message)``.

    ``m`` is the worker's entry of ``scheduler_info()["workers"][addr]["metrics"]``.
    """
    out: list[tuple[str, bool, Callable[[], str]]] = []
    rss = m.get("memory")
    if rules.memory_fraction is not None and memory_limit and rss is not None:
        frac = rss / memory_limit
        out.append(
            (
                "memory",
                frac > rules.memory_fraction,
                lambda: (
                    f"worker {worker} uses {frac:.0%} of its memory limit ({_gib(rss)} of {_gib(memory_limit)}; alert above {rules.memory_fraction:.0%})"
                ),
            )
        )
    disk = (m.get("spilled_bytes") or {}).get("disk")
    if rules.spill and disk is not None:
        out.append(("spill", disk > 0, lambda: f"worker {worker} started spilling to disk: {_gib(disk)} spilled"))
    util = m.get("gpu_utilization")
    if rules.gpu_idle_percent is not None and util is not None:
        executing = (m.get("task_counts") or {}).get("executing")  # None: not reported, so not known busy
        out.append(
            (
                "gpu-idle",
                executing is not None and executing > 0 and util < rules.gpu_idle_percent,
                lambda: (
                    f"worker {worker} runs {executing} task(s) while its GPU is {util:.0f}% utilised (alert below {rules.gpu_idle_percent:g}%)"
                ),
            )
        )
    return out


def top_processes(prev: dict[str, Any] | None, now: dict[str, Any]) -> tuple[tuple[str, int, float], ...] | None:
    """``(name, pid, percent of a core)`` of the outside processes that used at least 1% of a
    core between two readings, most first (None: a reading has no process snapshot). One that
    started in between counts its whole CPU ("started meanwhile"); one that ended is not seen."""
    if prev is None or prev.get("procs") is None or now.get("procs") is None or not now["time"] > prev["time"]:
        return None
    dt, mine = now["time"] - prev["time"], {*(now.get("pids") or ()), *(now.get("lab_pids") or ())}
    out = []
    for pid, (name, cpu_s, started) in now["procs"].items():
        before = prev["procs"].get(pid)
        if pid not in mine and before is not None and before[2] == started:
            out.append((name, pid, 100.0 * max(0.0, cpu_s - before[1]) / dt))
        elif pid not in mine and (before is None or before[2] != started) and started >= prev["time"] - 0.01:
            out.append((f"{name} (started meanwhile)", pid, 100.0 * cpu_s / dt))
    return tuple(sorted((x for x in out if x[2] >= 1.0), key=lambda x: -x[2]))


def processes_over(spans: Any, start: float, end: float) -> tuple[tuple[str, int, float], ...] | None:
    """The outside processes over ``start..end``: each one's share of a core, time-weighted over
    the readings' spans ``(from, to, top)`` that overlap it (where a process was not seen in
    one, it used under 1% there); most first, those under 1% left out. None: no span with a
    snapshot overlaps (an instant counts in the span that holds it).

    >>> processes_over([(0.0, 1.0, (("hog", 7, 80.0),)), (1.0, 2.0, ())], 0.5, 1.5)
    (('hog', 7, 40.0),)
    """
    total: dict[tuple[str, int], float] = {}
    covered = 0.0
    for t0, t1, top in spans:
        w = max(0.0, min(t1, end) - max(t0, start)) if end > start else float(t0 < start <= t1)
        if w > 0:
            covered += w
            for name, pid, pct in top:
                total[name, pid] = total.get((name, pid), 0.0) + pct * w
    if not covered:
        return None
    out = ((name, pid, v / covered) for (name, pid), v in total.items())
    return tuple(sorted((x for x in out if x[2] >= 1.0), key=lambda x: -x[2]))


def processes_words(top: Any, most: int = 5) -> str:
    """``(name, pid, percent of a core)`` in words, most first.

    >>> processes_words((("python3", 4242, 64.5), ("chromium", 17, 3.0)))
    'python3 (pid 4242) 0.65 cores, chromium (pid 17) 0.03 cores'
    """
    return ", ".join(f"{name} (pid {pid}) {pct / 100:.2f} cores" for name, pid, pct in tuple(top or ())[:most])


def outside_words(top: Any) -> str:
    """A flagged trial's outside processes in words: :func:`processes_words`, "not read" where
    no snapshot covered it (None), or that none used 1% of a core (several small ones did)."""
    if top is None:
        return "not read"
    return processes_words(top) or "none above 1% of a core each"


def load_alert(rules: AlertRules, reading: Any, active: bool) -> tuple[bool, Callable[[], str]]:
    """Whether an "outside-load" episode holds at this reading (it starts above a threshold and
    ends once below half of each), and its message: what was seen, the top outside processes
    (name, pid, share of a core) and the lab's own overhead, which is not counted."""
    holds = rules.under_load(
        reading.outside_cpu_percent,
        reading.steal_percent,
        scale=0.5 if active else 1.0,
        resolution=reading.outside_resolution_percent,
    )

    def message() -> str:
        where = "the client's machine" if reading.source == "client" else reading.source.removeprefix("host:")
        top = processes_words(reading.top)
        seen = [
            f"other processes used {reading.outside_cpu_percent / 100:.2f} cores" + (f" ({top})" if top else "")
            if reading.outside_cpu_percent is not None
            else None,
            f"steal (CPU time the hypervisor gave to other virtual machines) {reading.steal_percent:.1f}%"
            if reading.steal_percent is not None
            else None,
            f"load average {reading.loadavg_1m:.2f}" if reading.loadavg_1m is not None else None,
            f"lab overhead {reading.lab_cpu_percent / 100:.2f} cores, not counted" if reading.lab_cpu_percent else None,
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
