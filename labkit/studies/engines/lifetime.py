"""The lifetime every engine of the study shares: started on entering a ``with`` block, closed on leaving it.

An engine is made with its N (``workers``) and, where it takes one, a memory size;
:meth:`EngineLifetime.load` imports its Python modules (before start-up is timed); it
defines :meth:`EngineLifetime.start` (idempotent: a started engine returns itself) and,
unless what it holds ends with ``close()``, :meth:`EngineLifetime.release`. :meth:`close`
hands what the engine holds to ``release`` exactly once, however often it is called, and
the context manager calls it whatever happened inside the block.

>>> class Toy(EngineLifetime):
...     def start(self):
...         self.held = "session"
...         return self
...     def release(self, held):
...         print("released", held)
>>> with Toy(2) as toy:
...     pass
released session
>>> toy.close()
"""

from __future__ import annotations

from typing import Any


class EngineLifetime:
    """Start on ``__enter__``; :meth:`close` (idempotent) on ``__exit__``."""

    held: Any = None

    def __init__(self, workers: int, memory: str = "1g") -> None:
        self.workers, self.memory = workers, memory

    def load(self) -> None:
        """Import the Python modules the engine needs, so that its timed start-up does not include them."""

    def start(self) -> Any:  # pragma: no cover - each engine defines it
        raise NotImplementedError

    def release(self, held: Any) -> None:
        """End what the engine held (its ``close()``)."""
        held.close()

    def close(self) -> None:
        """End what the engine holds, once."""
        held, self.held = self.held, None
        if held is not None:
            self.release(held)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
