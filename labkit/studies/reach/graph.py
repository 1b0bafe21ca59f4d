"""The graph every cluster manager is measured on: many no-op tasks, and a shuffle.

Both are small on purpose: what they measure is the cost of a task on the cluster (the
graph sent from this machine, the scheduler's decisions, the workers' replies), not
computation. The shuffle is an all-to-all exchange written as a plain task graph:
``partitions`` inputs of ``rows`` integers each are split by value into ``partitions``
pieces, and output ``j`` gathers piece ``j`` of every input, so each output reads from every
input (on several workers, across the network). Its answer is known, so a run checks it.

>>> dsk, outputs = shuffle_graph(3, 4)
>>> shuffle_tasks(3), len(dsk), len(outputs)
(15, 15, 3)
>>> from dask.core import get
>>> sorted(x for part in get(dsk, outputs) for x in part) == list(range(12))
True
"""

from __future__ import annotations

import time
from typing import Any


def noop(i: int) -> int:
    """A task that does nothing but return its argument."""
    return i


def split(values: list[int], parts: int) -> list[list[int]]:
    """``values`` split into ``parts`` pieces by their value modulo ``parts``."""
    pieces: list[list[int]] = [[] for _ in range(parts)]
    for v in values:
        pieces[v % parts].append(v)
    return pieces


def piece(pieces: list[list[int]], j: int) -> list[int]:
    """Piece ``j`` of a split input."""
    return pieces[j]


def gather(*pieces: list[int]) -> list[int]:
    """One output of the shuffle: its pieces of every input, joined."""
    return [v for p in pieces for v in p]


def shuffle_tasks(partitions: int) -> int:
    """Tasks in :func:`shuffle_graph`: the inputs' splits, one piece per pair, the outputs."""
    return partitions + partitions * partitions + partitions


def shuffle_graph(partitions: int, rows: int, token: str = "reach") -> tuple[dict[Any, Any], list[Any]]:
    """A task graph of an all-to-all shuffle of ``partitions * rows`` integers, and its output keys."""
    p = partitions
    dsk: dict[Any, Any] = {}
    for i in range(p):
        dsk[(f"{token}-split", i)] = (split, list(range(i * rows, (i + 1) * rows)), p)
        for j in range(p):
            dsk[(f"{token}-piece", i, j)] = (piece, (f"{token}-split", i), j)
    for j in range(p):
        dsk[(f"{token}-gather", j)] = (gather, *[(f"{token}-piece", i, j) for i in range(p)])
    return dsk, [(f"{token}-gather", j) for j in range(p)]


def check_shuffle(outputs: list[list[int]], partitions: int, rows: int) -> None:
    """An AssertionError unless the shuffle returned every integer once, each in its output."""
    seen = sorted(v for out in outputs for v in out)
    assert seen == list(range(partitions * rows)), "the shuffle lost or duplicated values"
    assert all(v % partitions == j for j, out in enumerate(outputs) for v in out), "a value in the wrong output"


def sleeper(task_s: float, i: int) -> float:
    """A task of the adaptive burst: it sleeps ``task_s`` seconds (no CPU) and returns when it ended."""
    time.sleep(task_s)
    return time.time()
