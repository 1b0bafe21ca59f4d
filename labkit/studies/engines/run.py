"""The engines study's run: TPC-H Q1 and Q3 on Spark, Dask and DuckDB at each N and scale factor.

:class:`EngineStudy` checks every parameter when it is made, before any data or cluster
work. :meth:`EngineStudy.run` first makes (or finds) the data of every scale factor, then,
``rounds`` times, for each N: starts the engines one after the other (each start timed),
runs every query at every scale factor on them (:meth:`~.measure.Runner.block`: a cold run
each, then warm repeats in shuffled rounds), and closes them all, whatever happened. Every
timed step is a trial of workload ``tpch`` under ``f"{experiment}/tpch"``, stored as it ends
(with the outside load over it) through :class:`~labkit.experiment.lifecycle.RecordedRun`.

>>> EngineStudy(scale_factors=[0], engines=["dask"])
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: scale_factors=[0] is not allowed: None (sized to the machine) or a list of numbers > 0 and <= 1000
>>> worker_counts(None, cores=2), worker_counts(None, cores=6)
([1, 2], [1, 2, 4, 6])
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

from labkit.cluster.capacity import usable_cores
from labkit.common import checks
from labkit.common.errors import LabkitError, ParameterError
from labkit.experiment.lifecycle import RecordedRun, StudyCode, check_lab
from labkit.store import ResultStore, check_store_path

from .answers import RTOL
from .data import HINT, check_data_dir, dataset, default_scale_factors, parts_for
from .measure import Runner
from .queries import QUERIES
from .results import EngineResult
from .sessions import ENGINES, problems


def _memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def scale_factors(value: Any, cores: int) -> list[float]:
    """The scale factors: as given (numbers > 0 and <= 1000), or for None sized to the machine
    (:func:`~.data.default_scale_factors`)."""
    if value is None:
        return default_scale_factors(cores, _memory())
    values = [value] if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    ok = isinstance(values, (list, tuple)) and values
    if not ok or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in values):
        raise ParameterError("scale_factors", value, "None (sized to the machine) or a list of numbers > 0 and <= 1000")
    if any(not (0 < v <= 1000 and math.isfinite(v)) for v in values):
        raise ParameterError("scale_factors", value, "None (sized to the machine) or a list of numbers > 0 and <= 1000")
    return sorted({float(v) for v in values})


def worker_counts(value: Any, cores: int) -> list[int]:
    """N: as given (integers >= 1), or for None 1, 2, 4, … up to the cores, and the cores."""
    if value is None:
        return sorted({*(2**k for k in range(cores.bit_length()) if 2**k <= cores), cores})
    values = [value] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    if not isinstance(values, (list, tuple)) or not values:
        raise ParameterError("workers", value, "None (1, 2, 4, … up to the cores) or a list of integers >= 1")
    return sorted({checks.count("workers", v) for v in values})


def _names(name: str, value: Any, allowed: tuple[str, ...], none: str = "") -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not values or any(v not in allowed for v in values):
        raise ParameterError(name, value, f"{none}one or more of {list(allowed)}")
    return tuple(v for v in allowed if v in values)


def pick_engines(chosen: tuple[str, ...] | None, missing: dict[str, str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The engines to run and those skipped with why (``missing``: :func:`~.sessions.problems`): for None,
    every engine that runs here; named engines must all run here (else a LabkitError saying what to install)."""
    missing = {k: v for k, v in missing.items() if k in ENGINES}
    if chosen is None:
        return tuple(e for e in ENGINES if e not in missing), missing
    if absent := [f"{e}: {missing[e]}" for e in chosen if e in missing]:
        raise LabkitError(f"asked for engines that cannot run here ({'; '.join(absent)}); {HINT}")
    return chosen, {k: v for k, v in missing.items() if k not in chosen}


