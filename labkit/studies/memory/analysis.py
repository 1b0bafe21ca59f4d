"""Spilling: how much slower a run whose working set exceeds the memory limit is.

Each ``*_table`` has one row per compared point and its 95% bootstrap interval over the
repeats; each ``describe_*`` sentence is built from that table and claims a direction only
when its interval does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.frames import point_params, require
from labkit.analysis.intervals import Estimate, ratio_estimate
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError
from labkit.common.format import format_rate

if TYPE_CHECKING:
    import pandas as pd

MiB = 2**20
SLOWER = ("slower", "faster")


def spill_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per working-set ratio: runs ok and failed, median throughput, the slowdown against the
    smallest ratio (its throughput over this one's, with its interval) and the bytes spilled."""
    import pandas as pd

    require(frame, ("point", "status", "throughput"))
    params = point_params(frame)
    base_ratio = params.loc[frame["status"] == "ok", "ratio"].min()
    if pd.isna(base_ratio):
        raise DataError("no memory-spill trial with status ok", "needs at least one successful trial")
    base = frame.loc[(params["ratio"] == base_ratio) & (frame["status"] == "ok"), "throughput"].to_numpy(float)
    rows = []
    for ratio, g in frame.groupby(params["ratio"], sort=True):
        ok = g[g["status"] == "ok"]
        row: dict[str, Any] = {"ratio": float(ratio), "runs": len(ok), "failed": len(g) - len(ok)}
        row["error"] = g.loc[g["status"] != "ok", "error"].dropna().head(1).tolist() or None
        tp = ok["throughput"].to_numpy(float)
        est = ratio_estimate(base, tp) if len(tp) and ratio != base_ratio else None
        row.update(
            throughput=float(np.median(tp)) if len(tp) else math.nan,
            unit=g["unit"].dropna().iloc[0] if g["unit"].notna().any() else None,
            slowdown=est.value if est else (1.0 if len(tp) else math.nan),
            slowdown_lo=est.lo if est else math.nan,
            slowdown_hi=est.hi if est else math.nan,
            note=est.note if est else "",
        )
        for col in ("spilled_bytes", "spill_write_bytes"):
            vals = ok[col].astype(float) if col in ok.columns else ok["throughput"] * math.nan
            row[col] = float(vals.median()) if vals.notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


@trusted
def describe_spill(frame: pd.DataFrame) -> str:
    """How much slower runs whose working set passes the memory limit are than one that fits."""
    table = spill_table(frame)
    base = table[table["runs"] > 0].iloc[0]
    lines = [
        f"Baseline: working set {base.ratio:g}× the memory limit, {format_rate(base.throughput, base.unit)} "
        f"({_spilled(base)})."
    ]
    for r in table[table["ratio"] != base.ratio].itertuples():
        failed = f"; {r.failed} run(s) failed ({r.error[0][:120]})" if r.failed else ""
        if r.runs == 0:
            lines.append(f"{r.ratio:g}× the limit: no run finished{failed}.")
            continue
        how = ratio_words(
            Estimate(r.slowdown, r.slowdown_lo, r.slowdown_hi, r.note), words=SLOWER, label="slowdown", invert=True
        )
        lines.append(f"{r.ratio:g}× the limit against {base.ratio:g}×: {how}; {_spilled(r)}{failed}.")
    return "\n".join(lines)


def _spilled(row: Any) -> str:
    """What a row's runs spilled (medians), in words; "not measured" where the workers do not say."""
    if math.isnan(row.spilled_bytes) and math.isnan(row.spill_write_bytes):
        return "spilling not measured"
    held = "not measured" if math.isnan(row.spilled_bytes) else f"{row.spilled_bytes / MiB:.0f} MiB"
    written = "not measured" if math.isnan(row.spill_write_bytes) else f"{row.spill_write_bytes / MiB:.0f} MiB"
    return f"on disk while held: {held}; written to disk during the run: {written}"
