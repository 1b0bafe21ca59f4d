"""Results for reading: figures with their intervals in words, and the caveats a conclusion carries."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

UNSTABLE_REL = 0.10  # a point whose median is known only to worse than ±10% "may be unstable"

if TYPE_CHECKING:
    import pandas as pd


def _ratio(mid: float, lo: float, hi: float, *, percent: bool = False) -> str:
    def f(v: float) -> str:
        return f"{v:.0%}" if percent else f"{v:.2f}×"

    if mid is None or not math.isfinite(mid):
        return "not measured"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{f(mid)} (interval not available)"
    if lo == hi == mid:
        return f"{f(mid)} (baseline)"
    return f"{f(mid)} ({f(lo)}–{f(hi)})"


def scaling_table(table: pd.DataFrame) -> pd.DataFrame:
    """A speedup table (``labkit.analysis.scaling``) with each figure and its 95% interval as text.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"config": ["{}"] * 2, "workers": [1, 2], "baseline_workers": [1, 1], "repeats": [5, 5],
    ...     "throughput_median": [1.0, 1.6], "speedup": [1.0, 1.6], "speedup_lo": [1.0, 1.2], "speedup_hi": [1.0, 1.9],
    ...     "efficiency": [1.0, 0.8], "efficiency_lo": [1.0, 0.6], "efficiency_hi": [1.0, 0.95]})
    >>> list(scaling_table(t)["speedup"]), list(scaling_table(t)["efficiency"])
    (['1.00× (baseline)', '1.60× (1.20×–1.90×)'], ['100% (baseline)', '80% (60%–95%)'])
    """
    import pandas as pd

    hidden = {"config", "baseline_workers", "throughput_median"}
    keep = [
        c
        for c in table.columns
        if c not in hidden and not c.startswith(("speedup", "efficiency")) and not c.endswith(("_lo", "_hi"))
    ]
    out = table[keep].copy()
    out["speedup"] = [_ratio(r["speedup"], r["speedup_lo"], r["speedup_hi"]) for _, r in table.iterrows()]
    out["efficiency"] = [
        _ratio(r["efficiency"], r["efficiency_lo"], r["efficiency_hi"], percent=True) for _, r in table.iterrows()
    ]
    return pd.DataFrame(out).reset_index(drop=True)


def unstable_note(description: str, ci_rel: float | None, runs: int) -> str:
    """The sentence for a point whose runs spread too much to resolve small effects ("" if not).

    Like pyperf's "result may be unstable": the 95% interval of the point's median time is
    wider than ±10%, so differences smaller than that between it and other points cannot be
    told from noise.

    >>> unstable_note("workers=2", 0.04, 5)
    ''
    >>> unstable_note("workers=2", 0.18, 5)
    'workers=2: result may be unstable: over 5 runs the median time is known only to ±18% (95% interval), so effects smaller than that cannot be resolved here; more repeats, a quieter machine or a bigger problem would.'
    """
    if ci_rel is None or not math.isfinite(ci_rel) or ci_rel <= UNSTABLE_REL:
        return ""
    return (
        f"{description}: result may be unstable: over {runs} runs the median time is known only to "
        f"±{ci_rel:.0%} (95% interval), so effects smaller than that cannot be resolved here; "
        "more repeats, a quieter machine or a bigger problem would."
    )


def _unstable(ok: pd.DataFrame) -> list[str]:
    if "point_ci_rel" not in ok or "point" not in ok:
        return []
    out = []
    for point, rows in ok.groupby("point", sort=False):
        ci = rows["point_ci_rel"].dropna()
        if len(ci):
            where = ", ".join(f"{k}={v}" for k, v in json.loads(point).items() if k not in ("backend", "workload"))
            out.append(unstable_note(f"Caution: at {where}", float(ci.iloc[-1]), len(rows)))
    return [t for t in out if t]


def caveats(frame: pd.DataFrame, env: dict[str, Any]) -> list[str]:
    """Sentences a conclusion drawn from ``frame`` must carry: outside load, oversubscription,
    points whose runs spread too much to resolve small effects."""
    out = []
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    out += _unstable(ok)
    if "under_load" in ok and ok["under_load"].notna().any():
        loaded = ok[ok["under_load"].fillna(False).astype(bool)]
        if len(loaded):
            counts = sorted({int(w) for w in loaded["workers"]})
            out.append(
                f"Caution: {len(loaded)} of {len(ok)} trials ran while other work loaded this machine "
                f"(at workers {counts}); their times may be slowed by it, and so may any comparison that uses them."
            )
    cores = (env.get("cluster") or {}).get("cores") or None
    if cores and "threads" in ok and ok["threads"].notna().any():
        over = sorted({int(w) for w, t in zip(ok["workers"], ok["threads"]) if t == t and t > cores})
        if over:
            out.append(
                f"Caution: at workers {over} the cluster ran more threads than this machine's {cores} cores: "
                "those threads shared cores, so their speedup measures time-slicing, not more hardware."
            )
    return out
