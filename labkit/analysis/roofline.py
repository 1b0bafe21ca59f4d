"""How close to the hardware: limits from the probes, and the fraction of them each configuration reached.

A worker's limit is what it did alone, with all its threads working (see
:mod:`labkit.probes`); workers on one host also share it, so N workers there are compared
with the smaller of N times a worker's limit and the host's ceiling (every worker measured at
once). The fraction of that limit a configuration reached (its roofline fraction) is an
estimate, with a bootstrap interval. A probed limit is itself a noisy median, not an exact
constant: where its repeats were kept (:attr:`HardwareLimits.repeats`) the interval comes
from both sides' repeats (``ratio_estimate(runs, limit_repeats)``); where only the probe's
point value exists, the limit's uncertainty is not measured, the interval covers the runs'
noise alone, and the sentence labels the fraction an estimate and claims no verdict on it.
A limit given as a plain number (a datasheet's) is taken as exact.

>>> hardware_limits(bandwidth=10e9, flops=50e9)
{'bytes': 10000000000.0, 'flops': 50000000000.0}
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_rate, format_workers

from .frames import describe_config, require, varying
from .intervals import ratio_estimate
from .models import percent_apart

if TYPE_CHECKING:
    import pandas as pd

_LIMIT_NAMES = {"bytes": "memory bandwidth", "flops": "FLOP/s"}
NEAR = 0.8
"""A fraction whose whole interval is at least this is called close to its limit."""


class HardwareLimits(dict):
    """Per-worker limits by unit (units per second), with the host's ceilings and how they were measured.

    A ``dict`` of unit -> per-worker limit, as :func:`roofline_fraction` takes it, with:
    ``node`` (unit -> one host's ceiling, its ``node_workers`` workers running at once),
    ``threads`` (threads per worker the per-worker limits were measured with; None when not
    known), ``missing`` (unit or ``"node"`` -> why that limit is not measured), ``repeats``
    (unit -> the per-worker limit's repeats, when kept) and ``unsized`` (unit or ``"node"``
    -> why that limit's uncertainty is not measured).

    >>> limits = HardwareLimits({"bytes": 10e9}, node={"bytes": 15e9}, node_workers=2, threads=1)
    >>> limits, limits.node
    ({'bytes': 10000000000.0}, {'bytes': 15000000000.0})
    """

    def __init__(
        self,
        per_worker: dict[str, float] | None = None,
        *,
        node: dict[str, float] | None = None,
        node_workers: int | None = None,
        threads: int | None = None,
        missing: dict[str, str] | None = None,
        repeats: dict[str, Any] | None = None,
        unsized: dict[str, str] | None = None,
    ) -> None:
        super().__init__(per_worker or {})
        self.repeats = {unit: np.asarray(r, float) for unit, r in (repeats or {}).items()}
        self.unsized = dict(unsized or {})
        self.node = dict(node or {})
        self.node_workers = node_workers
        self.threads = threads
        self.missing = dict(missing or {})
        self.under_load = False  # the probe they come from ran under outside load


def hardware_limits(probe: Any = None, *, bandwidth: float | None = None, flops: float | None = None) -> HardwareLimits:
    """Per-worker limits keyed by work unit, with the host's ceiling, for :func:`roofline_fraction`.

    From a :class:`labkit.probes.HardwareProbe`: the median over workers of each worker's
    own figures, measured with all its threads at once: memory bandwidth (``"bytes"``,
    bytes/s; the higher of copy and triad, each credited with the bytes it moves) and float64
    matmul FLOP/s (``"flops"``); and, when every worker shares one host, that host's ceiling
    with every worker running at once. The client's figures never stand in for a worker's:
    without worker figures the per-worker limits are not measured, and ``missing`` says why.
    ``bandwidth`` and ``flops`` given explicitly (e.g. a datasheet's per-worker numbers) win.

    Parameters
    ----------
    probe : HardwareProbe, optional
        From :func:`labkit.probes.run_probes` or :func:`labkit.probes.cached_probes`.
    bandwidth, flops : float, optional
        Per-worker limits in bytes/s and flop/s, used instead of the probe's.

    Returns
    -------
    HardwareLimits
        A dict of unit -> per-worker limit, with ``node``, ``node_workers``, ``threads`` and
        ``missing``.

    >>> hardware_limits(bandwidth=10e9, flops=50e9)
    {'bytes': 10000000000.0, 'flops': 50000000000.0}
    """
    limits = HardwareLimits()
    if probe is not None:
        _from_probe(limits, probe)
    for unit, value in (("bytes", bandwidth), ("flops", flops)):
        if value is not None:
            _given(limits, unit, value)
    if not limits and not limits.missing:
        raise ParameterError("probe", probe, "a HardwareProbe with figures, or bandwidth= / flops= numbers")
    return limits


def _given(limits: HardwareLimits, unit: str, value: Any) -> None:
    """A limit given explicitly: a number (taken as exact) or its repeats (the limit their median)."""
    limits.missing.pop(unit, None)
    limits.unsized.pop(unit, None)
    limits.repeats.pop(unit, None)
    if np.ndim(value) == 0:
        limits[unit] = float(value)
        return
    r = np.asarray(value, float)
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ParameterError(unit, value, "a limit per second > 0, or its repeats (each finite and > 0)")
    limits[unit], limits.repeats[unit] = float(np.median(r)), r


def _from_probe(limits: HardwareLimits, probe: Any) -> None:
    workers = list(probe.workers)
    figures = {
        "bytes": [probe.memory[w].best for w in workers],
        "flops": [f for f in (probe.flops(w, "float64") for w in workers) if f],
    }
    reasons = [
        why
        for key, why in probe.missing.items()
        if key.endswith("/memory") and key.rsplit("/", 1)[0] not in ("client", "gpu", "node")
    ]
    why = reasons[0] if reasons else "the probe holds no worker figures"
    for unit, values in figures.items():
        if values:
            limits[unit] = float(np.median(values))
            limits.unsized[unit] = "the probe kept each worker's best and median, not its repeats"
        else:
            limits.missing[unit] = f"per-worker limit not measured ({why}); the client's figures are not a worker's"
    threads = {probe.memory[w].threads for w in workers}
    limits.threads = threads.pop() if len(threads) == 1 else None
    limits.under_load = getattr(probe, "under_load", None) is True
    node = getattr(probe, "node", None)
    if node is not None:
        limits.node.update({"bytes": float(node.memory.best), "flops": float(node.matmul.best)})
        limits.node_workers = int(node.workers)
        limits.unsized["node"] = "the probe kept the host's best and median, not its repeats"
    else:
        limits.missing["node"] = probe.missing.get("node/memory", "the probe holds no whole-node ceiling")


def roofline_fraction(
    frame: pd.DataFrame | list[pd.DataFrame], limits: dict[str, float], *, per_worker: bool = False
) -> pd.DataFrame:
    """The fraction of a hardware limit each point's throughput reached, with its interval.

    Parameters
    ----------
    frame : DataFrame or list of DataFrames
        Trials; points whose unit has no limit (and no reason it is missing) are left out.
    limits : dict
        Unit -> limit in units per second, e.g. ``{"bytes": 12e9, "flops": 80e9}``, or the
        :class:`HardwareLimits` of :func:`hardware_limits`.
    per_worker : bool, default False
        The limits are per worker (as :func:`hardware_limits` gives them): a point with N
        workers is compared with N times the limit, or with the host's ceiling when that is
        smaller and was measured with at least N workers at once. A point whose threads per
        worker differ from those the limit was measured with gets no limit, and says why.
        Without ``per_worker`` each limit is taken as the whole run's.

    Returns
    -------
    DataFrame
        One row per point: workload, config, workers, unit, throughput_median, limit,
        limit_source, fraction (an estimate: median throughput over the limit), fraction_lo
        and fraction_hi (its bootstrap interval), limit_spread (``"repeats"``: the interval
        carries the limit's repeats too; ``"exact"``: a limit given as a number;
        ``"not measured"``: the limit's uncertainty is not measured, the interval is the
        runs' alone) and note; NaN where the limit is not measured.
    """
    import pandas as pd

    if isinstance(frame, list):
        frame = pd.concat(frame, ignore_index=True)
    missing = dict(getattr(limits, "missing", {}))
    if not isinstance(limits, dict) or not (limits or missing):
        raise ParameterError("limits", limits, "a dict of unit -> limit per second, e.g. {'bytes': 1e10}")
    for unit, value in [*limits.items(), *getattr(limits, "node", {}).items()]:
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            raise ParameterError(f"limits[{unit!r}]", value, "a finite limit > 0 per second")
    require(frame, ("point", "status", "throughput", "workers", "unit"))
    units = [*limits, *(u for u in missing if u != "node")]
    ok = frame[(frame["status"] == "ok") & frame["unit"].isin(units)]
    if ok.empty:
        raise ParameterError(
            "limits",
            sorted(units),
            f"a limit for a unit of the successful trials: {sorted(frame['unit'].dropna().unique())}",
        )
    names = {unit: varying(g) for unit, g in ok.groupby("unit")}
    rows = []
    for point, g in ok.groupby("point", sort=False):
        p = json.loads(point)
        unit, workers = g["unit"].iloc[0], int(g["workers"].iloc[0])
        threads = float(pd.to_numeric(g["threads"], errors="coerce").iloc[0]) if "threads" in g.columns else math.nan
        if per_worker:
            limit, source, note = _point_limit(limits, unit, workers, threads)
        elif unit in limits:
            limit, source, note = float(limits[unit]), "given", ""
        else:
            limit, source, note = math.nan, "not measured", missing[unit]
        f = lo = hi = math.nan
        spread = "not measured"
        if math.isfinite(limit):
            den, spread, why = _limit_spread(limits, unit, source, workers)
            f, lo, hi, _ = ratio_estimate(g["throughput"].to_numpy(float), den)
            note = "; ".join(n for n in (note, why) if n)
        rows.append(
            {
                "workload": p["workload"],
                "config": describe_config(point, [k for k in names[unit] if k in p]),
                "workers": workers,
                "unit": unit,
                "throughput_median": float(g["throughput"].median()),
                "limit": limit,
                "limit_source": source,
                "fraction": f,
                "fraction_lo": lo,
                "fraction_hi": hi,
                "limit_spread": spread,
                "note": note,
                "limit_under_load": bool(getattr(limits, "under_load", False)),
            }
        )
    return pd.DataFrame(rows)


def _limit_spread(limits: dict[str, float], unit: str, source: str, workers: int) -> tuple[Any, str, str]:
    """The limit's denominator for :func:`.intervals.ratio_estimate` (its repeats, or the
    number), whether its uncertainty is carried (``limit_spread``), and a note when it is not."""
    repeats, unsized = getattr(limits, "repeats", {}), getattr(limits, "unsized", {})
    if source.startswith("host ceiling"):
        why = unsized.get("node", "")
        limit = float(limits.node[unit])  # type: ignore[attr-defined]
    else:
        scale = workers if source.endswith("per-worker") else 1
        if unit in repeats:
            return scale * repeats[unit], "repeats", ""
        why, limit = unsized.get(unit, ""), scale * float(limits[unit])
    if not why:
        return limit, "exact", ""
    return limit, "not measured", f"the limit's uncertainty is not measured ({why}): the fraction is an estimate"


def _point_limit(limits: dict[str, float], unit: str, workers: int, threads: float) -> tuple[float, str, str]:
    """(limit, where it comes from, note) for ``workers`` workers running ``threads`` threads in all."""
    per, missing = limits.get(unit), getattr(limits, "missing", {})
    measured_threads = getattr(limits, "threads", None)
    if per is None:
        return math.nan, "not measured", missing.get(unit, f"no per-worker limit for {unit}")
    if measured_threads is not None and math.isfinite(threads) and threads / workers != measured_threads:
        return (
            math.nan,
            "not measured",
            f"the per-worker limit was measured with {measured_threads} thread(s) per worker; "
            f"this ran {threads / workers:g}",
        )
    limit, source, note = workers * float(per), f"{workers} × per-worker", ""
    node, node_workers = getattr(limits, "node", {}).get(unit), getattr(limits, "node_workers", None)
    if node is not None and node_workers is not None:
        if workers > node_workers:
            note = f"the host's ceiling was measured with {node_workers} workers, fewer than these {workers}"
        elif node < limit:
            limit, source = float(node), f"host ceiling ({node_workers} workers at once)"
    elif workers > 1 and "node" in missing:
        note = f"no host ceiling: {missing['node']}"
    return limit, source, note


def describe_roofline(table: pd.DataFrame) -> str:
    """Per workload, the point with the highest estimated fraction of its limit, in words.

    A sentence says the runs cannot tell which configuration came closest when intervals
    overlap, calls a point close to its limit only when its whole interval is at least 80%
    of it, and says the time goes elsewhere only when its whole interval is below half.

    Parameters
    ----------
    table : DataFrame
        From :func:`roofline_fraction`.

    Returns
    -------
    str
        One line per workload; a workload without a measured limit says why.
    """
    lines = []
    for workload, g in table.groupby("workload", sort=False):
        measured = g[np.isfinite(g["fraction"].to_numpy(float))]
        if measured.empty:
            why = "; ".join(dict.fromkeys(str(n) for n in g.get("note", []) if n)) or "no limit"
            lines.append(f"{workload}: the fraction of its hardware limit is not measured ({why}).")
            continue
        top = measured.loc[measured["fraction"].idxmax()]
        lines.append(_sentence(workload, top, measured))
    if "limit_under_load" in table and table["limit_under_load"].eq(True).any():
        lines.append(
            "The limits come from a probe taken under outside load: it measured that load too, so they are "
            "not this machine's ceiling and each fraction may read high; `labkit probe --refresh` on a quiet "
            "machine measures them again."
        )
    return "\n".join(lines)


def _sentence(workload: str, top: Any, measured: pd.DataFrame) -> str:
    f, lo, hi = top["fraction"], top["fraction_lo"], top["fraction_hi"]
    spread = top.get("limit_spread", "exact")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        interval = "no interval: fewer than 5 runs, or runs that did not vary"
    else:
        interval = percent_apart(f, lo, hi).split(" (", 1)[1][:-1]  # ends that differ as printed
        if spread == "repeats":
            interval += ", from the runs' and the probe's repeats"
        elif spread == "not measured":
            interval += ", from the runs alone"
    config = f" ({top['config']})" if top["config"] else ""
    source = top.get("limit_source", "")
    source = "" if source == "given" else source
    text = (
        f"{workload}: the highest estimated fraction of its limit was on {format_workers(top['workers'])}{config}: "
        f"{format_rate(top['throughput_median'], top['unit'])}, an estimated {f:.0%} ({interval}) "
        f"of {format_rate(top['limit'], top['unit'])}{f' ({source})' if source else ''}."
    )
    overlap = int((measured["fraction_hi"] >= lo).sum()) - 1
    if overlap > 0:
        other = "that of 1 other configuration" if overlap == 1 else f"those of {overlap} other configurations"
        text += f" Its interval overlaps {other}: the runs cannot tell which came closest."
    what = _LIMIT_NAMES.get(top["unit"], "limit")
    if spread == "not measured":
        text += f" The measured {what} is a median whose uncertainty is not measured, so no verdict on the fraction is claimed."
    elif lo > 1:
        text += f" Its whole interval is above the measured {what}: the probe understates what this work gets."
    elif lo >= NEAR:
        text += f" Its whole interval is at {NEAR:.0%} of the measured {what} or more: close to that limit."
    elif hi < 0.5:
        text += (
            f" Its whole interval is below half: at the measured {what} it would take under half its time, "
            "so most of its time goes to something else."
        )
    if top.get("note"):
        text += f" Note: {top['note']}."
    return text
