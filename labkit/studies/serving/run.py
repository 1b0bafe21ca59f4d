"""The serving study's run: each model, behind each server, with each replica count, searched for its peak rate.

:class:`ServingStudy` checks every parameter when it is made, before any cluster work or
server start. :meth:`ServingStudy.run` builds each model once (the digits network trained
and calibrated here), times its queries alone in this process (no queue, no machinery),
then for every server and replica count opens the server, lets
:func:`~labkit.studies.serving.loadgen.find_peak` drive it with LoadGen, and closes it,
whatever happened. Each LoadGen run is stored as a trial as it ends (with the outside load
over it), in a run recorded by :class:`~labkit.experiment.lifecycle.RecordedRun`.

>>> ServingStudy(bound_ms=0)
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: bound_ms=0 is not allowed: a number of milliseconds > 0
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis import intervals as iv
from labkit.cluster.capacity import usable_cores
from labkit.common.errors import ParameterError
from labkit.experiment.lifecycle import RecordedRun, StudyCode
from labkit.store import ResultStore, Trial, check_store_path

from . import analysis as an
from . import figures as plots
from . import loadgen
from .models import MODELS, build, service_times
from .servers import ActorServer, HttpServer

if TYPE_CHECKING:
    import pandas as pd

SERVERS = ("dask-actors", "http-uvicorn")
"""The servers a study may put a model behind, by name."""


def _number(name: str, value: Any, what: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise ParameterError(name, value, what)
    return float(value)


def _names(name: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not values or any(v not in allowed for v in values):
        raise ParameterError(name, value, f"one or more of {list(allowed)}")
    return tuple(dict.fromkeys(values))


def replica_counts(replicas: Any, cores: int | None = None) -> list[int]:
    """The replica counts: as given (integers >= 1), or for None 1 … twice the cores.

    >>> replica_counts(None, cores=2), replica_counts([2, 1])
    ([1, 2, 3, 4], [1, 2])
    """
    if replicas is None:
        return list(range(1, 2 * (cores or usable_cores()) + 1))
    values = [replicas] if isinstance(replicas, int) and not isinstance(replicas, bool) else replicas
    if not isinstance(values, (list, tuple)) or not values:
        raise ParameterError("replicas", replicas, "None (1 … twice the cores) or a list of integers >= 1")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ParameterError("replicas", replicas, "None or a list of integers >= 1")
    return sorted(set(values))


@dataclass(frozen=True)
class ServingStudy:
    """Models served by replicas behind servers, driven by LoadGen's Server scenario at a latency bound.

    Parameters
    ----------
    models : list of str
        ``"sleep"`` (sleeps ``service_ms``: the machinery's cost apart from compute) and
        ``"digits"`` (a network trained here, calibrated to about ``service_ms`` of compute).
    servers : list of str
        ``"dask-actors"`` and ``"http-uvicorn"``.
    replicas : list of int or None
        Replica counts; None: 1 … twice the cores.
    bound_ms, percentile : float
        The latency bound and the percentile that must stay under it (MLPerf: 0.99).
    service_ms : float
        The models' time per query.
    duration_s : float
        Each LoadGen run's length (MLPerf asks 600 s: these runs are not compliant).
    steps : int
        Bisections of the peak search once a rate that met the bound and one that did not are found.
    tries : int
        Most LoadGen runs per model, server and replica count.
    seed : int
        LoadGen's schedule seed.
    store, experiment
        Each LoadGen run is stored as a trial under ``f"{experiment}/peak"`` when ``store`` is given.
    """

    models: Any = MODELS
    servers: Any = SERVERS
    replicas: Any = None
    bound_ms: float = 100.0
    percentile: float = 0.99
    service_ms: float = 10.0
    duration_s: float = 2.0
    steps: int = 1
    tries: int = 5
    seed: int = 0
    store: Any = None
    experiment: str = "serving"
    cores: int = field(default_factory=usable_cores)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", _names("models", self.models, MODELS))
        object.__setattr__(self, "servers", _names("servers", self.servers, SERVERS))
        object.__setattr__(self, "replicas", replica_counts(self.replicas, self.cores))
        _number("bound_ms", self.bound_ms, "a number of milliseconds > 0")
        _number("percentile", self.percentile, "a fraction between 0 and 1 (MLPerf's Server scenario: 0.99)", high=1.0)
        _number("service_ms", self.service_ms, "a number of milliseconds > 0, below bound_ms", high=self.bound_ms)
        _number("duration_s", self.duration_s, "a number of seconds > 0 (MLPerf asks 600)")
        for name, least in (("steps", 0), ("tries", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ParameterError(name, value, f"an integer >= {least}")
        if not isinstance(self.experiment, str) or not self.experiment:
            raise ParameterError("experiment", self.experiment, "a non-empty name")
        if self.store is not None and not isinstance(self.store, ResultStore):
            check_store_path(self.store)
        loadgen.require_loadgen()

    def run(self, lab: Any) -> ServingResult:
        """Every model, server and replica count on ``lab`` (scaled for the actors, back after)."""
        start, records, alone = lab.workers, [], {}
        config = {k: v for k, v in vars(self).items() if k != "store"}
        code = StudyCode("serving-peak", loadgen.server_run)
        with RecordedRun(
            self.store, f"{self.experiment}/peak", code, lab, config=config, cleanup=[lambda: lab.scale(start)]
        ) as rec:
            for kind in self.models:
                model = build(kind, self.service_ms / 1000, seed=self.seed)
                alone[kind] = service_times(model)
                for server in self.servers:
                    for n in self.replicas:
                        records += self._search(lab, rec, model, kind, server, n, float(np.mean(alone[kind])))
        return ServingResult(records, alone, self.bound_ms / 1000, self.percentile, self.cores)

    def _search(
        self, lab: Any, rec: RecordedRun, model: Any, kind: str, server: str, n: int, service_s: float
    ) -> list[dict[str, Any]]:
        bound = self.bound_ms / 1000
        guess = 0.5 * min(n, self.cores) / service_s  # half what the replicas, or the cores, could answer alone
        keys = {"model": kind, "server": server, "replicas": n, "cores": self.cores}
        opened = ActorServer(lab, model, n) if server == "dask-actors" else HttpServer(model, n)
        with opened as s:

            def measure(rate: float) -> dict[str, Any]:
                t0 = time.time()
                with rec.load_window(children=True) as load:  # the servers' processes are the work's
                    out = loadgen.server_run(
                        s, rate, bound, duration_s=self.duration_s, percentile=self.percentile, seed=self.seed
                    )
                out |= {**keys, "t0": t0, "under_load": load.get("under_load"), "status": "ok", "load": dict(load)}
                _add(rec, out)
                return out

            return loadgen.find_peak(measure, guess, steps=self.steps, tries=self.tries)


def _add(run: RecordedRun, rec: dict[str, Any]) -> None:
    """One LoadGen run as a trial, in its own transaction, with the outside load over it."""
    if run.store is None:
        return
    point = {k: rec[k] for k in ("model", "server", "replicas", "rate")}
    metrics = {k: v for k, v in rec.items() if k not in ("load", "t0", "status")} | rec["load"]
    run.store.add_trial(
        Trial(
            run.run_id,
            run.experiment,
            "serving-peak",
            json.dumps(point, sort_keys=True),
            point,
            0,
            rec["replicas"],
            1,
            None,
            "ok",
            wall_s=rec["wall_s"],
            amount=float(rec["queries"]),
            unit="queries",
            started_at=rec["t0"],
            ended_at=rec["t0"] + rec["wall_s"],
            metrics=metrics,
            fingerprint=run.fingerprint.key,
        )
    )


@dataclass
class ServingResult:
    """The LoadGen runs of a study (one record each), the models' query times alone, and its settings."""

    records: list[dict[str, Any]]
    alone: dict[str, np.ndarray]
    bound_s: float
    percentile: float
    cores: int

    @property
    def frame(self) -> pd.DataFrame:
        """One row per LoadGen run (the per-query latencies as lists)."""
        import pandas as pd

        return pd.DataFrame(self.records)

    def runs(self) -> pd.DataFrame:
        """One row per LoadGen run, with its percentile's interval (:func:`~.analysis.runs_table`)."""
        return an.runs_table(self.frame, self.percentile)

    def peaks(self) -> pd.DataFrame:
        """One row per model, server and replica count (:func:`~.analysis.peak_table`)."""
        return an.peak_table(self.frame, self.alone, self.percentile)

    def alone_table(self) -> pd.DataFrame:
        """Each model's query time alone in this process (median and 95% interval, ms)."""
        import pandas as pd

        rows = []
        for model, times in self.alone.items():
            est = iv.median_estimate(times)
            rows.append({"model": model, "median_ms": 1000 * est.value, "lo_ms": 1000 * est.lo, "hi_ms": 1000 * est.hi})
        return pd.DataFrame(rows)

    def describe(self) -> Any:
        """The answer in words (:func:`~.analysis.describe_serving`)."""
        return an.describe_serving(self.frame, self.alone, self.percentile, self.cores)

    def curve_figure(self) -> Any:
        return plots.curve_figure(self.runs(), self.peaks(), self.percentile)

    def peak_figure(self) -> Any:
        return plots.peak_figure(self.peaks(), self.cores)
