"""MLPerf LoadGen's Server scenario against a server, and the search for the peak arrival rate.

:func:`server_run` hands one run to LoadGen (``mlperf_loadgen``, the ``serving`` extra):
Poisson arrivals at a target rate for ``duration_s``, each query's latency counted from
the moment LoadGen *scheduled* it (not when it was sent), LoadGen's verdicts on the latency
bound at a percentile (``result_perf_constraints_met``) and on early stopping, and each
query's latency read back from LoadGen's own trace. LoadGen is open-loop: it never waits
for an answer before sending the next query, so a slow server queues queries instead of
slowing the arrivals (a closed-loop driver would hide that tail). The runs are far shorter
than the 600 s an MLPerf submission needs: they are not MLPerf-compliant results.

:func:`find_peak` searches the highest rate that meets the bound: up (or down) by a factor
until the verdict changes, then bisecting between the highest rate that met it and the
lowest that did not.

>>> find_peak(lambda r: {"rate": r, "met": r <= 33.0}, 10.0, steps=3)[-1]["rate"] < 40
True
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from labkit.common.errors import LabkitError

HINT = "pip install 'labkit[serving]' (mlcommons-loadgen, fastapi, uvicorn)"
_SAMPLE = re.compile(r'"name":"Sample".*?"ph":"b".*?"complete_ns":(\d+)')
_KEYS = (
    "result_perf_constraints_met",
    "result_validity",
    "result_scheduled_samples_per_sec",
    "result_completed_samples_per_sec",
    "result_query_count",
    "result_50.00_percentile_latency_ns",
    "result_95.00_percentile_latency_ns",
    "result_99.00_percentile_latency_ns",
    "early_stopping_result",
)


def require_loadgen() -> Any:
    """The ``mlperf_loadgen`` module, or a LabkitError saying how to install it."""
    try:
        import mlperf_loadgen
    except ImportError as e:
        raise LabkitError(f"the serving study needs MLPerf LoadGen: {HINT}") from e
    return mlperf_loadgen


def loadgen_available() -> bool:
    """Whether MLPerf LoadGen imports here."""
    try:
        require_loadgen()
    except LabkitError:
        return False
    return True


def read_detail(path: Path) -> dict[str, Any]:
    """The figures of LoadGen's detail log that a run keeps (``_KEYS``), by key."""
    out: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith(":::MLLOG"):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG") :])
        except ValueError:
            continue
        if entry.get("key") in _KEYS:
            out[entry["key"]] = entry.get("value")
    return out


