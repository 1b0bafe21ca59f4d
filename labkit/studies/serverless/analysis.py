"""The serverless study's answers: each tier's time with its interval, the cold starts measured against
the offline replay's, and the trace's cost as Lambda requests against an always-on worker.

Directions go through :func:`~labkit.analysis.claims.ratio_words`, answers through
:func:`~labkit.analysis.trust.trusted`. Costs are list-price estimates from one trace: they
carry no interval and claim no direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis import intervals as iv
from labkit.analysis.claims import ratio_words
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError
from labkit.common.format import format_number

from .function import TIERS, percentiles
from .pricing import compare_costs
from .trace import ambiguous

WORDS = {
    "process": "a fresh Python process per call",
    "worker": "a Dask worker started from nothing, then its first task",
    "warm": "a warm worker with the model loaded",
}


def tiers_table(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per tier: calls, median (s) with its 95% interval, p50/p90/p99 of the calls."""
    rows = []
    for tier in [t for t in TIERS if t in set(calls["tier"])]:
        x = calls.loc[calls["tier"] == tier, "seconds"].to_numpy(float)
        est = iv.median_estimate(x)
        rows.append(
            {
                "tier": tier,
                "what": WORDS[tier],
                "calls": len(x),
                "median_s": est.value,
                "lo_s": est.lo,
                "hi_s": est.hi,
                "note": est.note,
                **percentiles(x),
            }
        )
    return pd.DataFrame(rows)


def replay_table(replay: dict[str, Any]) -> pd.DataFrame:
    """One row per query of the replay: arrival, latency, cold (measured) and cold (offline replay), worker."""
    keys = ("arrival_s", "submit_s", "end_s", "latency_s", "cold", "predicted_cold", "init_s", "run_s", "worker")
    return pd.DataFrame({k: replay[k] for k in keys})


def cost_table(replay: dict[str, Any], study: Any, instance_prices: Any) -> pd.DataFrame:
    """The trace as Lambda-priced requests against one always-on worker, for the whole trace and per million requests."""
    span = max(float(np.max(replay["end_s"])), study.duration_s)
    hourly = instance_prices.price(study.instance)
    calls = {"run_s": replay["run_s"], "init_s": replay["init_s"]}
    c = compare_costs(calls, study.prices, study.memory_mb, hourly, span, study.bill_init)
    return pd.DataFrame(
        [
            {
                "pricing": f"Lambda, {study.memory_mb:g} MB",
                "cost": c["lambda"],
                "per_million": c["lambda_per_million"],
                "basis": "an estimate (list prices)",
            },
            {
                "pricing": f"always-on {study.instance}",
                "cost": c["always_on"],
                "per_million": c["always_on_per_million"],
                "basis": "an estimate (list prices)",
            },
        ]
    )


def replay_summary(replay: dict[str, Any]) -> pd.DataFrame:
    """The replay in one row: arrivals, keep-alive applied, cold starts measured and predicted offline,
    arrivals near the keep-alive's end (where the two may differ) and the median latency of cold and warm queries."""
    edge = ambiguous(replay["arrival_s"], replay["end_s"], replay["keep_alive_s"], replay["interval_s"] + 0.5)
    lat, cold = np.asarray(replay["latency_s"]), np.asarray(replay["cold"], bool)
    return pd.DataFrame(
        [
            {
                "arrivals": len(lat),
                "keep_alive_s": replay["keep_alive_s"],
                "cold_starts": replay["cold_starts"],
                "predicted_cold_starts": replay["predicted_cold_starts"],
                "near_keep_alive_end": edge,
                "cold_median_s": float(np.median(lat[cold])) if cold.any() else float("nan"),
                "warm_median_s": float(np.median(lat[~cold])) if (~cold).any() else float("nan"),
            }
        ]
    )


def _tier_lines(calls: pd.DataFrame) -> list[str]:
    warm = calls.loc[calls["tier"] == "warm", "seconds"].to_numpy(float)
    lines = []
    for tier in ("process", "worker"):
        x = calls.loc[calls["tier"] == tier, "seconds"].to_numpy(float)
        if not len(x) or not len(warm):
            lines.append(f"{WORDS[tier][0].upper()}{WORDS[tier][1:]}: not measured against a warm call.")
            continue
        est = iv.ratio_estimate(x, warm)
        said = ratio_words(est, "a warm call's time", ("slower", "faster"))
        lines.append(
            f"{WORDS[tier][0].upper()}{WORDS[tier][1:]}: median {format_number(np.median(x) * 1000)} ms, {said}."
        )
    return lines


@trusted
def describe_serverless(
    calls: pd.DataFrame, replay: pd.DataFrame, study: Any, instance_prices: Any, record: dict[str, Any] | None = None
) -> str:
    """The tiers against a warm call, the replay's cold starts against the offline replay's, and the costs."""
    if calls.empty:
        raise DataError("no call is left to answer from", "run the study again on a quieter machine")
    lines = _tier_lines(calls)
    lines.append(
        "What these starts are not: no virtual machine boots, no code or image is downloaded, and after the "
        "first run the files come from a warm page cache."
    )
    if not replay.empty and record is not None:
        r = record
        edge = ambiguous(r["arrival_s"], r["end_s"], r["keep_alive_s"], r["interval_s"] + 0.5)
        lines.append(
            f"Replay of {len(r['arrival_s'])} arrivals, scale to zero with a {format_number(r['keep_alive_s'])} s "
            f"keep-alive ({r['wait_count']} decisions × {format_number(r['interval_s'])} s): {r['cold_starts']} cold "
            f"starts measured; the offline replay of the same policy on the same trace predicts "
            f"{r['predicted_cold_starts']}; {edge} arrivals came within a decision (and 0.5 s) of the keep-alive's end, "
            "where either may go the other way."
        )
        costs = cost_table(r, study, instance_prices)
        lam, always = costs["per_million"]
        lines.append(
            f"Per million requests like these: Lambda {format_number(lam)}, always-on "
            f"{format_number(always)} {study.prices.currency} (estimates from list prices, one trace: no interval). "
            + study.prices.describe()
            + " "
            + instance_prices.describe()
        )
    return "\n".join(lines)
