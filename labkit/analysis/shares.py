"""Where worker time went: the shares of the time split's buckets in a set of trials."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SPLIT = ("compute_cpu", "compute_other", "transfer", "spill", "serialization", "idle", "other")


def split_shares(frame: pd.DataFrame) -> dict[str, float]:
    """Median share of each time-split bucket in the trials' worker time (NaN: not measured).

    >>> import pandas as pd
    >>> f = pd.DataFrame({"time_total_s": [2.0, 4.0], "time_idle_s": [1.0, 1.0], "time_compute_cpu_s": [1.0, 3.0]})
    >>> split_shares(f)["idle"], split_shares(f)["transfer"]
    (0.375, nan)
    """
    if "time_total_s" not in frame.columns:
        return dict.fromkeys(SPLIT, math.nan)
    total = frame["time_total_s"].astype(float).where(lambda t: t > 0)
    out = {}
    for b in SPLIT:
        col = f"time_{b}_s"
        share = frame[col].astype(float) / total if col in frame.columns else total * math.nan
        out[b] = float(share.median()) if share.notna().any() else math.nan
    return out