@dataclass(frozen=True)
class EngineStudy:
    """TPC-H Q1 and Q3 on Spark ``local[N]``, a Dask LocalCluster of N single-thread workers and DuckDB with N threads.

    Parameters
    ----------
    scale_factors : list of float or None
        TPC-H scale factors (1: about 1 GB of raw data); None: from 0.1 up, sized to the machine.
    workers : list of int or None
        N; None: 1, 2, 4, … up to the cores, and the cores.
    queries : list of str
        ``"q1"`` and ``"q3"``.
    engines : list of str or None
        ``"spark"``, ``"dask"``, ``"duckdb"``; None: every one installed here (the others are skipped, with why).
    repeats : int
        Warm runs of each query on each engine per session (5 or more give intervals).
    rounds : int
        Sessions per N (each starts every engine again): start-ups and cold runs get one per round.
    spark_memory : str
        Spark's driver memory (``"1g"``, ``"512m"``).
    data_dir : str or None
        The cache of generated data (None: ``$LABKIT_TPCH_DIR`` or ``~/.cache/labkit/tpch``).
    rtol : float
        Relative tolerance when the engines' answers are compared.
    seed : int
        Seed of the shuffled orders.
    store, experiment
        Every timed step is stored as a trial under ``f"{experiment}/tpch"`` when ``store`` is given.
    """

    scale_factors: Any = None
    workers: Any = None
    queries: Any = tuple(QUERIES)
    engines: Any = None
    repeats: int = 5
    rounds: int = 1
    spark_memory: str = "1g"
    data_dir: Any = None
    rtol: float = RTOL
    seed: int = 0
    store: Any = None
    experiment: str = "engines"
    cores: int = field(default_factory=usable_cores)
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "scale_factors", scale_factors(self.scale_factors, self.cores))
        set_(self, "workers", worker_counts(self.workers, self.cores))
        set_(self, "queries", _names("queries", self.queries, tuple(QUERIES)))
        checks.count("repeats", self.repeats)
        checks.count("rounds", self.rounds)
        checks.count("seed", self.seed, least=0)
        if not isinstance(self.spark_memory, str) or not re.fullmatch(r"\d+[kmgt]", self.spark_memory.lower()):
            raise ParameterError("spark_memory", self.spark_memory, "a JVM memory size such as '1g' or '512m'")
        if isinstance(self.rtol, bool) or not isinstance(self.rtol, numbers.Real) or not 0 <= self.rtol < 1:
            raise ParameterError("rtol", self.rtol, "a number >= 0 and < 1")
        check_data_dir(self.data_dir)
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ParameterError("experiment", self.experiment, "a non-empty name")
        if self.store is not None and not isinstance(self.store, ResultStore):
            check_store_path(self.store)
        names = None if self.engines is None else _names("engines", self.engines, ENGINES, "None (every one here) or ")
        if "data" in (missing := problems()):
            raise LabkitError(f"the engines study cannot make its data: {missing['data']}")
        chosen, skipped = pick_engines(names, missing)
        set_(self, "engines", chosen)
        set_(self, "skipped", skipped)

    def run(self, lab: Any) -> EngineResult:
        """Every query, scale factor, N and engine; ``lab`` records the run (its own workers sit idle)."""
        check_lab(lab)
        data = [dataset(sf, self.data_dir, parts_for(sf, self.cores)) for sf in self.scale_factors]
        config = {k: v for k, v in vars(self).items() if k not in ("store", "skipped")}
        code = StudyCode("tpch", Runner.block)
        with RecordedRun(self.store, f"{self.experiment}/tpch", code, lab, config=config) as rec:
            runner = Runner(rec, self.repeats, self.spark_memory, self.seed)
            for round_ in range(self.rounds):
                for n in self.workers:
                    with runner.session(list(self.engines), n, round_) as live:
                        for ds in data:
                            for query in self.queries:
                                runner.block(live, query, ds, n, round_)
        return EngineResult(
            runner.records, runner.answers, data, list(self.engines), dict(self.skipped), self.cores, self.rtol
        )
