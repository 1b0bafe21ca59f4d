"""Which kind of data scales worst: efficiency of arrays, tables, text and images at the most workers, and where their worker time went.

Each ``*_table`` has one row per compared point and its 95% bootstrap interval over the
repeats; each ``describe_*`` sentence is built from that table and claims a direction only
when its interval does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labkit.analysis.frames import pick_configuration
from labkit.analysis.intervals import runs_note
from labkit.analysis.scaling import strong_scaling
from labkit.analysis.shares import SPLIT, split_shares
from labkit.analysis.trust import trusted
from labkit.common.errors import ParameterError
from labkit.common.format import format_number

if TYPE_CHECKING:
    import pandas as pd

MiB = 2**20


def kind_scaling(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per kind of data: speedup and efficiency of its most workers over its fewest, with intervals,
    and where its worker time went at each end (``share_<bucket>`` at the most workers,
    ``base_share_<bucket>`` at the fewest).

    ``frames`` maps a kind's name (``"tables"``) to its sweep's trials; where a sweep varied
    a parameter besides workers, its largest value is taken (:func:`pick_configuration`).
    """
    import pandas as pd

    if not isinstance(frames, Mapping) or not frames:
        raise ParameterError("frames", frames, "a dict of kind name -> trials frame")
    rows = []
    for kind, frame in frames.items():
        ok, label = pick_configuration(frame)
        top = strong_scaling(ok).sort_values("workers").iloc[-1]
        most, fewest = ok[ok["workers"] == top["workers"]], ok[ok["workers"] == top["baseline_workers"]]
        row = {"kind": kind, "configuration": label, **top[["workers", "baseline_workers", "repeats"]].to_dict()}
        row.update({k: float(top[k]) for k in ("speedup", "speedup_lo", "speedup_hi", "efficiency")})
        row.update(efficiency_lo=float(top["efficiency_lo"]), efficiency_hi=float(top["efficiency_hi"]))
        row.update({f"share_{b}": v for b, v in split_shares(most).items()})
        row.update({f"base_share_{b}": v for b, v in split_shares(fewest).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _where_time_went(row: Any) -> str:
    shares = {b: row[f"share_{b}"] for b in SPLIT if not math.isnan(row[f"share_{b}"])}
    if not shares:
        return "where its time went was not measured (no time split)."
    listed = ", ".join(f"{b.replace('_', ' ')} {v:.0%}" for b, v in sorted(shares.items(), key=lambda kv: -kv[1])[:3])
    growth = {b: v - row[f"base_share_{b}"] for b, v in shares.items() if not math.isnan(row[f"base_share_{b}"])}
    text = f"at {int(row['workers'])} workers its worker time went to {listed}"
    if growth and max(growth.values()) > 0:
        b = max(growth, key=growth.get)
        text += (
            f"; the share that grew most from {int(row['baseline_workers'])} worker(s) is {b.replace('_', ' ')} "
            f"({row[f'base_share_{b}']:.0%} → {shares[b]:.0%})"
        )
    return text + "."


@trusted
def describe_data_variety(frames: Mapping[str, pd.DataFrame]) -> str:
    """Which kind of data scales worst here, when the efficiency intervals say so, and where its time went."""
    table = kind_scaling(frames)
    lines = [
        f"{r.kind}: {int(r.workers)} workers ran {format_number(r.speedup)}× as fast as {int(r.baseline_workers)} "
        f"({_interval_text(r.speedup_lo, r.speedup_hi, int(r.repeats))}), {r.efficiency:.0%} parallel efficiency."
        for r in table.itertuples()
    ]
    scaled = table[table["workers"] > table["baseline_workers"]]
    if len(scaled) < 2:
        return "\n".join([*lines, "Fewer than two kinds were measured at more than one worker count: no ranking."])
    scaled = scaled.sort_values("efficiency")
    worst, others = scaled.iloc[0], scaled.iloc[1:]
    if scaled[["efficiency_lo", "efficiency_hi"]].isna().any().any():
        verdict_ = (
            f"{worst.kind} had the lowest efficiency measured ({worst.efficiency:.0%}), but without intervals "
            "(fewer than 5 runs a point) the runs do not establish which kind scales worst"
        )
    elif worst["efficiency_hi"] < others["efficiency_lo"].min():
        verdict_ = (
            f"{worst.kind} scales worst here: its efficiency interval "
            f"({worst.efficiency_lo:.0%}–{worst.efficiency_hi:.0%}) lies below every other kind's"
        )
    else:
        rival = others.loc[others["efficiency_lo"].idxmin()]
        verdict_ = (
            f"the runs cannot tell which kind scales worst: the efficiency interval of {worst.kind} "
            f"({worst.efficiency_lo:.0%}–{worst.efficiency_hi:.0%}) overlaps that of {rival.kind} "
            f"({rival.efficiency_lo:.0%}–{rival.efficiency_hi:.0%}); the lowest measured is {worst.kind}"
        )
    lines.append(f"Answer: {verdict_}; {_where_time_went(worst)}")
    return "\n".join(lines)


def _interval_text(lo: float, hi: float, runs: int) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return f"{runs} run(s); {runs_note(runs) or 'interval not available'}"
    return f"95% interval {format_number(lo)}–{format_number(hi)}, {runs} runs"
