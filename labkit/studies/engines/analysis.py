"""The engines study's answers: medians with intervals, which engine is faster where the interval says so.

:func:`timings_table` gives, for every engine, phase (``start``, ``cold``, ``warm``), query,
scale factor and N, the median time and its 95% interval (:func:`~labkit.analysis.intervals.median_estimate`:
warm repeats give one from 5 runs on; start-ups and cold runs have one run per round).
:func:`comparison_table` sets the engines' warm times side by side at each query, scale
factor and N (the ratio of their medians, its bootstrap interval), and
:func:`scaling_table` each engine's warm time at the fewest N against the most. Every
direction is worded by :func:`~labkit.analysis.claims.ratio_words` (faster only where the
ratio's interval excludes 1), and :func:`describe_engines` sees only the trials
:func:`~labkit.analysis.trust.trusted` admits.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from labkit.analysis import intervals as iv
from labkit.analysis.claims import ratio_words
from labkit.analysis.trust import load_words, trusted
from labkit.common.errors import DataError
from labkit.common.format import format_number

from .sessions import ENGINES

NAMES = {"spark": "Spark", "dask": "Dask", "duckdb": "DuckDB"}
STARTS = {"spark": "JVM and SparkSession", "dask": "a LocalCluster", "duckdb": "a connection"}
PHASES = ("start", "cold", "warm")


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[frame["status"].eq("ok")].copy()
    ok["query"] = ok["query"].fillna("")
    return ok


def _estimate(times: pd.Series, phase: str) -> iv.Estimate:
    est = iv.median_estimate(times.to_numpy(float))
    if phase != "warm" and est.note.endswith("use repeats >= 5"):
        return est._replace(note=est.note.replace("use repeats", "use rounds"))
    return est


def timings_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per engine, phase, query, scale factor and N: runs, median and 95% interval (s), outside load."""
    rows = []
    keys = ["phase", "engine", "query", "scale_factor", "workers"]
    for (phase, engine, query, sf, n), g in _ok(frame).groupby(keys, sort=False, dropna=False):
        est = _estimate(g["wall_s"], phase)
        rows.append(
            {
                "phase": phase,
                "engine": engine,
                "query": query,
                "scale_factor": sf,
                "workers": int(n),
                "runs": len(g),
                "median_s": est.value,
                "lo_s": est.lo,
                "hi_s": est.hi,
                "note": est.note,
                "under_load": load_words(g),
            }
        )
    out = pd.DataFrame(rows, columns=[*keys, "runs", "median_s", "lo_s", "hi_s", "note", "under_load"])
    order = {"phase": PHASES, "engine": ENGINES}
    rank = {k: out[k].map({v: i for i, v in enumerate(vals)}) for k, vals in order.items()}
    return (
        out.assign(**{f"_{k}": v for k, v in rank.items()})
        .sort_values(["_phase", "query", "scale_factor", "workers", "_engine"])
        .drop(columns=["_phase", "_engine"])
        .reset_index(drop=True)
    )


def _warm(frame: pd.DataFrame) -> pd.DataFrame:
    ok = _ok(frame)
    return ok[ok["phase"].eq("warm")]


def comparison_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per query, scale factor, N and pair of engines: how many times faster ``engine`` ran
    than ``against`` (``against``'s median warm time over ``engine``'s), its interval and the words."""
    rows = []
    for (query, sf, n), g in _warm(frame).groupby(["query", "scale_factor", "workers"], sort=True):
        times = {e: t["wall_s"].to_numpy(float) for e, t in g.groupby("engine")}
        present = [e for e in ENGINES if e in times]
        for i, engine in enumerate(present):
            for against in present[:i]:
                est = iv.ratio_estimate(times[against], times[engine])
                words = ratio_words(est, label="speedup", invert=True)
                rows.append(
                    {"query": query, "scale_factor": sf, "workers": int(n), "engine": engine, "against": against}
                    | {"speedup": est.value, "lo": est.lo, "hi": est.hi, "note": est.note, "words": words}
                )
    columns = ["query", "scale_factor", "workers", "engine", "against", "speedup", "lo", "hi", "note", "words"]
    return pd.DataFrame(rows, columns=columns)


def scaling_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per engine, query and scale factor: its warm time at the fewest N over that at the most."""
    rows = []
    for (engine, query, sf), g in _warm(frame).groupby(["engine", "query", "scale_factor"], sort=True):
        fewest, most = g["workers"].min(), g["workers"].max()
        if fewest == most:
            continue
        est = iv.ratio_estimate(g.loc[g["workers"].eq(fewest), "wall_s"], g.loc[g["workers"].eq(most), "wall_s"])
        rows.append(
            {"engine": engine, "query": query, "scale_factor": sf, "from": int(fewest), "to": int(most)}
            | {"speedup": est.value, "lo": est.lo, "hi": est.hi, "note": est.note}
            | {"words": ratio_words(est, label="speedup", invert=True)}
        )
    columns = ["engine", "query", "scale_factor", "from", "to", "speedup", "lo", "hi", "note", "words"]
    return pd.DataFrame(rows, columns=columns)


