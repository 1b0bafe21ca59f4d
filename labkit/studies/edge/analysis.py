"""The edge study's answers: p90 latency and bytes moved against input size on the device and offloaded,
the crossover size measured and from a time model, and the link's transfer against its configured rate.

The time model: on the device, a straight line through the medians of the compute times
(``a + b × size``, fitted to relative errors, ``a >= 0``); offloaded, a straight line through the cloud's compute times, plus
``size × 8 / bandwidth`` and the fixed cost measured at the smallest size. Directions go
through :func:`~labkit.analysis.claims.ratio_words`, answers through
:func:`~labkit.analysis.trust.trusted`.
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


def _line(sizes: Any, times: Any) -> tuple[float, float]:
    """Intercept and slope of a straight line through ``(sizes, times)`` (one point: through the origin)."""
    s, t = np.asarray(sizes, float), np.asarray(times, float)
    if len(s) < 2:
        return 0.0, float(t[0] / s[0]) if len(s) else math.nan
    slope, intercept = np.polyfit(s, t, 1, w=1 / t)  # relative errors: the small sizes count as much as the large
    if intercept < 0:  # no negative fixed cost: a line through the origin instead
        return 0.0, float(np.sum(s * t / t**2) / np.sum(s * s / t**2))
    return float(intercept), float(slope)


def size_table(frame: pd.DataFrame, bandwidth_mbit: float, support: str = "") -> pd.DataFrame:
    """One row per input size: on the device and offloaded, median and p90 latency (s), bytes moved over
    the link per input, and the time model's latency for each."""
    edge = frame[frame["place"] == "edge"].set_index("size")
    cloud = frame[frame["place"] == "cloud"].set_index("size")
    sizes = sorted(set(edge.index) & set(cloud.index))
    if not sizes:
        return pd.DataFrame()
    med = {p: [float(np.median(f.loc[s, "times"])) for s in sizes] for p, f in (("edge", edge), ("cloud", cloud))}
    compute = [
        float(np.median(cloud.loc[s, "cloud_compute"])) if len(cloud.loc[s, "cloud_compute"]) else math.nan
        for s in sizes
    ]
    a_e, b_e = _line(sizes, med["edge"])
    a_c, b_c = _line(sizes, compute)
    per_byte = 8 / (bandwidth_mbit * 1e6) if not support else 0.0
    fixed = med["cloud"][0] - (a_c + b_c * sizes[0]) - sizes[0] * per_byte
    rows = []
    for i, s in enumerate(sizes):
        rows.append(
            {
                "size_kb": s / 1024,
                "edge_median_s": med["edge"][i],
                "edge_p90_s": float(np.percentile(edge.loc[s, "times"], 90)),
                "offload_median_s": med["cloud"][i],
                "offload_p90_s": float(np.percentile(cloud.loc[s, "times"], 90)),
                "cloud_compute_s": compute[i],
                "edge_bytes": 0.0,
                "offload_bytes": float(cloud.loc[s, "bytes_moved"]),
                "model_edge_s": a_e + b_e * s,
                "model_offload_s": fixed + a_c + (b_c + per_byte) * s,
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["model"] = {"edge": (a_e, b_e), "offload": (fixed + a_c, b_c + per_byte)}
    return out


def measured_crossover(table: pd.DataFrame) -> float:
    """The size (KiB) from which offloading's p90 is below the device's, interpolated on log size; NaN where it never is
    in the sizes run, 0 where it is from the smallest."""
    gap = (table["offload_p90_s"] - table["edge_p90_s"]).to_numpy()
    kb = table["size_kb"].to_numpy(float)
    below = np.flatnonzero(gap < 0)
    if not below.size:
        return math.nan
    i = below[0]
    if i == 0:
        return 0.0
    f = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(np.exp(np.log(kb[i - 1]) + f * (np.log(kb[i]) - np.log(kb[i - 1]))))


def model_crossover(table: pd.DataFrame) -> float:
    """The size (KiB) where the time model's two lines cross; NaN where offloading never gets ahead."""
    (a_e, b_e), (a_o, b_o) = table.attrs["model"]["edge"], table.attrs["model"]["offload"]
    if b_e <= b_o:
        return math.nan
    return max(0.0, (a_o - a_e) / (b_e - b_o)) / 1024


def transfer_words(frame: pd.DataFrame, bandwidth_mbit: float, support: str = "") -> str:
    """The link alone (echo) at the largest size against bytes / configured bandwidth, in words."""
    if support:
        return f"Transfer against the configured bandwidth: not measured ({support}; the link was not shaped)."
    link = frame[frame["place"] == "link"]
    if link.empty:
        return "Transfer against the configured bandwidth: not measured (no echo run)."
    row = link.iloc[-1]
    expected = row["size"] * 8 / (bandwidth_mbit * 1e6)
    est = iv.ratio_estimate(row["times"], expected)
    said = ratio_words(est, f"bytes / configured bandwidth ({format_number(expected)} s)", ("slower", "faster"))
    within = "within 10% of it" if abs(est.value - 1) <= 0.1 else "NOT within 10% of it"
    return (
        f"Transfer of {format_number(row['size'] / 1024)} KiB over the {format_number(bandwidth_mbit)} Mbit/s link: "
        f"{said}; the median is {within} (TCP/IP headers add about 3-4% on the wire; the token bucket lets a "
        "first burst through at once)."
    )


@trusted
def describe_edge(frame: pd.DataFrame, bandwidth_mbit: float, support: str = "") -> str:
    """Offloading against the device at the largest size, the crossover measured and modelled, the transfer check."""
    table = size_table(frame, bandwidth_mbit, support)
    if table.empty:
        raise DataError(
            "no size has runs left both on the device and offloaded", "run the study again on a quieter machine"
        )
    edge = frame[frame["place"] == "edge"].set_index("size")
    cloud = frame[frame["place"] == "cloud"].set_index("size")
    big = max(set(edge.index) & set(cloud.index))
    est = iv.ratio_estimate(cloud.loc[big, "times"], edge.loc[big, "times"])
    lines = [
        f"At {format_number(big / 1024)} KiB, sending the input to the cloud took "
        + ratio_words(est, "the on-device time", ("slower", "faster"))
        + "."
    ]
    m, p = measured_crossover(table), model_crossover(table)
    said_m = (
        "offloading's p90 was not below the device's at any size run"
        if math.isnan(m)
        else f"about {format_number(m)} KiB"
    )
    said_p = "offloading never gets ahead" if math.isnan(p) else f"about {format_number(p)} KiB"
    lines.append(
        f"Crossover size (an estimate from {len(table)} sizes): measured {said_m}; the time model (compute + "
        f"bytes / bandwidth) says {said_p}."
    )
    if support:
        lines.append(f"The link was not shaped: {support}; offloading went over this machine's loopback.")
    lines.append(transfer_words(frame, bandwidth_mbit, support))
    return "\n".join(lines)
