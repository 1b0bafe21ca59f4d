"""The Monitor: what the cluster's resources, and the load around them, did while a sweep ran.

>>> with Lab(workers=2) as lab, Monitor(lab, interval=0.5) as monitor:    # doctest: +SKIP
...     with monitor.trial("sum #0", description="array-sum, workers=2") as window:
...         x.sum().compute()
...     summary = monitor.summary(window)     # waits for the heartbeat after the trial
>>> summary.peak_memory_bytes, summary.cpu_percent_mean, summary.under_load  # doctest: +SKIP
(412123136.0, 187.5, False)

A background thread asks the scheduler, once per tick (its ``identity``), for the metrics
workers send with every heartbeat, measured by Dask's ``SystemMonitor`` (CPU, memory,
spilled bytes, host network and disk, GPU utilisation and memory where Dask's NVML support
reports them). The client's host adds its CPU and memory (psutil), the outside load of
every machine (:mod:`labkit.measure.load`) and, where a counter exists and every worker
runs on the client's machine, energy (:mod:`labkit.measure.power`).

Samples are plain records in long format, ``Sample(time, worker, metric, value)``: one per
new measurement (a worker's values change once per heartbeat, 0.5 s on small clusters, so
polling faster only costs). ``worker`` is a worker's address, ``"host:<host>"`` for
host-wide counters (reported once per host) or ``"client"`` (the client's machine). Times
are the clock of the machine that measured. ``monitor.to_pandas()`` gives them as a frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.common.scheduler import scheduler_workers

from .alerts import Alert, AlertLog, AlertRules, worker_conditions
from .load import LoadReading, LoadWatcher
from .resources import ResourceSummary, Sample, client_samples, fresh_samples, resource_summary
from .ticker import Ticker
from .windows import SampleRouter, StoreRow, TrialWindow

if TYPE_CHECKING:
    import pandas as pd

    from .timesplit import TimeSplit

logger = logging.getLogger("labkit.monitor")


class Monitor:
    """Sample the cluster's resources in a background thread; summarise trials; raise alerts.

    Parameters
    ----------
    lab : Lab or distributed.Client
        The cluster to watch. The thread ends by itself once this client closes or keeps
        failing (within about one ``interval``); it is a daemon thread as a last resort.
    interval : float, default 0.5
        Seconds between ticks (one scheduler ``identity`` call each). Workers report every
        heartbeat (0.5 s on clusters of up to 10 workers), so 0.5 s sees every report.
    sink : callable, optional
        Called with lists of store rows ``(run_id, trial_id, time, worker, metric, value)``
        (e.g. ``store.add_samples``). Rows measured during a trial are held until the trial
        is settled and the sweep has moved on, so they carry its final ``window.trial``.
    on_alert : callable, optional
        Called with each :class:`~labkit.measure.alerts.Alert`.
    rules : AlertRules, optional
        Alert thresholds (default :class:`~labkit.measure.alerts.AlertRules`).
    run_id : str, optional
        First field of the sink's rows (may be set later: ``monitor.run_id = ...``).
    keep : int, default 1_000_000
        Most samples kept in memory (oldest dropped first; the sink has them all).
    settle_timeout : float, default 3.0
        Longest wait, after a trial, for the workers' next heartbeats.
    """

    def __init__(
        self,
        lab: Any,
        interval: float = 0.5,
        *,
        sink: Callable[[list[StoreRow]], Any] | None = None,
        on_alert: Callable[[Alert], Any] | None = None,
        rules: AlertRules | None = None,
        run_id: str | None = None,
        keep: int = 1_000_000,
        settle_timeout: float = 3.0,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise ParameterTypeError("interval", interval, "a number of seconds")
        if not interval > 0:
            raise ParameterError("interval", interval, "a number of seconds > 0")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ParameterError("keep", keep, "an integer >= 1")
        self.client = getattr(lab, "client", lab)
        if not hasattr(self.client, "scheduler"):
            raise ParameterTypeError("lab", lab, "a labkit.Lab or a distributed.Client")
        self.interval = float(interval)
        self.run_id, self.settle_timeout = run_id, settle_timeout
        self.rules = rules or AlertRules()
        self.alert_log = AlertLog(on_alert)
        self._samples: deque[Sample] = deque(maxlen=keep)
        self._router = SampleRouter(sink)
        self._last_time: dict[str, float] = {}  # worker -> time of its latest measurement
        self._known: set[str] = set()
        self._known_gen = -1
        self._scaling, self._scale_gen = 0, 0
        self._lock = threading.RLock()
        self._ticked = threading.Condition(self._lock)
        self._ticker = Ticker(self._tick, self.interval, self._client_gone, lambda: self._flush(final=True))
        self._closed = False
        self.ticks = 0
        self._last_tick = 0.0
        from labkit.cluster.retire import local_hosts

        from .power import EnergyMeter

        self._energy = EnergyMeter()
        self._local_hosts = local_hosts()
        self._load = LoadWatcher(self.client, self._local_hosts, self.rules, timeout=max(5.0, 2 * self.interval))

    # -- lifetime ------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Start the sampler thread (no-op when running). Returns the monitor."""
        if self._closed:
            raise RuntimeError("this Monitor is closed; make a new one")
        self._ticker.start()
        return self

    def stop(self) -> None:
        """Stop the thread and hand every held sample to the sink. Idempotent."""
        self._ticker.stop()
        self._flush(final=True)

    def close(self) -> None:
        """Stop for good. Idempotent."""
        if not self._closed:
            self.stop()
            self._closed = True
            self._ticker.detach()

    @property
    def running(self) -> bool:
        return self._ticker.running

    @property
    def errors(self) -> int:
        """Ticks that failed (the cluster went away, or a hiccup)."""
        return self._ticker.errors

    @property
    def thread_cpu_s(self) -> float:
        """CPU seconds the sampler thread used: what leaving it on costs this process."""
        return self._ticker.thread_cpu_s

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "stopped"
        return f"<Monitor {state}, every {self.interval:g} s, {len(self._samples)} samples, {len(self.alerts)} alerts>"

    def _client_gone(self) -> bool:
        return getattr(self.client, "status", "running") in ("closing", "closed")

    # -- sampling ------------------------------------------------------------------------

    def sample_once(self, *, force_load: bool = False) -> list[Sample]:
        """One tick in the calling thread (after any tick in progress): ask the scheduler, record,
        check alerts. ``force_load``: read the load now, however soon after the last reading.
        Returns the new samples."""
        return self._ticker.now(force_load=force_load)

    def _tick(self, *, force_load: bool = False) -> list[Sample]:
        with self._lock:
            gen, scaling = self._scale_gen, self._scaling > 0
        # a scheduler that stops answering must not hang the thread
        workers = scheduler_workers(self.client, timeout=max(10.0, 5 * self.interval))
        now = time.time()  # before the load readings: a tick after a trial has readings after it
        load = self._load.sample(workers, force=force_load)  # may ask workers elsewhere: outside the lock
        conditions: list[tuple[str, str | None, bool, Any, float, TrialWindow | None]] = []
        with self._lock:
            new, reported = fresh_samples(workers, self._last_time)
            for addr, m, limit in reported:
                window = self._window_at(m["time"])
                conditions += [
                    (kind, addr, holds, msg, m["time"], window)
                    for kind, holds, msg in worker_conditions(self.rules, addr, m, limit)
                ]
            conditions += self._load.alert_conditions(self.alert_log.active(), self._window_at)
            lost = set()
            if not scaling and gen == self._scale_gen and self._known_gen == gen:
                lost = self._known - set(workers)
            self._known, self._known_gen = set(workers), (gen if not scaling and gen == self._scale_gen else -1)
            for addr in lost:
                self._last_time.pop(addr, None)
            new += client_samples(now) + load
            if all(w.get("host") in self._local_hosts for w in workers.values()):  # else not the cluster's energy
                new += [Sample(now, "client", k, v) for k, v in self._energy.read().items()]
            self._samples.extend(new)
            direct = self._router.route(new, self.run_id)
            now_window = self._window_at(now)
            self.ticks += 1
            self._last_tick = now
            self._ticked.notify_all()
        for addr in sorted(lost):
            self.alert_log.forget(addr)
            if self.rules.worker_lost:
                self.alert_log.about(
                    now_window, "worker-lost", addr, True, f"worker {addr} left the cluster", now, one_off=True
                )
        for kind, addr, holds, msg, t, window in conditions:
            self.alert_log.about(window, kind, addr, holds, msg, t)
        self._router.deliver(direct)
        self._flush()
        return new

    @contextmanager
    def scaling(self) -> Iterator[None]:
        """Wrap a deliberate change of the worker count (``lab.scale``): workers that leave
        meanwhile are not reported lost. The load is read as it starts and ends, so that the
        readings in which the cluster's processes change (their CPU then is not known) hold
        only the rescale, never a trial before or after it."""
        self._checkpoint()
        with self._lock:
            self._scaling += 1
            self._scale_gen += 1
        try:
            yield
        finally:
            with self._lock:
                self._scaling -= 1
                self._scale_gen += 1
            self._checkpoint()

    def _checkpoint(self) -> None:
        """A tick now with the load read, unless closed; a failure is the next tick's to see."""
        if self._closed or self._client_gone():
            return
        try:
            self.sample_once(force_load=True)
        except Exception as e:  # noqa: BLE001 - e.g. the scheduler did not answer: the thread goes on
            logger.debug("no reading around the rescale: %s", e)

    # -- trials --------------------------------------------------------------------------

    @contextmanager
    def trial(self, trial: Any = None, description: str | None = None) -> Iterator[TrialWindow]:
        """Mark the block as one trial; yields its :class:`TrialWindow`.

        ``trial`` labels it (default ``"trial-<n>"``). Samples measured inside are labelled
        with ``window.trial``: set it to the store's trial id once known, before the next
        trial starts. Alerts about measurements inside collect in ``window.alerts``.
        ``description`` says what the trial is, for people (e.g. its parameters): alerts
        name the trial by it.
        """
        with self._lock:
            label = f"trial-{len(self._router.windows)}" if trial is None else trial
            window = self._router.open(label, time.time(), description)
        try:
            yield window
        finally:
            with self._lock:
                window.end, window._closed_at = time.time(), time.monotonic()

    @property
    def current_trial(self) -> Any:
        """The ``trial`` of the window open now, or None."""
        with self._lock:
            w = self._router.windows[-1] if self._router.windows else None
            return w.trial if w is not None and w.end is None else None

    def _window_at(self, t: float) -> TrialWindow | None:
        return self._router.at(t)

    def settled(self, window: TrialWindow) -> bool:
        """Whether :meth:`summary` of ``window`` would return without waiting."""
        with self._lock:
            return self._settled(window)

    def _settled(self, w: TrialWindow) -> bool:
        """Closed, and every worker has reported a measurement made after it (or we waited long enough)."""
        if w.end is None or w._closed_at is None:
            return False
        if time.monotonic() >= w._closed_at + self.settle_timeout:
            return True
        after = min(self._last_tick, self._load.read_at)  # the load too: it is read at most every 0.25 s
        return after > w.end and all(t > w.end for a, t in self._last_time.items() if a in self._known)

    def summary(self, window: TrialWindow, timeout: float | None = None) -> ResourceSummary:
        """The trial's :class:`ResourceSummary`, once the workers have reported past its end
        (waiting at most ``timeout``, default ``settle_timeout``). Releases its held samples to the sink."""
        if window.end is None:
            raise RuntimeError(
                "Monitor.summary() needs a finished trial: call it after the `with monitor.trial()` block"
            )
        deadline = time.monotonic() + (self.settle_timeout if timeout is None else timeout)
        while True:
            with self._lock:
                # without the sampler thread, tick at least once past the trial's end
                unseen = not self.running and self._last_tick <= window.end
                if time.monotonic() >= deadline or (not unseen and self._settled(window)):
                    break
                if self.running:
                    self._ticked.wait(max(0.0, min(self.interval, deadline - time.monotonic())))
                    continue
            if self._closed or self._client_gone():
                break
            self.sample_once()  # no sampler thread: tick here
            time.sleep(max(0.0, min(self.interval, deadline - time.monotonic())))
        with self._lock:
            window._released = True
            lookback = window.start - max(10.0, 10 * self.interval)
            recent = []
            for s in reversed(self._samples):
                if s.time < lookback:
                    break
                recent.append(s)
        self._flush()
        return resource_summary(recent, window.start, window.end, self.rules)

    # -- delivering samples --------------------------------------------------------------

    def _flush(self, final: bool = False) -> None:
        """Deliver the held samples of trials that are settled and that the sweep has left."""
        with self._lock:
            rows = self._router.release(self.run_id, final, self._settled)
        self._router.deliver(rows)

    # -- results -------------------------------------------------------------------------

    @property
    def samples(self) -> list[Sample]:
        """A copy of the samples kept, in arrival order."""
        with self._lock:
            return list(self._samples)

    @property
    def windows(self) -> list[TrialWindow]:
        with self._lock:
            return list(self._router.windows)

    @property
    def alerts(self) -> list[Alert]:
        return self.alert_log.alerts

    @property
    def latest_load(self) -> LoadReading | None:
        """The latest :class:`~labkit.measure.load.LoadReading` of the most loaded machine, or None."""
        return self._load.most_loaded()

    def lab_overhead(self, window: TrialWindow) -> float | None:
        """CPU of the lab's own processes besides the cluster's over a trial (``lab_cpu_percent``,
        % of a core, never outside load; see :mod:`labkit.measure.load`), or None."""
        return self._load.lab_overhead(window.start, window.end or time.time())

    def outside_processes(self, window: TrialWindow) -> str:
        """The top outside processes over a trial, in words (name, pid, share of a core), for a
        trial flagged under outside load; "not read" where no reading then had a snapshot."""
        from .alerts import outside_words

        return outside_words(self._load.outside_processes(window.start, window.end or time.time()))

    def check_stragglers(self, split: TimeSplit, window: TrialWindow | None = None) -> list[Alert]:
        """Raise (once per episode) a straggler alert for each worker a trial's
        :class:`~labkit.measure.timesplit.TimeSplit` flagged, attributed to ``window`` if given
        (and kept in ``window.alerts``). Returns the new alerts."""
        what = window.description if window is not None and window.description else split.what
        out = []
        for w, b in split.workers.items():
            msg = f"worker {w} straggled in {what}: {b.straggler}"
            out.append(self.alert_log.about(window, "straggler", w, b.straggler is not None, msg, time.time()))
        return [a for a in out if a is not None]

    def rows(self) -> list[StoreRow]:
        """Every kept sample as a store row, labelled by the trial window it fell in."""
        with self._lock:
            return [
                (self.run_id, None if (w := self._window_at(s.time)) is None else w.trial, *s) for s in self._samples
            ]

    def to_pandas(self) -> pd.DataFrame:
        """Samples as a long DataFrame: time (epoch seconds), worker, metric, value, trial."""
        import pandas as pd

        rows = [(*r[2:], r[1]) for r in self.rows()]
        return pd.DataFrame(rows, columns=["time", "worker", "metric", "value", "trial"])
