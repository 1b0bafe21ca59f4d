"""How close to the hardware: per-worker limits from the probes, and the fraction of them
each configuration reached (the roofline fraction), with intervals from the repeats.

>>> hardware_limits(bandwidth=10e9, flops=50e9)
{'bytes': 10000000000.0, 'flops': 50000000000.0}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_rate, format_workers

from .frames import describe_config, require, varying
from .intervals import bootstrap_ratio

if TYPE_CHECKING:
    import pandas as pd


def hardware_limits(
    probe: Any = None, *, bandwidth: float | None = None, flops: float | None = None
) -> dict[str, float]:
    """Per-worker hardware limits keyed by work unit, for :func:`roofline_fraction`.

    From a :class:`labkit.probes.HardwareProbe`: the median over workers of the best STREAM
    triad bandwidth (``"bytes"``, bytes/s) and of float64 matmul FLOP/s (``"flops"``), or
    the client's figures when no worker was probed. ``bandwidth`` and ``flops`` given
    explicitly win (e.g. a datasheet's numbers).

    >>> hardware_limits(bandwidth=10e9, flops=50e9)
    {'bytes': 10000000000.0, 'flops': 50000000000.0}
    """
    limits: dict[str, float] = {}
    if probe is not None:
        for unit, get in (("bytes", probe.bandwidth), ("flops", probe.flops)):
            values = [v for v in (get(loc) for loc in probe.workers) if v] or [v for v in [get("client")] if v]
            if values:
                limits[unit] = float(np.median(values))
    for unit, value in (("bytes", bandwidth), ("flops", flops)):
        if value is not None:
            limits[unit] = float(value)
    if not limits:
        raise ParameterError("probe", probe, "a HardwareProbe with figures, or bandwidth= / flops= numbers")
    return limits


def roofline_fraction(
    frame: pd.DataFrame | list[pd.DataFrame], limits: dict[str, float], *, per_worker: bool = False
) -> pd.DataFrame:
    """The fraction of a hardware limit each point's throughput reached, with its interval.

    Parameters
    ----------
    frame : DataFrame or list of DataFrames
        Trials; points whose unit has no limit are left out.
    limits : dict
        Unit -> limit in units per second, e.g. ``{"bytes": 12e9, "flops": 80e9}``.
    per_worker : bool, default False
        The limits are per worker (as :func:`hardware_limits` gives them): a point's limit
        is the worker count times it, the throughput every worker at its own limit would give.
    """
    import pandas as pd

    if isinstance(frame, list):
        frame = pd.concat(frame, ignore_index=True)
    if not isinstance(limits, dict) or not limits:
        raise ParameterError("limits", limits, "a dict of unit -> limit per second, e.g. {'bytes': 1e10}")
    for unit, value in limits.items():
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            raise ParameterError(f"limits[{unit!r}]", value, "a finite limit > 0 per second")
    require(frame, ("point", "status", "throughput", "workers", "unit"))
    ok = frame[(frame["status"] == "ok") & frame["unit"].isin(list(limits))]
    if ok.empty:
        raise ParameterError(
            "limits",
            sorted(limits),
            f"a limit for a unit of the successful trials: {sorted(frame['unit'].dropna().unique())}",
        )
    names = {unit: varying(g) for unit, g in ok.groupby("unit")}
    rows = []
    for point, g in ok.groupby("point", sort=False):
        p = json.loads(point)
        unit = g["unit"].iloc[0]
        limit = limits[unit] * (int(g["workers"].iloc[0]) if per_worker else 1)
        f, lo, hi = bootstrap_ratio(g["throughput"].to_numpy(float), np.array([limit]))
        rows.append(
            {
                "workload": p["workload"],
                "config": describe_config(point, [k for k in names[unit] if k in p]),
                "workers": int(g["workers"].iloc[0]),
                "unit": unit,
                "throughput_median": float(g["throughput"].median()),
                "limit": limit,
                "fraction": f,
                "fraction_lo": lo,
                "fraction_hi": hi,
            }
        )
    return pd.DataFrame(rows)


def describe_roofline(table: pd.DataFrame) -> str:
    """Per workload, the point that came closest to its limit, in words."""
    lines = []
    for workload, g in table.groupby("workload", sort=False):
        top = g.loc[g["fraction"].idxmax()]
        lines.append(
            f"{workload} came closest to its limit on {format_workers(top['workers'])}"
            f"{' (' + top['config'] + ')' if top['config'] else ''}: {format_rate(top['throughput_median'], top['unit'])}, "
            f"{top['fraction']:.0%} ({top['fraction_lo']:.0%}–{top['fraction_hi']:.0%}) of {format_rate(top['limit'], top['unit'])}."
        )
    return "\n".join(lines)
