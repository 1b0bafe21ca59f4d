"""Trial windows, and the samples held until their trial is settled, then handed to the store.

A sample measured during a trial is labelled with that trial's final id, which the sweep
learns only once the trial is recorded; so such samples are held, and released to the sink
once the trial has settled and the sweep has moved on.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .alerts import Alert
from .resources import Sample

logger = logging.getLogger("labkit.monitor")

#: Row of the store's ``samples`` table: ``(run_id, trial_id, time, worker, metric, value)``.
StoreRow = tuple[Any, Any, float, str, str, float]


@dataclass
class TrialWindow:
    """The time a trial ran, and the alerts raised about it.

    ``trial`` labels its samples: replace it with the store's trial id once known (before
    the next trial starts, or before ``Monitor.summary``) and its sink rows carry that id.
    ``description`` says what the trial was, for people: alerts name the trial by it.
    """

    trial: Any
    start: float
    end: float | None = None
    description: str | None = None
    alerts: list[Alert] = field(default_factory=list)  # fired about measurements inside it
    _closed_at: float | None = field(default=None, repr=False)  # monotonic
    _released: bool = field(default=False, repr=False)
    _flushed: bool = field(default=False, repr=False)
    _held: list[Sample] = field(default_factory=list, repr=False)

    def covers(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t <= self.end)


class SampleRouter:
    """The trial windows of a monitor, and where each sample goes: to the sink now or held.

    Not thread-safe by itself: the monitor calls :meth:`open`, :meth:`at`, :meth:`route`
    and :meth:`release` under its own lock, and :meth:`deliver` outside it.
    """

    def __init__(self, sink: Callable[[list[StoreRow]], Any] | None) -> None:
        self.sink = sink
        self.windows: list[TrialWindow] = []
        self._starts: list[float] = []  # the windows' starts, for bisect
        self._pending: list[TrialWindow] = []  # windows whose samples the sink has not had yet
        self._sink_lock = threading.Lock()

    def open(self, trial: Any, start: float, description: str | None = None) -> TrialWindow:
        """A new window, starting at ``start`` (epoch seconds)."""
        window = TrialWindow(trial, start, description=description)
        self.windows.append(window)
        self._pending.append(window)
        self._starts.append(start)
        return window

    def at(self, t: float) -> TrialWindow | None:
        """The window covering time ``t``, if any."""
        i = bisect.bisect_right(self._starts, t) - 1
        return self.windows[i] if i >= 0 and self.windows[i].covers(t) else None

    def route(self, new: list[Sample], run_id: Any) -> list[StoreRow]:
        """Hold samples of unfinished trials; return store rows for the others."""
        rows = []
        for s in new:
            w = self.at(s.time)
            if w is None or w._flushed:
                rows.append((run_id, None if w is None else w.trial, *s))
            else:
                w._held.append(s)
        return rows

    def release(self, run_id: Any, final: bool, settled: Callable[[TrialWindow], bool]) -> list[StoreRow]:
        """Rows of the held samples of windows that are settled and that the sweep has left
        (every window with ``final``)."""
        rows: list[StoreRow] = []
        for w in list(self._pending):
            left = w._released or w is not self.windows[-1]
            if final or (left and settled(w)):
                rows += [(run_id, w.trial, *s) for s in w._held]
                w._held.clear()
                if w.end is not None:
                    w._flushed = True
                    self._pending.remove(w)
        return rows

    def deliver(self, rows: list[StoreRow]) -> None:
        """Hand rows to the sink; a failing sink is logged and never stops the monitor."""
        if rows and self.sink is not None:
            with self._sink_lock:
                try:
                    self.sink(rows)
                except Exception:
                    logger.exception("the monitor's sink failed; %d samples not delivered", len(rows))
