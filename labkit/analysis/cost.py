"""Cost per unit of work, as a labelled estimate: billed time × list price, and electricity kept apart.

**Billed time.** A cloud bills the time a cluster is held, not the timed region. Each grid
point of a run is billed as its own job on a cluster of its size: one start-up of that
cluster (measured, ``startup``), the idle time the run spent on the point (the gaps before
its trials: setting up inputs, warm-up runs, rescaling, recording; and the time of its
failed trials), and its timed regions. Each gap is the time between a trial's start and the
end of the trial before it in the same run (for a run's first trial, the run's start, where
the runs are given). The start-up and the idle time are shared equally among the point's
ok trials, so each trial's ``billed_s`` is its ``wall_s`` plus those shares, and the
points' billed seconds add up to the time from the run's start to its last trial's end,
plus one start-up per point (a point without an ok trial is not billed). A gap is billed at the worker count of the trial after it (the cluster is rescaled
for that trial within the gap).

**Cost.** ``workers × price per worker-hour × billed hours / units of work`` per trial; a
CPU worker is billed as one instance of the chosen type, a GPU worker as one GPU of a GPU
type (its price over its ``gpus``). The median over the repeats comes with its 95%
interval (:func:`~labkit.analysis.intervals.median_estimate`); the price adds no
uncertainty of its own, and is a list price (see :mod:`labkit.analysis.prices`). Every
table keeps the :class:`~labkit.analysis.prices.PriceSnapshot` it used in ``attrs["prices"]``;
a table or figure without one is refused (:func:`snapshot_of`).

Electricity is priced apart, in :mod:`labkit.analysis.electricity`: it is never added to
the cloud price.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import DataError, ParameterError

from .frames import require
from .intervals import Estimate, median_estimate
from .prices import PriceSnapshot, require_snapshot

if TYPE_CHECKING:
    import pandas as pd

#: Costs are given per this many units of work (per 10⁹ bytes, per 10⁹ flop ...).
PER = 1e9


def device_of(backend: Any) -> str:
    """``"gpu"`` for a trial run on CuPy, ``"cpu"`` otherwise.

    >>> device_of("cupy"), device_of("numpy"), device_of(None)
    ('gpu', 'cpu', 'cpu')
    """
    return "gpu" if backend == "cupy" else "cpu"


def _epoch(column: pd.Series) -> np.ndarray:
    """Seconds since the epoch, from datetimes (as the store's frames give them) or numbers."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        return (column - pd.Timestamp(0, tz=column.dt.tz)).dt.total_seconds().to_numpy(float)
    return column.to_numpy(float)


def startup_for(startup: Any, workers: int, device: str) -> float:
    """Seconds a cluster of ``workers`` on ``device`` took to start, from ``startup``.

    ``startup`` is one number of seconds for every size, a mapping ``{workers: seconds}``,
    or a frame with ``workers``, ``startup_s`` and optionally ``device`` (its median per size).

    >>> startup_for({1: 2.0, 2: 3.0}, 2, "cpu"), startup_for(1.5, 4, "gpu")
    (3.0, 1.5)
    """
    import pandas as pd

    if startup is None or isinstance(startup, bool):
        raise ParameterError("startup", startup, "seconds (>= 0), a mapping {workers: seconds}, or a frame")
    if isinstance(startup, (int, float)):
        value = float(startup)
    elif isinstance(startup, Mapping):
        value = float(startup.get(workers, math.nan))
    elif isinstance(startup, pd.DataFrame):
        rows = startup[startup["workers"] == workers]
        if "device" in rows:
            rows = rows[rows["device"] == device]
        value = float(rows["startup_s"].median()) if len(rows) else math.nan
    else:
        raise ParameterError("startup", startup, "seconds (>= 0), a mapping {workers: seconds}, or a frame")
    if not math.isfinite(value) or value < 0:
        raise DataError(
            f"no start-up time for {workers} {device} workers in startup",
            "measure it for every worker count of the sweep (labkit.studies.cost.measure_startup)",
        )
    return value


def bill(frame: pd.DataFrame, *, startup: Any, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The trials with what each ok trial is billed for (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        Trials (``Results.frame``): ``run_id``, ``point``, ``status``, ``workers``, ``backend``,
        ``wall_s``, ``started_at``, ``ended_at``.
    startup : float, mapping or DataFrame
        Seconds a cluster of each size took to start (see :func:`startup_for`).
    runs : DataFrame, optional
        The store's runs (``ResultStore.runs_frame()``: ``run_id``, ``started_at``): the time
        from a run's start to its first trial is billed too; without them it is not.

    Returns
    -------
    DataFrame
        ``frame`` with ``device``, ``gap_s`` (the gap before each trial), and for ok trials
        ``idle_s`` and ``startup_s`` (their shares) and ``billed_s`` (NaN for the others).
    """
    require(frame, ("run_id", "point", "status", "workers", "backend", "wall_s", "started_at", "ended_at"))
    out = frame.copy()
    out["device"] = [device_of(b) for b in out["backend"]]
    start, end = _epoch(out["started_at"]), _epoch(out["ended_at"])
    run_start = {} if runs is None else dict(zip(runs["run_id"], _epoch(runs["started_at"])))
    gap = np.zeros(len(out))
    for run_id, idx in out.groupby("run_id", sort=False).indices.items():
        order = idx[np.argsort(start[idx], kind="stable")]
        before = np.concatenate([[run_start.get(run_id, start[order[0]])], end[order[:-1]]])
        gap[order] = np.clip(start[order] - before, 0.0, None)
    out["gap_s"] = gap
    ok = (out["status"] == "ok").to_numpy()
    held = gap + np.where(ok, 0.0, end - start)  # a failed trial's own time is idle for the ok ones
    out["idle_s"] = out["startup_s"] = out["billed_s"] = math.nan
    for _, idx in out.groupby(["run_id", "point"], sort=False).indices.items():
        n = int(ok[idx].sum())
        if n == 0:
            continue
        first = out.iloc[idx[0]]
        mine = idx[ok[idx]]
        out.iloc[mine, out.columns.get_loc("idle_s")] = held[idx].sum() / n
        out.iloc[mine, out.columns.get_loc("startup_s")] = startup_for(startup, int(first.workers), first.device) / n
    out["billed_s"] = out["wall_s"].astype(float) + out["idle_s"] + out["startup_s"]
    return out


def worker_price(row: Any) -> float:
    """Price of one worker per hour: a CPU worker is one instance, a GPU worker one GPU."""
    return float(row.price_per_hour) / (int(row.gpus) if row.device == "gpu" else 1)


def cost_table(
    frame: pd.DataFrame,
    prices: PriceSnapshot,
    *,
    startup: Any = None,
    runs: pd.DataFrame | None = None,
    per: float = PER,
) -> pd.DataFrame:
    """Cost per ``per`` units of work for every grid point and every instance type of its device.

    Parameters
    ----------
    frame : DataFrame
        Trials (see :func:`bill`), or trials already billed (with ``billed_s``: then
        ``startup`` and ``runs`` are not used). Bill the whole run before leaving trials out,
        so that the time of those left out stays billed to the points it was spent on.
    prices : PriceSnapshot
        From :func:`~labkit.analysis.prices.load_prices` (and ``.select([...])``); None is refused.
    startup, runs
        As for :func:`bill`.
    per : float, default 1e9
        Units of work the cost is given for.

    Returns
    -------
    DataFrame
        One row per point and instance type: ``workload``, ``point``, ``device``, ``workers``,
        ``instance``, ``provider``, ``runs``, the median time (``time_s``, ``time_lo``,
        ``time_hi``, ``time_note``), median ``billed_s`` and its parts, the cost
        (``cost``, ``cost_lo``, ``cost_hi``, ``cost_note``) and its ``unit``; the snapshot
        of the rows used in ``attrs["prices"]``.
    """
    import pandas as pd

    prices = require_snapshot(prices, "a cost table")
    billed = frame if "billed_s" in frame.columns else bill(frame, startup=startup, runs=runs)
    ok = billed[billed["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", "a cost needs at least one successful trial")
    rows, used = [], []
    for point, g in ok.groupby("point", sort=True):
        device, workers = g["device"].iloc[0], int(g["workers"].iloc[0])
        matching = prices.rows[prices.rows["device"] == device]
        time = median_estimate(g["wall_s"].to_numpy(float))
        for r in matching.itertuples():
            per_hour = workers * worker_price(r)
            cost = median_estimate(per_hour / 3600 * g["billed_s"].to_numpy(float) / g["amount"].to_numpy(float) * per)
            used.append(r.instance)
            rows.append(_cost_row(g, point, device, workers, r, time, cost, per, prices))
    if not rows:
        devices = sorted(set(ok["device"]))
        raise DataError(f"no instance type in the prices for the trials' devices {devices}", "select one per device")
    table = pd.DataFrame(rows)
    table.attrs["prices"] = prices.select(list(dict.fromkeys(used)))
    return table


def _cost_row(
    g: pd.DataFrame,
    point: str,
    device: str,
    workers: int,
    r: Any,
    time: Estimate,
    cost: Estimate,
    per: float,
    prices: Any,
) -> dict[str, Any]:
    return {
        "workload": g["workload"].iloc[0],
        "point": point,
        "device": device,
        "workers": workers,
        "instance": r.instance,
        "provider": r.provider,
        "runs": len(g),
        "time_s": time.value,
        "time_lo": time.lo,
        "time_hi": time.hi,
        "time_note": time.note,
        "billed_s": float(g["billed_s"].median()),
        "startup_s": float(g["startup_s"].median()),
        "idle_s": float(g["idle_s"].median()),
        "cost": cost.value,
        "cost_lo": cost.lo,
        "cost_hi": cost.hi,
        "cost_note": cost.note,
        "unit": f"{prices.currency} per {per:.0e} {g['unit'].iloc[0]}".replace("e+0", "e"),
    }


def snapshot_of(table: pd.DataFrame, what: str = "a cost figure") -> PriceSnapshot:
    """The price snapshot a cost table keeps; a :class:`DataError` for a table without one."""
    return require_snapshot(getattr(table, "attrs", {}).get("prices"), what)


def point_labels(table: pd.DataFrame) -> dict[str, str]:
    """Each point's words in a table with a ``point`` column: the workload, the parameters that
    differ between its points, and the workers."""
    params = {p: json.loads(p) for p in table["point"].unique()}
    fixed = {"workload", "workers", "backend"}
    out = {}
    for p, d in params.items():
        same = [q for q in params.values() if q.get("workload") == d.get("workload")]
        differ = [k for k in d if k not in fixed and len({json.dumps(q.get(k)) for q in same}) > 1]
        extra = ", ".join(f"{k}={d[k]}" for k in sorted(differ))
        w = int(d.get("workers", 1))
        device = "gpu" if d.get("backend") == "cupy" else "cpu"
        out[p] = f"{d.get('workload')}{f' ({extra})' if extra else ''}, {w} {device} worker{'s' if w != 1 else ''}"
    return out