def read_latencies(path: Path) -> np.ndarray:
    """Each query's latency (s, from its scheduled time to its answer) from LoadGen's trace, in issue order."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return np.array([int(m) for m in _SAMPLE.findall(text)], float) / 1e9


def _settings(lg: Any, rate: float, bound_s: float, percentile: float, duration_s: float, seed: int) -> Any:
    s = lg.TestSettings()
    s.scenario, s.mode = lg.TestScenario.Server, lg.TestMode.PerformanceOnly
    s.server_target_qps = float(rate)
    s.server_target_latency_ns = int(bound_s * 1e9)
    s.server_target_latency_percentile = float(percentile)
    s.min_duration_ms = int(duration_s * 1000)
    s.max_duration_ms = int(duration_s * 1000)
    s.min_query_count = 1
    s.schedule_rng_seed = s.sample_index_rng_seed = int(seed)
    return s


def server_run(
    server: Any, rate: float, bound_s: float, *, duration_s: float, percentile: float = 0.99, seed: int = 0
) -> dict[str, Any]:
    """One LoadGen Server-scenario run of ``server`` at ``rate`` queries/s; its record.

    ``server.submit(index, done)`` must return at once and call ``done(seconds, error)`` when
    the query is answered (``seconds``: from handing it to a replica to its answer).
    The record holds LoadGen's figures (``p50_s``, ``p95_s``, ``p99_s``, ``met``,
    ``early_stopping``, ``valid``, ``scheduled_rate``), each query's latency (``latency_s``)
    and time at a replica (``service_s``), and the driving process's CPU seconds over the run
    (``driver_cpu_s``: LoadGen with the dispatch and client threads in this process).
    """
    lg = require_loadgen()
    service, errors, lock = [], [], threading.Lock()

    def issue(queries: list[Any]) -> None:
        for q in queries:
            server.submit(q.index, lambda took, error, qid=q.id: answered(qid, took, error))

    def answered(qid: int, took: float, error: BaseException | None) -> None:
        with lock:
            service.append(took)
            if error is not None:
                errors.append(error)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(qid, 0, 0)])

    out = Path(tempfile.mkdtemp(prefix="labkit-loadgen-"))
    sut, qsl = lg.ConstructSUT(issue, lambda: None), lg.ConstructQSL(1024, 1024, lambda s: None, lambda s: None)
    try:
        log = lg.LogSettings()
        log.log_output.outdir, log.log_output.copy_summary_to_stdout, log.enable_trace = str(out), False, True
        cpu0, t0 = time.process_time(), time.perf_counter()
        lg.StartTestWithLogSettings(sut, qsl, _settings(lg, rate, bound_s, percentile, duration_s, seed), log)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        detail, latency = read_detail(out / "mlperf_log_detail.txt"), read_latencies(out / "mlperf_log_trace.json")
    finally:
        lg.DestroyQSL(qsl), lg.DestroySUT(sut)
        shutil.rmtree(out, ignore_errors=True)
    if errors:
        raise LabkitError(f"{len(errors)} queries failed at the server; the first: {errors[0]!r}") from errors[0]
    return _record(rate, bound_s, detail, latency, np.array(service), cpu, wall)


def _record(
    rate: float,
    bound_s: float,
    detail: dict[str, Any],
    latency: np.ndarray,
    service: np.ndarray,
    cpu: float,
    wall: float,
) -> dict[str, Any]:
    ns = {q: detail.get(f"result_{q:.2f}_percentile_latency_ns") for q in (50.0, 95.0, 99.0)}
    seconds = {f"p{int(q)}_s": (v / 1e9 if isinstance(v, (int, float)) else math.nan) for q, v in ns.items()}
    early = str(detail.get("early_stopping_result", ""))
    return {
        "rate": float(rate),
        "bound_s": float(bound_s),
        **seconds,
        "met": bool(detail.get("result_perf_constraints_met", False)),
        "valid": detail.get("result_validity") == "VALID",
        "early_stopping": "successful" in early.lower() and "unsuccessful" not in early.lower(),
        "scheduled_rate": float(detail.get("result_scheduled_samples_per_sec", math.nan)),
        "queries": int(detail.get("result_query_count", len(latency))),
        "latency_s": latency.tolist(),
        "service_s": service.tolist(),
        "driver_cpu_s": cpu,
        "wall_s": wall,
    }


def find_peak(
    measure: Callable[[float], dict[str, Any]], start: float, *, steps: int = 3, grow: float = 1.6, tries: int = 12
) -> list[dict[str, Any]]:
    """Records of ``measure(rate)`` at the rates a search for the highest one that ``met`` the bound visits.

    From ``start``, up by ``grow`` while the runs meet the bound (down while they do not)
    until the verdict changes, then ``steps`` bisections between the highest rate that met it
    and the lowest that did not; at most ``tries`` runs in all.
    """
    records = [measure(start)]
    rate = start
    while len(records) < tries:
        met = [r["rate"] for r in records if r["met"]]
        failed = [r["rate"] for r in records if not r["met"]]
        if met and failed:
            break
        rate = rate * grow if records[-1]["met"] else rate / grow
        records.append(measure(rate))
    for _ in range(steps):
        met = [r["rate"] for r in records if r["met"]]
        failed = [r["rate"] for r in records if not r["met"]]
        if not (met and failed) or len(records) >= tries:
            break
        records.append(measure(math.sqrt(max(met) * min(failed))))
    return records


def available() -> bool:
    """Whether the whole study runs here: MLPerf LoadGen, and FastAPI and uvicorn for the HTTP server."""
    import importlib.util

    return loadgen_available() and all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))


def availability() -> str:
    """Whether the serving study runs here, in words (what it skips when it does not)."""
    if not loadgen_available():
        return f"skipped: MLPerf LoadGen is not installed ({HINT}); nothing below is measured"
    try:
        import fastapi
        import uvicorn
    except ImportError:
        return f"skipped: the HTTP server needs FastAPI and uvicorn ({HINT}); nothing below is measured"
    return f"MLPerf LoadGen found; FastAPI {fastapi.__version__} and uvicorn {uvicorn.__version__} for the HTTP server"
