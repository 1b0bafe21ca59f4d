"""Watching timed runs: each inside a monitor window and its own Dask span, its figures
(resource summary, time split, alerts) stored once the workers' heartbeats bring them in."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.cluster import Lab
    from labkit.store import ResultStore, Trial


class Watched:
    """What the sweep learns about one timed run while it is watched."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.trial: Trial | None = None
        self.window: Any = None
        self.span: Any = None


class Settler:
    """Resource summaries, time splits and alerts of trials, read once they have settled.

    Dask's figures for a trial arrive with the workers' next heartbeats (~0.5-1 s later).
    Rather than wait after every trial, the sweep hands each finished trial here and
    settles the pending ones after the next point's setup (by then they are in) and once
    more at the end of the sweep.
    """

    def __init__(self, store: ResultStore, run_id: str, lab: Lab) -> None:
        self.store, self.run_id, self.lab = store, run_id, lab
        self.monitor: Any = None  # set once made: the monitor calls on_alert
        self.view: Any = None
        self.pending: list[Watched] = []
        self.count = 0
        self.trace = False  # record each timed run's tasks (Sweep(trace=True))

    def scaling(self) -> Any:
        return self.monitor.scaling() if self.monitor is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def watch(self, label: str, description: str | None = None) -> Any:
        """Run the block inside a monitor window and its own Dask span; alerts name the
        trial by ``description`` (its point's parameters) rather than by ``label``."""
        watched = Watched(label)
        with self._tracing(watched):
            if self.monitor is None:
                yield watched
                return
            with self._monitored(watched, label, description):
                yield watched

    @contextlib.contextmanager
    def _tracing(self, watched: Watched) -> Any:
        """With ``trace``, record the block's tasks (:mod:`labkit.measure.trace`) and store them
        with its trial when it ended ok (a trace that cannot be read is left out, never the trial)."""
        if not self.trace:
            yield
            return
        from labkit.measure.trace import TraceRecorder

        with TraceRecorder(self.lab) as recorder:
            yield
        trial = watched.trial
        if trial is not None and trial.trial_id is not None and trial.status == "ok":
            with contextlib.suppress(Exception):
                self.store.add_trace(trial.trial_id, self.run_id, recorder.trace(trial.wall_s).to_bytes())

    @contextlib.contextmanager
    def _monitored(self, watched: Watched, label: str, description: str | None) -> Any:
        from labkit.measure.timesplit import TrialSpan

        self.view.timing(True)
        try:
            with (
                self.monitor.trial(label, description=description) as window,
                TrialSpan(self.lab, label, rules=self.monitor.rules, description=description) as span,
            ):
                watched.window, watched.span = window, span
                yield
        finally:
            self.view.timing(False)
            if watched.trial is not None and watched.trial.trial_id is not None:
                window.trial = watched.trial.trial_id
                self.pending.append(watched)

    def _report_now(self) -> None:
        """Ask every worker for a fresh measurement and heartbeat, rather than wait up to a
        heartbeat interval for the figures of the last trials (best effort)."""
        # The span's figures count as complete once a measurement is more than 50 ms
        # (clock slack) past the trial's end: measure just after that, not before.
        end = self.pending[-1].window.end or time.time()
        time.sleep(max(0.0, end + 0.06 - time.time()))
        try:
            self.lab.client.run(_measure_and_report)
            self.monitor.sample_once()
        except Exception:  # noqa: BLE001 - an old or remote worker: the regular heartbeat will do
            pass

    def on_alert(self, alert: Any) -> None:
        """From the monitor's thread: show now; store now unless it belongs to a trial."""
        if self.view is not None:
            self.view.alert(alert.message)
        if alert.trial is None:
            self.store.add_alert(self.run_id, None, alert.kind, alert.message, worker=alert.worker, at=alert.time)

    def settle(self, *, wait: bool = True) -> None:
        """Store the figures of the pending trials; without ``wait`` only of those whose
        heartbeats are already in (so a sweep never stalls between points)."""
        from labkit.common.errors import LabkitError

        if wait and self.pending:
            self._report_now()
        while self.pending:
            if not wait and not self.monitor.settled(self.pending[0].window):
                return
            w = self.pending.pop(0)
            self.count += 1
            tid = w.trial.trial_id
            metrics: dict[str, Any] = self.monitor.summary(w.window).to_metrics()
            metrics["lab_cpu_percent"] = self.monitor.lab_overhead(w.window)  # lab overhead, not outside load
            if metrics.get("under_load") is True:  # who, so that the user can act
                metrics["outside_processes"] = self.monitor.outside_processes(w.window)
            try:
                split = w.span.read()
                metrics.update(split.to_metrics())
                self.monitor.check_stragglers(split, w.window)
            except LabkitError as e:  # no span figures: the split stays "not measured"
                metrics["time_split_error"] = str(e)
            self.store.update_metrics(tid, metrics)
            self.view.metrics(tid, metrics)
            for a in w.window.alerts:
                self.store.add_alert(self.run_id, tid, a.kind, a.message, worker=a.worker, at=a.time)


async def _measure_and_report(dask_worker: Any) -> None:
    """On a worker: take a system measurement now and send the heartbeat that carries it
    (with the span metrics gathered since the last one)."""
    dask_worker.monitor.update()
    await dask_worker.heartbeat()
