"""The serverless study's run: three tiers of start, measured in rounds, then a trace replayed from zero workers.

:class:`ServerlessStudy` checks its parameters when it is made, before any cluster work.
:meth:`ServerlessStudy.run` trains and writes the function, times ``repeats`` calls of each
tier of start (:mod:`.function`) in seeded shuffled rounds, then replays a
Poisson-plus-burst trace (:mod:`.trace`) against Dask's adaptive scaling from zero
(:mod:`.replay`) and replays the same policy offline on the same trace. Each call and the
replay are stored as trials, with the outside load over them, in a run recorded by
:class:`~labkit.experiment.lifecycle.RecordedRun`; the price snapshot is stored with the run.

>>> ServerlessStudy(keep_alive_s=0)
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: keep_alive_s=0 is not allowed: a finite number of seconds > 0
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit.analysis.prices import load_prices
from labkit.common import checks
from labkit.common.errors import ParameterError
from labkit.experiment.lifecycle import RecordedRun, StudyCode
from labkit.store import ResultStore, Trial, check_store_path

from . import analysis as an
from . import figures as plots
from .function import TIERS, handler, tier_call, warm_call, write_function
from .pricing import LambdaPrices, check_memory
from .replay import live_replay
from .trace import arrival_trace, offline_replay


@dataclass(frozen=True)
class ServerlessStudy:
    """Tiers of start, and a trace replayed against scale-to-zero with a keep-alive window.

    Parameters
    ----------
    repeats : int
        Calls of each tier (5 or more give their medians an interval).
    rate, duration_s, bursts, burst_size, burst_s, seed
        The trace: Poisson arrivals at ``rate``/s over ``duration_s``, plus ``bursts`` bursts
        of ``burst_size`` arrivals within ``burst_s`` (:func:`~.trace.arrival_trace`).
    keep_alive_s : float
        How long an idle worker is kept before it is retired.
    memory_mb : float
        The function's memory for Lambda's price (1,769 MB buys one vCPU).
    instance : str
        The always-on worker's instance type, from labkit's price table.
    bill_init : bool
        Bill a cold call's model load as Lambda duration too.
    store, experiment
        Each call and the replay are stored under ``f"{experiment}/starts"`` and ``f"{experiment}/replay"``.
    """

    repeats: int = 5
    rate: float = 0.25
    duration_s: float = 40.0
    bursts: int = 2
    burst_size: int = 6
    burst_s: float = 1.0
    keep_alive_s: float = 4.0
    memory_mb: float = 1769.0
    instance: str = "m7i.large"
    bill_init: bool = True
    seed: int = 0
    store: Any = None
    experiment: str = "serverless"
    prices: LambdaPrices = field(default_factory=LambdaPrices)

    def __post_init__(self) -> None:
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise ParameterError("repeats", self.repeats, "an integer >= 1 (5 or more give an interval)")
        checks.seconds("keep_alive_s", self.keep_alive_s)
        arrival_trace(self.rate, self.duration_s, self.bursts, self.burst_size, self.burst_s, self.seed)
        check_memory(self.memory_mb)
        load_prices().select([self.instance])
        if not isinstance(self.bill_init, bool):
            raise ParameterError("bill_init", self.bill_init, "True or False")
        if not isinstance(self.experiment, str) or not self.experiment:
            raise ParameterError("experiment", self.experiment, "a non-empty name")
        if self.store is not None and not isinstance(self.store, ResultStore):
            check_store_path(self.store)

    @property
    def trace(self) -> np.ndarray:
        """The arrival times (s) the replay uses."""
        return arrival_trace(self.rate, self.duration_s, self.bursts, self.burst_size, self.burst_s, self.seed)

    def run(self, lab: Any) -> ServerlessResult:
        """The tiers, then the replay, on ``lab`` (scaled back to its size at the end)."""
        folder, start = Path(tempfile.mkdtemp(prefix="labkit-serverless-")), lab.workers
        config = {k: v for k, v in vars(self).items() if k not in ("store", "prices")} | {
            "prices": self.prices.snapshot()
        }
        try:
            path = write_function(folder, self.seed)
            code = StudyCode("serverless-call", handler)
            with RecordedRun(
                self.store, f"{self.experiment}/starts", code, lab, config=config, cleanup=[lambda: lab.scale(start)]
            ) as rec:
                calls = self._tiers(lab, rec, path)
            with RecordedRun(
                self.store, f"{self.experiment}/replay", code, lab, config=config, cleanup=[lambda: lab.scale(start)]
            ) as rec:
                replay = self._replay(lab, rec, path, calls)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        hourly = load_prices().select([self.instance])
        return ServerlessResult(calls, replay, self, hourly)

    def _tiers(self, lab: Any, rec: RecordedRun, path: Path) -> Any:
        import pandas as pd

        warm_call(lab, path)  # untimed: the warm tier's worker has the model loaded
        rows, rng = [], np.random.default_rng(self.seed)
        for repeat in range(self.repeats):
            for position, i in enumerate(rng.permutation(len(TIERS))):
                t0 = time.time()
                with rec.load_window() as load:
                    took = tier_call(TIERS[i], lab, path, repeat)
                rows.append(
                    {
                        "tier": TIERS[i],
                        "repeat": repeat,
                        "position": position,
                        "seconds": took,
                        "status": "ok",
                        "under_load": load.get("under_load"),
                    }
                )
                _add(rec, {"tier": TIERS[i]}, repeat, t0, took, {**rows[-1], **load})
        return pd.DataFrame(rows)

    def _replay(self, lab: Any, rec: RecordedRun, path: Path, calls: Any) -> dict[str, Any]:
        t0 = time.time()
        with rec.load_window() as load:
            live = live_replay(lab, str(path), self.trace, self.keep_alive_s)
        cold_s = float(np.median(calls.loc[calls["tier"] == "worker", "seconds"]))
        service = float(np.median(live["run_s"]))
        offline = offline_replay(self.trace, service_s=service, keep_alive_s=live["keep_alive_s"], cold_s=cold_s)
        out = {
            **live,
            "predicted_cold_starts": offline["cold_starts"],
            "predicted_cold": offline["cold"].tolist(),
            "offline_cold_s": cold_s,
            "offline_service_s": service,
            "under_load": load.get("under_load"),
            "status": "ok",
        }
        _add(rec, {"keep_alive_s": self.keep_alive_s}, 0, t0, time.time() - t0, {**out, **load})
        return out


def _add(
    run: RecordedRun, point: dict[str, Any], repeat: int, t0: float, wall_s: float, metrics: dict[str, Any]
) -> None:
    if run.store is None:
        return
    kept = {k: v for k, v in metrics.items() if k not in ("status",)}
    run.store.add_trial(
        Trial(
            run.run_id,
            run.experiment,
            "serverless-call",
            json.dumps(point, sort_keys=True),
            point,
            repeat,
            None,
            1,
            None,
            "ok",
            wall_s=wall_s,
            started_at=t0,
            ended_at=t0 + wall_s,
            metrics=kept,
            fingerprint=run.fingerprint.key,
        )
    )


@dataclass
class ServerlessResult:
    """The tiers' calls (one row each), the replay's record, the study's settings and the instance price."""

    calls: Any
    replay: dict[str, Any]
    study: ServerlessStudy
    instance_prices: Any

    def tiers_table(self) -> Any:
        return an.tiers_table(self.calls)

    def replay_table(self) -> Any:
        return an.replay_table(self.replay)

    def replay_summary(self) -> Any:
        return an.replay_summary(self.replay)

    def costs(self) -> Any:
        return an.cost_table(self.replay, self.study, self.instance_prices)

    def describe(self) -> Any:
        return an.describe_serverless(self.calls, self.replay_frame(), self.study, self.instance_prices, self.replay)

    def replay_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [{k: self.replay[k] for k in ("cold_starts", "predicted_cold_starts", "status", "under_load")}]
        )

    def tiers_figure(self) -> Any:
        return plots.tiers_figure(self.calls)

    def replay_figure(self) -> Any:
        return plots.replay_figure(self.replay)
