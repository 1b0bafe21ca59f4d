"""Codecs: compression ratio against throughput per kind of data, and the best trade-off.

Each ``*_table`` has one row per compared point and its 95% bootstrap interval over the
repeats; each ``describe_*`` sentence is built from that table and claims a direction only
when its interval does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.frames import ok_trials
from labkit.analysis.intervals import ratio_estimate
from labkit.analysis.trust import trusted
from labkit.common.errors import ParameterError
from labkit.common.format import format_number, format_rate

if TYPE_CHECKING:
    import pandas as pd

MiB = 2**20


def codec_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per operation, kind of data and codec: compression ratio, median throughput, and the
    throughput against the fastest codec for that data (a ratio of medians with its interval)."""
    import pandas as pd

    ok = ok_trials(frame, ("compression_ratio",))
    rows = []
    for (op, data), g in ok.groupby(["p_op", "p_data"], sort=True):
        by_codec = {c: gc for c, gc in g.groupby("p_codec")}
        fastest = max(by_codec, key=lambda c: by_codec[c]["throughput"].median())
        for codec, gc in by_codec.items():
            tp = gc["throughput"].to_numpy(float)
            rel = ratio_estimate(tp, by_codec[fastest]["throughput"].to_numpy(float))
            rel = rel if codec != fastest else rel._replace(value=1.0, lo=math.nan, hi=math.nan)
            rows.append(
                {
                    "op": op,
                    "data": data,
                    "codec": codec,
                    "runs": tp.size,
                    "compression_ratio": float(gc["compression_ratio"].median()),
                    "throughput": float(np.median(tp)),
                    "unit": gc["unit"].iloc[0],
                    "fastest": fastest,
                    "vs_fastest": rel.value,
                    "vs_fastest_lo": rel.lo,
                    "vs_fastest_hi": rel.hi,
                }
            )
    return pd.DataFrame(rows)


@trusted
def describe_codecs(frame: pd.DataFrame, slack: float = 0.1) -> str:
    """The best trade-off per operation and kind of data: the highest compression ratio among the
    codecs shown to be at most ``slack`` slower than the fastest (the lower end of their
    throughput ratio's interval at ``1 - slack`` or above); the fastest itself where none is."""
    if isinstance(slack, bool) or not isinstance(slack, (int, float)) or not 0 <= slack < 1:
        raise ParameterError("slack", slack, "a fraction between 0 and 1, e.g. 0.1")
    table = codec_table(frame)
    lines = [
        f"Best trade-off: the highest compression ratio among the codecs shown to be at most {slack:.0%} slower "
        f"than the fastest (the 95% interval of their throughput ratio above {1 - slack:.2f}); where no interval "
        "is available, judged by medians: an estimate."
    ]
    for (op, data), g in table.groupby(["op", "data"], sort=True):
        is_fastest = g["codec"] == g["fastest"]
        fastest = g[is_fastest].iloc[0]
        estimate = bool(g.loc[~is_fastest, "vs_fastest_lo"].isna().any())
        low = g["vs_fastest_lo"].where(g["vs_fastest_lo"].notna(), g["vs_fastest"] if estimate else math.nan)
        keep = g[(low >= 1 - slack) | is_fastest]
        best = keep.sort_values(["compression_ratio", "throughput"], ascending=False).iloc[0]
        top = g.sort_values("compression_ratio", ascending=False).iloc[0]
        text = (
            f"{op}, {data} data: {best.codec}, compression ratio {format_number(best.compression_ratio)}, at "
            f"{format_rate(best.throughput, best.unit)}"
        )
        if best.codec == fastest.codec:
            text += " (the fastest)"
        else:
            text += (
                f" ({_vs(best)} of the fastest, {fastest.codec}, at {format_rate(fastest.throughput, fastest.unit)})"
            )
        text += " [by medians: an estimate, intervals not available]" if estimate else ""
        if top.codec != best.codec:
            text += f". The highest ratio, {top.codec} ({format_number(top.compression_ratio)}×), ran at {_vs(top)}"
        lines.append(text + ".")
    return "\n".join(lines)


def _vs(row: Any) -> str:
    if math.isnan(row.vs_fastest_lo) or math.isnan(row.vs_fastest_hi):
        return f"{format_number(row.vs_fastest)}× the fastest's throughput (interval not available)"
    return (
        f"{format_number(row.vs_fastest)}× the fastest's throughput "
        f"(95% interval {format_number(row.vs_fastest_lo)}–{format_number(row.vs_fastest_hi)}×)"
    )
