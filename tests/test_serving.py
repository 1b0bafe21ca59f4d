"""Serving: M/M/c on known values, the peak search and its interval, the limit in words, parameters
refused before any work, LoadGen driving real servers on a sleeping model (each closed, even
when a run fails), and notebook 15 run headless."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import psutil
import pytest

from labkit import ResultStore
from labkit.common.errors import LabkitError, ParameterError
from labkit.studies import serving
from labkit.studies.serving import analysis, queueing

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "15_model_serving.ipynb"
EXTRA = "the serving extra is not installed: pip install 'labkit[serving]' (mlcommons-loadgen, fastapi, uvicorn)"
needs_serving = pytest.mark.skipif(
    not serving.available(),
    reason=EXTRA,
)


# -- M/M/c ---------------------------------------------------------------------------------


def test_mm1_percentile_is_the_exponential_of_the_spare_rate() -> None:
    # M/M/1: T ~ Exp(μ - λ), so its q-quantile is -ln(1 - q) / (μ - λ).
    assert queueing.response_quantile(0.99, 1, rate=60.0, service_s=0.01) == pytest.approx(math.log(100) / 40, rel=1e-6)
    assert queueing.response_quantile(0.5, 1, rate=99.99, service_s=0.01) > 10 * queueing.response_quantile(
        0.5, 1, rate=1, service_s=0.01
    )
    assert math.isinf(queueing.response_quantile(0.99, 2, rate=200.0, service_s=0.01))


def test_mmc_peak_meets_the_bound_and_more_replicas_raise_it() -> None:
    peaks = [queueing.peak_rate(c, 0.01, 0.1) for c in (1, 2, 4)]
    assert peaks[0] < peaks[1] < peaks[2] < 400
    for c, peak in zip((1, 2, 4), peaks):
        assert queueing.response_quantile(0.99, c, rate=peak, service_s=0.01) <= 0.1 + 1e-9
        assert queueing.response_quantile(0.99, c, rate=peak * 1.01, service_s=0.01) > 0.1
    assert queueing.peak_rate(1, 0.01, 0.02) == 0.0  # one query alone misses it: -ln(0.01) × 10 ms > 20 ms


def test_mgc_with_exponential_service_is_mmc_and_constant_service_beats_it() -> None:
    """M/G/c's simulation against M/M/c's formula where they must agree (exponential service
    times drawn from many samples), and where a constant service time must do better."""
    exponential = np.random.default_rng(3).exponential(0.01, 20_000)
    for c in (1, 2):
        formula = queueing.response_quantile(0.9, c, rate=50.0 * c, service_s=0.01)
        simulated = queueing.simulated_quantile(0.9, c, rate=50.0 * c, service=exponential, n=40_000)
        assert abs(simulated / formula - 1) < 0.1, (c, simulated, formula)
    constant = queueing.simulated_peak(2, [0.01], 0.1)
    assert queueing.peak_rate(2, 0.01, 0.1) < constant < 200  # no exponential tail, below the replicas' capacity
    assert queueing.simulated_quantile(0.99, 2, rate=0.9 * constant, service=[0.01]) <= 0.1
    assert queueing.simulated_peak(1, [0.2], 0.1) == 0.0  # one query alone misses it


# -- the search, the percentile interval, the limit ------------------------------------------


def test_the_search_brackets_the_peak_and_bisects_between() -> None:
    seen = []

    def measure(rate: float) -> dict:
        seen.append(rate)
        return {"rate": rate, "met": rate <= 70.0}

    records = serving.find_peak(measure, 10.0, steps=3, grow=2.0)
    met = max(r["rate"] for r in records if r["met"])
    failed = min(r["rate"] for r in records if not r["met"])
    assert met <= 70.0 < failed and failed / met < 2.0 ** (1 / 4) + 1e-9
    assert seen[:4] == [10.0, 20.0, 40.0, 80.0]
    assert len(serving.find_peak(lambda r: {"rate": r, "met": True}, 1.0, tries=5)) == 5


def test_a_percentile_interval_has_width_and_holds_its_value() -> None:
    x = np.random.default_rng(0).exponential(0.01, 2000)
    est = serving.percentile_estimate(x, 99)
    assert est.lo < est.value < est.hi and est.value == pytest.approx(np.percentile(x, 99))
    assert "interval not available" in serving.percentile_estimate(x[:10], 99).note


def _peaks(values: dict[int, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"replicas": n, "peak": v, "peak_lo": lo, "peak_hi": hi, "peak_note": ""} for n, (v, lo, hi) in values.items()]
    )


def test_a_peak_that_stops_at_the_cores_is_said_to_meet_the_cores() -> None:
    flat = _peaks({1: (50, 45, 55), 2: (95, 90, 100), 3: (96, 90, 101)})
    words = analysis.limit_words(flat, cores=2)
    assert "Limit met: the cores" in words and "fell short" in words


def test_a_peak_that_rises_past_the_cores_is_said_to_meet_the_replicas() -> None:
    rising = _peaks({1: (50, 45, 55), 2: (100, 95, 105), 3: (150, 140, 160)})
    words = analysis.limit_words(rising, cores=2)
    assert "Limit met: the replicas (not the cores)" in words and "rose past the cores" in words
    assert "not measured" in analysis.limit_words(rising[rising["replicas"] <= 2], cores=2)


# -- parameters, before any work -------------------------------------------------------------


@needs_serving  # a study is refused without LoadGen, before its other parameters are checked
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"models": ["resnet"]}, "models"),
        ({"servers": "grpc"}, "servers"),
        ({"replicas": [0]}, "replicas"),
        ({"bound_ms": -1}, "bound_ms"),
        ({"percentile": 1.0}, "percentile"),
        ({"service_ms": 200.0}, "service_ms"),
        ({"steps": -1}, "steps"),
        ({"store": 3}, "store"),
    ],
)
def test_bad_parameters_are_refused_before_any_work(kwargs: dict, name: str) -> None:
    with pytest.raises((ParameterError, TypeError)) as info:
        serving.ServingStudy(**kwargs)
    assert name in str(info.value)


# -- real servers, real LoadGen --------------------------------------------------------------


def _check_run(record: dict, sleep_s: float) -> None:
    latency = np.asarray(record["latency_s"])
    assert len(latency) == record["queries"] == len(record["service_s"]) > 0
    assert (latency >= sleep_s).all()  # from scheduled to answered: never shorter than the sleep
    assert record["p50_s"] <= record["p95_s"] <= record["p99_s"]
    assert record["driver_cpu_s"] > 0


def _uvicorn_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "uvicorn" in " ".join(p.cmdline())]


@needs_serving
def test_loadgen_drives_the_http_service_and_leaves_nothing_listening() -> None:
    with serving.HttpServer(serving.SleepModel(0.005), 1) as server:
        port = server.port
        assert serving.port_open(port)
        record = serving.server_run(server, 40.0, 0.5, duration_s=1.0)
    _check_run(record, 0.005)
    assert not serving.port_open(port) and not _uvicorn_children()


class Failing:
    """A server whose every query fails."""

    def submit(self, index: int, done) -> None:
        done(0.0, RuntimeError("no replica"))


@needs_serving
def test_a_failed_run_raises_and_still_closes_the_server() -> None:
    with pytest.raises(LabkitError, match="queries failed at the server"):
        serving.server_run(Failing(), 20.0, 0.5, duration_s=0.3)
    with pytest.raises(LabkitError), serving.HttpServer(serving.SleepModel(0.001), 1) as server:
        port = server.port
        serving.server_run(Failing(), 20.0, 0.5, duration_s=0.3)
    assert not serving.port_open(port) and not _uvicorn_children()


@needs_serving
def test_loadgen_drives_dask_actors_and_releases_them(scaled_lab) -> None:
    with serving.ActorServer(scaled_lab, serving.SleepModel(0.005), 1) as server:
        threads = list(server.threads)
        record = serving.server_run(server, 40.0, 0.5, duration_s=1.0)
    _check_run(record, 0.005)
    assert scaled_lab.workers == 1 and not any(t.is_alive() for t in threads)
    assert not any(scaled_lab.client.has_what().values())  # no actor left on a worker


# -- the notebook ----------------------------------------------------------------------------

SMALL = {"models": ["sleep"], "replicas": [1], "duration_s": 1.0, "steps": 1, "tries": 4, "experiment": "nb15"}


def test_notebook_declares_the_parameters_the_tests_set() -> None:
    assert set(SMALL) | {"store", "bound_ms", "servers"} <= set(papermill.inspect_notebook(str(NOTEBOOK)))


@needs_serving
def test_notebook_finds_a_peak_under_the_bound_and_closes_its_servers(tmp_path: Path, notebooks_store) -> None:
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(notebooks_store.path) as s:
        frame = s.trials_frame("nb15/peak")
    assert set(frame["server"]) == {"dask-actors", "http-uvicorn"} and (frame["status"] == "ok").all()
    assert "MLPerf LoadGen found" in printed
    if all_loaded(frame):
        assert NOTHING_LEFT in printed
    else:
        assert "not MLPerf-compliant" in printed and "sleep behind " in printed
        assert "Which limit it met: not measured" in printed  # one replica count: no run past the cores
    assert not _uvicorn_children()
