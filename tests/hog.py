"""A CPU hog the tests start themselves: a bounded busy loop in another process, killed in a ``finally``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HOG = "import time\nt = time.time() + {seconds}\nwhile time.time() < t: pass"


@contextmanager
def cpu_hog(seconds: float = 60.0) -> Iterator[subprocess.Popen]:
    """One core kept busy by another process (at most ``seconds``)."""
    proc = subprocess.Popen([sys.executable, "-c", HOG.format(seconds=seconds)])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
