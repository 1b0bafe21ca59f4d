"""Ctrl-C for tests, as a person presses it: SIGINT to this process a while into a block, and
again every few seconds until the block ends (one that lands in Dask's own callbacks is
swallowed there, and a person presses again). Where the signal lands is not up to the test."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def interrupting(after_s: float = 3.0, every_s: float = 2.0, times: int = 10) -> Iterator[None]:
    """SIGINT to this process ``after_s`` into the block, then every ``every_s`` while it runs
    (at most ``times``); Python's own handler meanwhile, as in a kernel or a terminal."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def send() -> None:
        if stop.wait(after_s):
            return
        for _ in range(times):
            if stop.is_set():
                return
            os.kill(os.getpid(), signal.SIGINT)
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=send, name="test-ctrl-c", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        signal.signal(signal.SIGINT, previous)
