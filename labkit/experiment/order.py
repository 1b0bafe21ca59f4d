"""The order of a sweep's timed runs: rounds over the grid in a seeded shuffled order, or
each point's repeats back to back.

``"rounds"`` (the default): each round visits every point that still needs a run once, in
an order shuffled with ``random.Random(seed)``, so a slow drift of the machine (another
job starting, a cache warming, a throttled CPU) spreads over every point instead of
landing on the last ones, where it would read as a scaling effect. The same seed and grid
give the same order. Points that share a block (the sweep's blocks are worker counts) are
visited together within a round, blocks in a shuffled order that starts, when it can, with
the block the last round ended on: every point still gets one run per round, and a
rescale (seconds, and the points' inputs set up again) happens about once per block and
round instead of before most runs. ``"sequential"``: every repeat of a point, then the next point, in the
grid's order (workers outermost): fewer rescales and setups, but drift and grid position
are confounded.

>>> from types import SimpleNamespace as P
>>> points = [P(name=n, left=2) for n in "abc"]
>>> def wants(p, spent): return p.left > 0
>>> def done(p, spent): pass
>>> visits = []
>>> for round_no, p in Visits("rounds", 0, points, wants, done, lambda: False):
...     p.left -= 1
...     visits.append((round_no, p.name))
>>> visits
[(1, 'a'), (1, 'c'), (1, 'b'), (2, 'c'), (2, 'b'), (2, 'a')]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from labkit.common.errors import ParameterError, ParameterTypeError

ORDERS = ("rounds", "sequential")

T = TypeVar("T")


def check_order(order: Any, seed: Any) -> None:
    if order not in ORDERS:
        raise ParameterError("order", order, " or ".join(map(repr, ORDERS)))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterTypeError("seed", seed, "int")


class Visits(Generic[T]):
    """The visits of a sweep, ``(round, point)``: the round is None in sequential order.

    Parameters
    ----------
    order, seed : str, int
        ``"rounds"`` or ``"sequential"``; the seed of the rounds' shuffles.
    points : sequence
        The points, in the grid's order.
    wants : callable
        ``wants(point, budget_spent) -> bool``: whether the point needs another run.
    done : callable
        ``done(point, budget_spent)``: called once a point needs no more runs.
    budget_spent : callable
        Whether the time budget is spent; read at the start of each round (the round
        under way finishes) or, in sequential order, before each run.
    block : callable, optional
        ``block(point)``: points with the same block are visited together within a round
        (the sweep passes the worker count, so a round rescales once per worker count).
    """

    def __init__(
        self,
        order: str,
        seed: int,
        points: Sequence[T],
        wants: Callable[[T, bool], bool],
        done: Callable[[T, bool], None],
        budget_spent: Callable[[], bool],
        block: Callable[[T], Any] | None = None,
    ) -> None:
        self.order, self.points, self.block = order, list(points), block
        self.rng = random.Random(seed)
        self.wants, self.done, self.budget_spent = wants, done, budget_spent

    def __iter__(self) -> Iterator[tuple[int | None, T]]:
        return self._sequential() if self.order == "sequential" else self._rounds()

    def _sequential(self) -> Iterator[tuple[int | None, T]]:
        for p in self.points:
            while self.wants(p, self.budget_spent()):
                yield None, p
            self.done(p, self.budget_spent())

    def _blocked(self, active: list[T], last: Any) -> list[T]:
        """The round's order: shuffled; with blocks, shuffled within and between blocks,
        starting with the block the previous round ended on when it is in this round."""
        self.rng.shuffle(active)
        if self.block is None:
            return active
        blocks: dict[Any, list[T]] = {}
        for p in active:
            blocks.setdefault(self.block(p), []).append(p)
        keys = list(blocks)
        self.rng.shuffle(keys)
        if last in blocks:
            keys.remove(last)
            keys.insert(0, last)
        return [p for k in keys for p in blocks[k]]

    def _rounds(self) -> Iterator[tuple[int | None, T]]:
        round_no, last = 0, None
        while True:
            spent = self.budget_spent()
            active = []
            for p in self.points:
                if self.wants(p, spent):
                    active.append(p)
                else:
                    self.done(p, spent)
            if not active:
                return
            active = self._blocked(active, last)
            round_no += 1
            for p in active:
                last = self.block(p) if self.block is not None else None
                yield round_no, p
                if not self.wants(p, False):  # complete, or closed by a failure
                    self.done(p, False)
