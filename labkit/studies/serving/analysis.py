"""The serving study's answers: the peak rate under the bound with its interval, percentiles, M/M/c, the limit met.

A run's latency percentiles get a bootstrap interval over consecutive blocks of its
queries (queries that queue behind one another are not independent; a block of a tenth of
the run is resampled whole). A rate *meets* the bound where LoadGen says its percentile
stayed under it. The peak rate is the highest rate that met it; its interval runs from the
highest rate whose percentile's whole 95% interval lies under the bound to the lowest rate
whose whole interval lies over it (NaN, with why, where no run was that clear).

The M/M/c model (:mod:`.queueing`) is built twice: from each configuration's measured
time at a replica (from handing a query on to its answer, in its slowest-arrivals run:
compute and the machinery's cost) and, as a reference, from the model's time alone. M/G/c
is simulated from the same run's measured times themselves (their spread, not an
exponential's): the fairer of the two where service is close to constant.

Which limit a model met is read from replica counts past the cores: where the peak rose
past the cores (its ratio's interval above 1) the replicas limited it; where it fell short
of rising in proportion to the replicas (the ratio to that ideal below 1) the cores did.
Every direction goes through :func:`~labkit.analysis.claims.ratio_words`; every answer
through :func:`~labkit.analysis.trust.trusted`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis import intervals as iv
from labkit.analysis.claims import ratio_words
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError
from labkit.common.format import format_number

from . import queueing

BLOCKS = 10
"""Consecutive blocks a run's queries are cut into for the bootstrap of a percentile."""


def percentile_estimate(latency: Any, q: float, seed: int = 0) -> iv.Estimate:
    """The ``q``-th percentile (0–100) of one run's latencies, with a bootstrap interval over blocks.

    >>> percentile_estimate([0.01, 0.02], 99).note
    'interval not available: 2 queries; a longer run (>= 50 queries) gives one'
    """
    x = np.asarray(latency, float)
    if x.size < 5 * BLOCKS:
        return iv.Estimate(
            float(np.percentile(x, q)) if x.size else math.nan,
            math.nan,
            math.nan,
            f"interval not available: {x.size} queries; a longer run (>= {5 * BLOCKS} queries) gives one",
        )
    blocks = np.array_split(x, BLOCKS)
    size = max(b.size for b in blocks)
    matrix = np.array([np.pad(b, (0, size - b.size), constant_values=np.nan) for b in blocks])

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.asarray(idx).astype(int)
        return np.nanpercentile(matrix[idx].reshape(*idx.shape[:-1], -1), q, axis=-1)

    return iv._bootstrap((np.arange(BLOCKS),), statistic, iv.CONFIDENCE, iv.N_RESAMPLES, seed)


def runs_table(frame: pd.DataFrame, percentile: float = 0.99) -> pd.DataFrame:
    """One row per LoadGen run: its configuration, rate, LoadGen's verdicts and percentiles, and the
    percentile at ``percentile`` with its interval (``pq_s``, ``pq_lo``, ``pq_hi``)."""
    rows = []
    for r in frame.itertuples():
        est = percentile_estimate(r.latency_s, 100 * percentile)
        cpu = r.driver_cpu_s / r.wall_s if r.wall_s else math.nan
        keep = {k: getattr(r, k) for k in ("model", "server", "replicas", "rate", "met", "early_stopping", "valid")}
        keep |= {k: getattr(r, k) for k in ("p50_s", "p95_s", "p99_s", "queries", "bound_s")}
        rows.append(
            {
                **keep,
                "pq_s": est.value,
                "pq_lo": est.lo,
                "pq_hi": est.hi,
                "pq_note": est.note,
                "service_s": float(np.median(r.service_s)) if len(r.service_s) else math.nan,
                "service_samples": list(r.service_s),
                "driver_cores": cpu,
                "under_load": getattr(r, "under_load", None),
            }
        )
    return pd.DataFrame(rows)


def _peak(runs: pd.DataFrame) -> dict[str, Any]:
    met, bound = runs[runs["met"]], runs["bound_s"].iloc[0]
    peak = float(met["rate"].max()) if not met.empty else math.nan
    under = runs.loc[runs["pq_hi"] < bound, "rate"]
    over = runs.loc[runs["pq_lo"] > bound, "rate"]
    lo = float(under.max()) if not under.empty else math.nan
    hi = float(over.min()) if not over.empty else math.nan
    note = ""
    if math.isnan(lo) or math.isnan(hi) or math.isnan(peak):
        lo = hi = math.nan
        note = "interval not available: no run's percentile interval lay wholly on one side of the bound"
    else:
        lo, hi = min(lo, peak), max(hi, peak)
    at = met[met["rate"] == peak].iloc[0] if not met.empty else None
    slow = runs.sort_values("rate").iloc[0]
    figures = {f"p{p}_s": (at[f"p{p}_s"] if at is not None else math.nan) for p in (50, 95, 99)}
    return {
        "peak": peak,
        "peak_lo": lo,
        "peak_hi": hi,
        "peak_note": note,
        **figures,
        "early_stopping": bool(at["early_stopping"]) if at is not None else False,
        "service_s": slow["service_s"],
        "service_samples": slow["service_samples"],
        "driver_cores": runs["driver_cores"].max(),
        "runs": len(runs),
    }


