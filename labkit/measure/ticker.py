"""A background thread that calls one function every so often, and at once when asked.

The :class:`~labkit.measure.monitor.Monitor` ticks through it: :meth:`Ticker.now` runs a tick
in the calling thread, never at the same time as the thread's own (one lock holds them
apart), so that a caller can have a reading taken at a moment it chooses (before and after
a rescale) without waiting for the next one.

>>> calls = []
>>> t = Ticker(lambda: calls.append(1), interval=60.0)
>>> t.now(); len(calls)
1
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("labkit.monitor")


class Ticker:
    """Call ``tick()`` every ``interval`` seconds in a daemon thread once started.

    Parameters
    ----------
    tick : callable
        What one tick does. Its exceptions are counted (``errors``); three in a row, or
        ``gone()`` true, stop the thread.
    interval : float
        Seconds from one tick's start to the next.
    gone : callable, optional
        Whether what is being ticked has gone away (the thread ends).
    on_exit : callable, optional
        Called by the thread as it ends.
    """

    def __init__(
        self,
        tick: Callable[..., Any],
        interval: float,
        gone: Callable[[], bool] = lambda: False,
        on_exit: Callable[[], Any] = lambda: None,
        name: str = "labkit-monitor",
    ) -> None:
        self.tick, self.interval, self.gone, self.on_exit, self.name = tick, interval, gone, on_exit, name
        self.errors, self.thread_cpu_s = 0, 0.0
        self._lock = threading.Lock()  # one tick at a time: the thread's or one asked for
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finalizer = weakref.finalize(self, _stop_thread, self._stop, None)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop_thread, self._stop, self._thread)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (a few intervals at most). Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, 3 * self.interval))
        self._thread = None

    def detach(self) -> None:
        self._finalizer.detach()

    def now(self, *args: Any, **kwargs: Any) -> Any:
        """Run one tick in the calling thread, after any tick in progress; return its result."""
        with self._lock:
            return self.tick(*args, **kwargs)

    def _run(self) -> None:
        cpu = time.thread_time()
        next_tick = time.monotonic()
        failures = 0
        while not self._stop.is_set() and not self.gone():
            try:
                with self._lock:
                    self.tick()
                failures = 0
            except Exception as e:  # noqa: BLE001 - the cluster went away, or a hiccup
                self.errors += 1
                failures += 1
                if self.gone() or failures >= 3:
                    logger.info("monitor stopped: the client is closed or failing (%s)", e)
                    break
            # the thread's own CPU time (what leaving it on costs this process's threads)
            cpu, last = time.thread_time(), cpu
            self.thread_cpu_s += cpu - last
            next_tick = max(next_tick + self.interval, time.monotonic())
            self._stop.wait(next_tick - time.monotonic())
        self.on_exit()


def _stop_thread(stop: threading.Event, thread: threading.Thread | None) -> None:
    stop.set()
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout=2.0)