def _seconds(row: Any) -> str:
    """A median in seconds with its interval; a bare figure where it has none (said once, by :func:`_once_words`)."""
    if math.isnan(row.lo_s):
        return f"{format_number(row.median_s)} s"
    return iv.show(row.median_s, row.lo_s, row.hi_s, suffix=" s")


def _once_words(table: pd.DataFrame) -> str:
    """Which figures above have no interval, and what would give them one ("" where all have one)."""
    bare = table[table["lo_s"].isna()]
    if bare.empty:
        return ""
    phases = [p for p in PHASES if p in set(bare["phase"])]
    fewest = int(bare["runs"].min())
    more = "rounds >= 5" if "warm" not in phases else "repeats >= 5 (warm) and rounds >= 5 (start-up, cold)"
    return (
        f"Figures without an interval above are estimates ({', '.join(phases)}: as few as {fewest} run"
        f"{'s' * (fewest != 1)} each); {more} give them intervals."
    )


def _start_words(table: pd.DataFrame) -> str:
    start = table[table["phase"].eq("start")]
    if start.empty:
        return "Start-up: not measured."
    parts = []
    for engine, g in start.groupby("engine", sort=False):
        each = ", ".join(f"{_seconds(r)} at N={r.workers}" for r in g.itertuples())
        parts.append(f"{NAMES[engine]} ({STARTS[engine]}) {each}")
    return "Start-up, median: " + "; ".join(parts) + "."


def _cold_words(table: pd.DataFrame, query: str, sf: float, n: int) -> str:
    """Each engine's first run of ``query`` in its session (at the smallest scale factor) beside its warm median."""
    at = table[table["query"].eq(query) & table["scale_factor"].eq(sf) & table["workers"].eq(n)]
    parts = []
    for engine in ENGINES:
        one = at[at["engine"].eq(engine)].set_index("phase")
        if one.empty:
            continue
        said = {p: _seconds(next(one.loc[[p]].itertuples())) if p in one.index else "none admitted" for p in PHASES[1:]}
        parts.append(f"{NAMES[engine]} cold {said['cold']}, warm median {said['warm']}")
    said = "; ".join(parts) or "no run to report (each failed or ran under outside load: see the trials below)"
    return f"First run of {query.upper()} in a session (SF {sf:g}, N={n}): {said}."


def _pair_words(pairs: pd.DataFrame) -> str:
    said = [f"{NAMES[r.engine]} against {NAMES[r.against]}: {r.words}" for r in pairs.itertuples()]
    return "; ".join(said) or "fewer than two engines ran"


def _limits(cores: int, largest: float, parquet_mb: float) -> str:
    return (
        f"What this run on one machine with {cores} cores cannot tell: a shuffle between machines over a "
        "network (every engine here exchanged data within one machine), spilling at 1 TB (scale factor 1000; "
        f"the largest data here was SF {largest:g}, {parquet_mb:,.0f} MB of Parquet), and N past {cores}."
    )


@trusted
def describe_engines(frame: pd.DataFrame, agreement: str, skipped: dict[str, str], cores: int, sizes: dict) -> str:
    """The answers' agreement, start-up, cold against warm, which engine is faster where the interval says so,
    each engine from the fewest N to the most, and what a local run cannot tell."""
    if frame.empty or not frame["status"].eq("ok").any():
        raise DataError("no timed step finished", "run the study")
    table = timings_table(frame)
    lines = [agreement]
    if skipped:
        lines.append("Skipped (not measured): " + "; ".join(f"{NAMES[e]}: {why}" for e, why in skipped.items()) + ".")
    lines.append(_start_words(table))
    warm = table[table["phase"].eq("warm")]
    if not warm.empty:
        top, largest = int(warm["workers"].max()), float(warm["scale_factor"].max())
        first = float(warm["scale_factor"].min())
        lines += [_cold_words(table, query, first, top) for query in sorted(warm["query"].unique())]
        pairs = comparison_table(frame)
        for (query, sf), g in pairs[pairs["workers"].eq(top)].groupby(["query", "scale_factor"], sort=True):
            lines.append(f"Warm, {query.upper()} at SF {sf:g}, N={top}: {_pair_words(g)}.")
        scaling = scaling_table(frame)
        for query, g in scaling[scaling["scale_factor"].eq(largest)].groupby("query", sort=True):
            g = g.sort_values("engine", key=lambda e: e.map(ENGINES.index))
            said = "; ".join(f"{NAMES[r.engine]} {r.words}" for r in g.itertuples())
            lines.append(
                f"From N={g['from'].iloc[0]} to N={g['to'].iloc[0]}, {query.upper()} at SF {largest:g}: {said}."
            )
    biggest = max(sizes) if sizes else math.nan
    lines.append(_once_words(table))
    lines.append(_limits(cores, biggest, sizes.get(biggest, math.nan)))
    return "\n".join(lines)
