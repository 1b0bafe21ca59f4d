"""The engines study's timed steps: each start, cold query and warm repeat, with its load, stored as it ends.

A :class:`Runner` holds one recorded run. :meth:`Runner.session` starts every engine at one
N, one after the other in a seeded shuffled order (each start timed on its own, its Python
modules imported before, untimed; the engines started before it sit idle), and closes each
when the block ends, whatever happened. :meth:`Runner.block` then runs one query at one
scale factor on the engines of the session: the first (cold) run on each, in a seeded
shuffled order, then ``repeats`` warm rounds, each over the engines in a new shuffled order,
so that a drift in the machine's load is spread over the engines. A failed start or query is stored
with its error (that engine then sits out the session, or the rest of that block), and the
study goes on.

Each step is timed inside a :class:`~labkit.experiment.lifecycle.LoadWindow` with ``children``:
the outside load over it, as a sweep's trials carry it, except that every process this one
started (Spark's JVM, the Dask clusters' workers) counts as the engines' own, never as outside load.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.experiment.lifecycle import LoadWindow, RecordedRun
from labkit.store import Trial

from .answers import answer_frame
from .data import Dataset
from .sessions import ENGINES, KINDS, run_query


def _point(rec: dict[str, Any]) -> dict[str, Any]:
    keys = ("engine", "phase", "workers") + (("query", "scale_factor") if rec["phase"] != "start" else ())
    return {k: rec[k] for k in keys}


def store_trial(run: RecordedRun, rec: dict[str, Any]) -> None:
    """One timed step as a trial, in its own transaction, with the outside load over it."""
    if run.store is None:
        return
    point = _point(rec)
    kept = ("engine", "phase", "workers", "query", "scale_factor", "wall_s", "status", "error", "started_at")
    metrics = {k: v for k, v in rec.items() if k not in kept and k != "repeat"}
    run.store.add_trial(
        Trial(
            run.run_id,
            run.experiment,
            "tpch",
            json.dumps(point, sort_keys=True),
            point,
            rec["repeat"],
            rec["workers"],
            1,
            None,
            rec["status"],
            error=rec["error"],
            wall_s=rec["wall_s"] if rec["status"] == "ok" else None,
            amount=1.0,
            unit="start" if rec["phase"] == "start" else "query",
            started_at=rec["started_at"],
            ended_at=rec["started_at"] + rec["wall_s"],
            metrics=metrics,
            fingerprint=run.fingerprint.key,
        )
    )


@dataclass
class Runner:
    """The timed steps of one recorded run, their records, and each session's first answers."""

    run: RecordedRun
    repeats: int
    memory: str
    seed: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def timed(self, step: Callable[[], Any], **point: Any) -> tuple[bool, Any]:
        """Run ``step`` timed inside a load window; store its record; (whether it ran, what it returned)."""
        value, error, started = None, None, time.time()
        with LoadWindow(self.run.lab, children=True) as load:
            t0 = time.perf_counter()
            try:
                value = step()
            except Exception as e:  # noqa: BLE001 - stored with the trial; the study goes on
                error = f"{type(e).__name__}: {e}"[:2000]
            wall = time.perf_counter() - t0
        rec = {"query": None, "scale_factor": math.nan, **point, "wall_s": wall, "started_at": started}
        rec |= {"status": "ok" if error is None else "error", "error": error, **load}
        self.records.append(rec)
        store_trial(self.run, rec)
        return error is None, value

    @contextlib.contextmanager
    def session(self, engines: list[str], workers: int, round_: int) -> Any:
        """Every engine started at ``workers`` (each start timed), yielded as a list, all closed after."""
        with contextlib.ExitStack() as stack:
            live = []
            for name in self._shuffled(engines):
                engine = KINDS[name](workers, self.memory)
                stack.callback(engine.close)
                engine.load()
                point = {"engine": name, "phase": "start", "workers": workers, "round": round_, "repeat": round_}
                ok, _ = self.timed(engine.start, **point)
                if ok:
                    live.append(engine)
            yield sorted(live, key=lambda e: ENGINES.index(e.name))

    def _shuffled(self, items: list[Any]) -> list[Any]:
        return [items[i] for i in self.rng.permutation(len(items))]

    def block(self, engines: list[Any], query: str, data: Dataset, workers: int, round_: int) -> None:
        """One query at one scale factor: a cold run on each engine, then ``repeats`` warm rounds."""
        tables = {t: data.table(t) for t in ("lineitem", "orders", "customer")}
        base = {"query": query, "scale_factor": data.scale_factor, "workers": workers, "round": round_}
        alive = []
        for engine in self._shuffled(engines):
            point = {"engine": engine.name, "phase": "cold", "repeat": round_, **base}
            ok, value = self.timed(lambda e=engine: run_query(e, query, tables), **point)
            if ok:
                alive.append(engine)
                label = f"{engine.name} N={workers}" + (f" round {round_ + 1}" if round_ else "")
                self.answers.setdefault((query, data.scale_factor), {})[label] = answer_frame(query, *value)
        for k in range(self.repeats):
            for engine in self._shuffled(alive):
                point = {"engine": engine.name, "phase": "warm", "repeat": round_ * self.repeats + k, **base}
                ok, _ = self.timed(lambda e=engine: run_query(e, query, tables), **point)
                if not ok:
                    alive.remove(engine)
