"""Batch size against a latency target: per-batch latency quantiles with intervals, and which batch sizes meet the target.

>>> import math
>>> verdict(0.2, math.nan, math.nan, [0.1, 0.15, 0.12], 0.25)
'met in each of 3 runs (too few runs for an interval)'

Each ``*_table`` has one row per compared point and its 95% bootstrap interval over the
repeats; each ``describe_*`` sentence is built from that table and claims a direction only
when its interval does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from labkit.analysis.frames import ok_trials
from labkit.analysis.trust import trusted
from labkit.common.errors import ParameterError
from labkit.common.format import format_number, format_rate

if TYPE_CHECKING:
    import pandas as pd

MiB = 2**20


def latency_table(frame: pd.DataFrame, quantile: str = "p95") -> pd.DataFrame:
    """Per arrival rate, workers and batch size: the median over runs of each run's latency
    ``quantile`` (``"p50"``, ``"p95"``, ``"p99"``) with its interval, throughput and growth."""
    import pandas as pd

    from labkit.analysis.intervals import median_estimate

    if quantile not in ("p50", "p95", "p99"):
        raise ParameterError("quantile", quantile, "'p50', 'p95' or 'p99'")
    col = f"latency_{quantile}_s"
    ok = ok_trials(frame, (col, "records_per_s"))
    rows = []
    for (rate, workers, batch), g in ok.groupby(["p_rate", "workers", "p_batch"], sort=True):
        lat = g[col].to_numpy(float)
        m = median_estimate(lat)
        rows.append(
            {
                "rate": float(rate),
                "workers": int(workers),
                "batch": int(batch),
                "runs": lat.size,
                f"{quantile}_s": m.value,
                f"{quantile}_lo": m.lo,
                f"{quantile}_hi": m.hi,
                f"{quantile}_runs": lat.tolist(),
                "records_per_s": float(g["records_per_s"].median()),
                "latency_growth_s": float(g["latency_growth_s"].median()) if "latency_growth_s" in g else math.nan,
            }
        )
    return pd.DataFrame(rows)


def verdict(value: float, lo: float, hi: float, runs: list[float], target_s: float) -> str:
    """Whether a latency meets ``target_s``: by its interval, or, without one, by every run."""
    if not (math.isnan(lo) or math.isnan(hi)):
        if hi <= target_s:
            return f"meets it (interval {format_number(lo)}–{format_number(hi)} s, {len(runs)} runs)"
        if lo > target_s:
            return f"misses it (interval {format_number(lo)}–{format_number(hi)} s, {len(runs)} runs)"
        return (
            f"cannot tell: the interval {format_number(lo)}–{format_number(hi)} s holds the target ({len(runs)} runs)"
        )
    few = "too few runs for an interval" if len(runs) < 5 else "the runs do not vary"
    if all(r <= target_s for r in runs):
        return f"met in each of {len(runs)} runs ({few})"
    if all(r > target_s for r in runs):
        return f"missed in each of {len(runs)} runs ({few})"
    return f"met in {sum(r <= target_s for r in runs)} of {len(runs)} runs: cannot tell ({few})"


@trusted
def describe_latency_target(
    frame: pd.DataFrame, target_s: float, rate: float | None = None, quantile: str = "p95"
) -> str:
    """Which batch sizes meet a latency target at an arrival rate, from the measured ``quantile``."""
    if isinstance(target_s, bool) or not isinstance(target_s, (int, float)) or not 0 < target_s < math.inf:
        raise ParameterError("target_s", target_s, "a latency target in seconds > 0")
    table = latency_table(frame, quantile)
    rates = sorted(table["rate"].unique())
    if rate is None and len(rates) == 1:
        rate = rates[0]
    if rate is None or float(rate) not in rates:
        raise ParameterError("rate", rate, f"a measured arrival rate: {rates}")
    table = table[table["rate"] == float(rate)]
    q = quantile
    lines = [f"Target: {q} latency ≤ {format_number(target_s)} s at {format_number(rate)} records/s."]
    met, sure, unsure = [], [], []
    for r in table.itertuples():
        v = r._asdict()
        said = verdict(v[f"{q}_s"], v[f"{q}_lo"], v[f"{q}_hi"], v[f"{q}_runs"], target_s)
        lines.append(
            f"batch {r.batch} on {r.workers} worker(s): {q} {format_number(v[f'{q}_s'])} s (median of runs), "
            f"{format_rate(r.records_per_s, 'records')}: {said}."
        )
        met += [r] if said.startswith(("meets", "met in each")) else []
        sure += [r] if said.startswith("meets") else []
        unsure += [r] if "cannot tell" in said else []
    if not met:
        open_ = ", ".join(str(r.batch) for r in unsure)
        tail = f"; for batch size(s) {open_} the runs cannot tell" if unsure else ""
        lines.append(f"Answer: no batch size measured was shown to meet the target{tail}.")
        return "\n".join(lines)
    best = min(met, key=lambda r: getattr(r, f"{q}_s"))
    how = "by its interval" if best in sure else "in every run, without an interval"
    names = ", ".join(str(r.batch) for r in met)
    lines.append(
        f"Answer: batch size(s) {names} met the target; batch {best.batch} had the lowest {q} "
        f"({format_number(getattr(best, f'{q}_s'))} s; met {how})."
    )
    return "\n".join(lines)
