"""The cheapest configuration that meets a time target, judged by intervals, and the words for it.

From a cost table (:func:`labkit.analysis.cost.cost_table`, one row per grid point and
instance type):

- a configuration **meets** the target only when its time's 95% interval lies below it
  (a median below the target without an interval is an estimate: it does not count);
- among those, the one with the lowest median cost is **the cheapest** only when its cost
  interval lies below every other qualifying one's; otherwise the ones whose intervals it
  does not clear are named as not told apart from it;
- when none meets the target, the answer says so.

Each configuration's time against the target is worded by
:func:`~labkit.analysis.claims.ratio_words` (the time over the target, "under" only where
its interval lies below 1); costs are given with their intervals
(:func:`~labkit.analysis.intervals.show`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

from .claims import ratio_words
from .cost import point_labels, snapshot_of
from .intervals import Estimate, show

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Cheapest:
    """Which configurations meet a time target, and which of them is cheapest."""

    target_s: float
    meets: pd.DataFrame
    best: Any | None  # a row of the table (a namedtuple), or None
    tied: pd.DataFrame  # rows that meet the target whose cost intervals the best's does not lie below


def check_target(target_s: Any) -> float:
    """A time target in seconds: finite and > 0."""
    if isinstance(target_s, bool) or not isinstance(target_s, (int, float)) or not 0 < target_s < math.inf:
        raise ParameterError("target_s", target_s, "a time in seconds > 0, e.g. 2.0")
    return float(target_s)


def cheapest_within(table: pd.DataFrame, target_s: float) -> Cheapest:
    """The configurations of ``table`` that meet ``target_s``, and the cheapest (see the module docstring)."""
    snapshot_of(table, "the cheapest configuration")
    target = check_target(target_s)
    meets = table[table["time_hi"].notna() & (table["time_hi"] < target)].sort_values(["cost", "workers"])
    if meets.empty:
        return Cheapest(target, meets, None, meets)
    best = next(meets.itertuples())
    others = meets.iloc[1:]
    if math.isnan(best.cost_hi):
        tied = others
    else:
        tied = others[~(others["cost_lo"] > best.cost_hi)]
    return Cheapest(target, meets, best, tied)


def _cost(row: Any) -> str:
    return f"{show(row.cost, row.cost_lo, row.cost_hi)} {row.unit}"


def describe_cheapest(table: pd.DataFrame, target_s: float) -> str:
    """The time of each point against the target, and the cheapest configuration that meets it, in words."""
    found = cheapest_within(table, target_s)
    names = point_labels(table)
    target = found.target_s
    lines = [
        f"Time target {target:g} s: a configuration meets it only when the 95% interval of its median time "
        "lies below the target."
    ]
    for point, g in table.groupby("point", sort=True):
        r = g.iloc[0]
        est = Estimate(r.time_s / target, r.time_lo / target, r.time_hi / target, r.time_note)
        lines.append(f"{names[point]}: " + ratio_words(est, "the target time", ("over", "under")) + ".")
    if found.best is None:
        lines.append(f"No configuration is shown to meet the target of {target:g} s: none is named cheapest.")
        return "\n".join(lines)
    best = found.best
    what = f"{names[best.point]} on {best.instance} ({best.provider})"
    if found.tied.empty:
        rest = "" if len(found.meets) == 1 else ", its cost interval below every other one that meets it"
        lines.append(f"Cheapest that meets it: {what}, {_cost(best)}{rest}.")
        return "\n".join(lines)
    tied = "; ".join(f"{names[r.point]} on {r.instance}, {_cost(r)}" for r in found.tied.itertuples())
    lines.append(
        f"Cheapest that meets it: not told apart. The lowest median cost is {what}, {_cost(best)}, but its "
        f"cost interval does not lie below these: {tied}."
    )
    return "\n".join(lines)