def peak_table(frame: pd.DataFrame, alone: dict[str, Any], percentile: float = 0.99) -> pd.DataFrame:
    """One row per model, server and replica count: the peak rate under the bound, its interval, the
    percentiles at it, M/M/c's peak from the measured time at a replica (``mmc_peak``) and from
    the model's time alone (``mmc_alone``), and M/G/c's from the measured times themselves (``mgc_peak``)."""
    runs = runs_table(frame, percentile)
    rows = []
    for (model, server, n), g in runs.groupby(["model", "server", "replicas"], sort=True):
        row = {"model": model, "server": server, "replicas": int(n), **_peak(g)}
        bound = g["bound_s"].iloc[0]
        row["mmc_peak"] = queueing.peak_rate(int(n), row["service_s"], bound, percentile)
        row["mmc_alone"] = queueing.peak_rate(int(n), float(np.mean(alone[model])), bound, percentile)
        row["mgc_peak"] = queueing.simulated_peak(int(n), row.pop("service_samples"), bound, percentile)
        rows.append(row)
    return pd.DataFrame(rows)


def _ratio(a: pd.Series, b: pd.Series, scale: float = 1.0) -> iv.Estimate:
    """``a``'s peak over ``b``'s (× ``scale``), its interval from the ends of theirs."""
    value = a["peak"] / b["peak"] / scale
    if any(math.isnan(x) for x in (a["peak_lo"], b["peak_lo"])) or not (value > 0 and math.isfinite(value)):
        return iv.Estimate(value, math.nan, math.nan, a["peak_note"] or b["peak_note"] or "interval not available")
    return iv.Estimate(value, a["peak_lo"] / b["peak_hi"] / scale, a["peak_hi"] / b["peak_lo"] / scale)


def limit_words(g: pd.DataFrame, cores: int) -> str:
    """Which limit one model behind one server met, read from the replica counts past the cores."""
    g = g.set_index("replicas").sort_index()
    past = [n for n in g.index if n > cores]
    if cores not in g.index or not past:
        return f"Which limit it met: not measured (needs runs at {cores} replicas, the cores, and beyond)"
    top, at = g.loc[past[-1]], g.loc[cores]
    rose = _ratio(top, at)
    ideal = _ratio(top, at, past[-1] / cores)
    said_rose = ratio_words(rose, f"the peak at {cores} replicas", ("rose past the cores", "fell past the cores"))
    said_ideal = ratio_words(ideal, "a rise in proportion to the replicas", ("above it", "fell short"))
    if iv.direction(ideal.lo, ideal.hi) == "down":
        limit = "the cores"
    elif iv.direction(rose.lo, rose.hi) == "up":
        limit = "the replicas (not the cores)"
    else:
        limit = "the runs cannot tell which"
    return f"From {cores} to {past[-1]} replicas: {said_rose}; {said_ideal}. Limit met: {limit}"


def _rate(value: float, lo: float, hi: float, note: str) -> str:
    if math.isnan(value):
        return "none met the bound (not measured)"
    if math.isnan(lo):
        return f"{format_number(value)}/s (an estimate: {note})"
    return f"{format_number(value)}/s (95% interval {format_number(lo)}–{format_number(hi)}/s)"


def _config_words(r: Any) -> str:
    """One replica count's peak, its percentiles there, and M/M/c's peak, in words."""
    said = f"{r.replicas} replica{'s' * (r.replicas != 1)} {_rate(r.peak, r.peak_lo, r.peak_hi, r.peak_note)}"
    if not math.isnan(r.peak):
        said += f", p50/p95/p99 {'/'.join(format_number(1000 * x) for x in (r.p50_s, r.p95_s, r.p99_s))} ms there"
    mmc, mgc = (f"{format_number(x)}/s" if x > 0 else "none meets the bound" for x in (r.mmc_peak, r.mgc_peak))
    return f"{said}; from the measured times at a replica, M/G/c: {mgc}, M/M/c: {mmc} (models, not measured)"


@trusted
def describe_serving(frame: pd.DataFrame, alone: dict[str, Any], percentile: float, cores: int) -> str:
    """The peak rate under the bound per configuration, M/M/c beside it, and the limit each model met."""
    if frame.empty:
        raise DataError("no LoadGen run finished", "run the study")
    table = peak_table(frame, alone, percentile)
    bound = frame["bound_s"].iloc[0]
    lines = [
        f"Latency bound: p{100 * percentile:g} under {format_number(bound * 1000)} ms, from each query's scheduled time "
        "(MLPerf LoadGen, Server scenario, Poisson arrivals). Runs far shorter than MLPerf's 600 s: not MLPerf-compliant."
    ]
    for (model, server), g in table.groupby(["model", "server"], sort=True):
        parts = [_config_words(r) for r in g.itertuples()]
        lines.append(f"{model} behind {server}: " + "; ".join(parts) + ". " + limit_words(g, cores) + ".")
    cpu = table["driver_cores"].max()
    lines.append(
        f"The driving process (LoadGen, dispatch and client threads) used up to {format_number(cpu)} "
        f"of a core, on this machine's {cores}: that share was not left to the replicas."
    )
    return "\n".join(lines)
