"""From trials to answers: summaries, speedup and efficiency with their uncertainty.

Every function takes the tidy trials DataFrame (``Results.frame`` or
``ResultStore.trials_frame()``) and returns a DataFrame, a fit, a recommendation or a
sentence. The grid point of each trial is its ``point`` column (canonical JSON); a
*configuration* is a point without its worker count, so speedup compares the worker counts
of one configuration.

Strong scaling: :func:`scaling` (speedup, efficiency), :func:`karp_flatt`, and the model
fits :func:`fit_amdahl`, :func:`fit_usl` with :func:`predict_throughput` beyond the counts
measured (from :mod:`labkit.fits`, re-exported here). Weak scaling: :func:`weak_scaling`.
Costs: :func:`fit_overhead`. Limits: :mod:`labkit.roofline`. Advice:
:mod:`labkit.recommend`. Every derived figure has a 95% bootstrap interval over the
repeats.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ParameterError
from .fits import (  # noqa: F401  (re-exported: the fits are part of the analysis)
    AmdahlFit,
    OverheadFit,
    USLFit,
    fit_amdahl,
    fit_overhead,
    fit_usl,
    predict_throughput,
    task_counts,
)

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_UNIT_NAMES = {"bytes": "B", "flops": "FLOP"}


def format_rate(value: float | None, unit: str) -> str:
    """``1.6e9, "bytes"`` -> ``"1.6 GB/s"``; decimal prefixes, as STREAM reports."""
    if value is None or not np.isfinite(value):
        return "n/a"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s), (1.0, ""))
    short = _UNIT_NAMES.get(unit)
    if short:
        return f"{value / scale:.3g} {prefix}{short}/s"
    return f"{value / scale:.3g} {prefix + ' ' if prefix else ''}{unit}/s"


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ParameterError("frame", f"columns {list(frame.columns)[:8]}…", f"a trials frame with columns {', '.join(missing)}")


def point_params(frame: pd.DataFrame) -> pd.DataFrame:
    """The grid point of each row as columns (workload, workers and every parameter)."""
    import pandas as pd

    return pd.DataFrame([json.loads(p) for p in frame["point"]], index=frame.index)


def varying(frame: pd.DataFrame) -> list[str]:
    """Parameters (other than workers) whose value differs between the frame's points."""
    params = point_params(frame).drop(columns=["workload", "workers"], errors="ignore")
    return [c for c in params.columns if params[c].astype(str).nunique() > 1]


def _workers(n: float) -> str:
    return f"{n:.3g} worker{'' if n == 1 else 's'}"


def _config_keys(frame: pd.DataFrame) -> pd.Series:
    params = point_params(frame).drop(columns=["workers"], errors="ignore")
    return params.apply(lambda row: json.dumps(row.to_dict(), sort_keys=True, default=str), axis=1)


def describe_config(config: str, names: list[str]) -> str:
    """``'size_mb=64, dtype=float32'`` for the named parameters of a configuration key."""
    d = json.loads(config)
    return ", ".join(f"{k}={d[k]:g}" if isinstance(d[k], float) else f"{k}={d[k]}" for k in names)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: trials ok/failed, median wall time and throughput, spread."""
    import pandas as pd

    _require(frame, ("point", "status", "wall_s", "throughput", "workers"))
    if frame.empty:
        return pd.DataFrame(columns=["workers", "ok", "failed", "wall_s_median", "throughput_median", "throughput_min", "throughput_max", "unit"])
    names = varying(frame)
    params = point_params(frame)
    rows = []
    for point, g in frame.groupby("point", sort=False):
        ok = g[g["status"] == "ok"]
        first = params.loc[g.index[0]]
        row: dict[str, Any] = {"workers": int(first["workers"]), **{n: first[n] for n in names}}
        row.update(
            ok=len(ok), failed=len(g) - len(ok),
            wall_s_median=ok["wall_s"].median() if len(ok) else np.nan,
            throughput_median=ok["throughput"].median() if len(ok) else np.nan,
            throughput_min=ok["throughput"].min() if len(ok) else np.nan,
            throughput_max=ok["throughput"].max() if len(ok) else np.nan,
            unit=ok["unit"].iloc[0] if len(ok) else None,
        )
        rows.append(row)
    return pd.DataFrame(rows).sort_values([*names, "workers"]).reset_index(drop=True)


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, *, n_boot: int = 2000, confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of medians ``median(num) / median(den)`` with a percentile bootstrap interval.

    With a single value on both sides the interval collapses to the point estimate.
    """
    num, den = np.asarray(num, float), np.asarray(den, float)
    if num.size == 0 or den.size == 0:
        raise ParameterError("samples", f"{num.size} and {den.size} values", "at least one value on each side")
    if np.any(~np.isfinite(num)) or np.any(~np.isfinite(den)) or np.any(den <= 0):
        raise ParameterError("samples", "non-finite or non-positive values", "finite throughputs > 0")
    estimate = float(np.median(num) / np.median(den))
    rng = np.random.default_rng(seed)
    bn = np.median(rng.choice(num, (n_boot, num.size)), axis=1)
    bd = np.median(rng.choice(den, (n_boot, den.size)), axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(bn / bd, [alpha, 1 - alpha])
    return estimate, float(min(lo, estimate)), float(max(hi, estimate))


def scaling(frame: pd.DataFrame) -> pd.DataFrame:
    """Speedup and efficiency of each point against the fewest workers of its configuration.

    Returns one row per point with ``speedup`` and ``efficiency`` and their 95% bootstrap
    intervals (``*_lo``, ``*_hi``) from the repeats' throughputs.
    """
    import pandas as pd

    _require(frame, ("point", "status", "throughput", "workers"))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise ParameterError("frame", "no trial with status ok", "at least one successful trial")
    names = varying(frame)
    configs = _config_keys(ok)
    rows = []
    for config, g in ok.groupby(configs, sort=False):
        by_w = {int(w): gw["throughput"].to_numpy(float) for w, gw in g.groupby("workers")}
        w0 = min(by_w)
        for w, tp in sorted(by_w.items()):
            # The baseline is 1 by definition; its noise shows in every other point's interval.
            s, s_lo, s_hi = (1.0, 1.0, 1.0) if w == w0 else bootstrap_ratio(tp, by_w[w0])
            ideal = w / w0
            rows.append({
                **{n: json.loads(config)[n] for n in names}, "config": config, "workers": w, "baseline_workers": w0,
                "repeats": tp.size, "throughput_median": float(np.median(tp)),
                "speedup": s, "speedup_lo": s_lo, "speedup_hi": s_hi,
                "efficiency": s / ideal, "efficiency_lo": s_lo / ideal, "efficiency_hi": s_hi / ideal,
            })
    return pd.DataFrame(rows)


def describe_scaling(frame: pd.DataFrame) -> str:
    """A sentence per configuration, e.g. "2 workers ran 1.6× faster than 1: 80% efficiency"."""
    ok = frame[frame["status"] == "ok"]
    failed = frame[frame["status"] != "ok"]
    note = ""
    if len(failed):
        first = failed["error"].dropna()
        note = f" {len(failed)} trial(s) did not finish ok" + (f" (first: {first.iloc[0]})" if len(first) else "") + "."
    if ok.empty:
        return "No trial finished ok, so there is nothing to conclude." + note
    table = scaling(frame)
    names = varying(frame)
    lines = []
    for config, g in table.groupby("config", sort=False):
        where = f"For {describe_config(config, names)}: " if names else ""
        unit = ok["unit"].iloc[0]
        if len(g) < 2:
            row = g.iloc[0]
            lines.append(f"{where}only {int(row['workers'])} worker(s) measured, at {format_rate(row['throughput_median'], unit)}; add worker counts to see scaling.")
            continue
        top = g.iloc[-1]
        w, w0 = int(top["workers"]), int(top["baseline_workers"])
        verdict = "faster" if top["speedup"] >= 1 else "slower"
        factor = top["speedup"] if top["speedup"] >= 1 else 1 / top["speedup"]
        lines.append(
            f"{where}{w} workers ran {factor:.2f}× {verdict} than {w0} "
            f"(95% interval {top['speedup_lo']:.2f}–{top['speedup_hi']:.2f}×): "
            f"{top['efficiency']:.0%} parallel efficiency, {format_rate(top['throughput_median'], unit)}."
        )
    return "\n".join(lines) + note


# ------------------------------------------------------------------ one configuration


def pick_configuration(frame: pd.DataFrame, where: dict[str, Any] | None = None, *, free: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str]:
    """The ok trials of one configuration, and its description in words.

    ``where`` fixes parameters by value (``{"size_mb": 64.0}``, ``{"workload": "matmul"}``);
    every other parameter that varies is taken at its largest value (the biggest problem
    measured: the one whose scaling matters). Parameters named in ``free`` are left to vary,
    as are the worker counts.
    """
    _require(frame, ("point", "status", "throughput", "workers"))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise ParameterError("frame", "no trial with status ok", "at least one successful trial")
    params = point_params(ok)
    for key, value in (where or {}).items():
        if key not in params.columns:
            raise ParameterError(f"where[{key!r}]", value, f"a parameter of these trials: {', '.join(params.columns)}")
        keep = params[key].astype(str) == str(value)
        if not keep.any():
            raise ParameterError(f"where[{key!r}]", value, f"a measured value: {sorted(params[key].astype(str).unique())}")
        ok, params = ok[keep.to_numpy()], params[keep]
    if params["workload"].nunique() > 1:
        raise ParameterError("where", where, f"a workload, e.g. {{'workload': {params['workload'].iloc[0]!r}}}: the frame holds {sorted(params['workload'].unique())}")
    chosen = []
    for name in [n for n in varying(ok) if n not in free]:
        column = params[name]
        if not _is_numeric(column):
            raise ParameterError("where", where, f"a value for {name!r}, one of {sorted(column.astype(str).unique())}")
        keep = column == column.max()
        ok, params = ok[keep.to_numpy()], params[keep]
        chosen.append(name)
    shown = [*[k for k in (where or {}) if k not in ("workload", "workers")], *chosen]
    first = params.iloc[0]
    label = ", ".join([str(first["workload"]), *(f"{k}={first[k]:g}" if isinstance(first[k], float) else f"{k}={first[k]}" for k in shown)])
    return ok, label


def _is_numeric(column: pd.Series) -> bool:
    from pandas.api.types import is_numeric_dtype

    return bool(is_numeric_dtype(column)) and not column.isna().any()


# ---------------------------------------------------------- serial fraction, weak scaling


def karp_flatt(frame: pd.DataFrame) -> pd.DataFrame:
    """The Karp–Flatt experimentally determined serial fraction of each point.

    ``e = (1/S - 1/p) / (1 - 1/p)`` with ``S`` the speedup and ``p`` the worker ratio over
    the configuration's fewest workers (so ``e`` is relative to that baseline). A constant
    ``e`` is a true serial part (Amdahl); an ``e`` rising with ``p`` is overhead that grows
    with the workers (the USL's coherency). Intervals follow from the speedup's.
    """
    table = scaling(frame)
    table = table[table["workers"] > table["baseline_workers"]].copy()
    if table.empty:
        raise ParameterError("frame", "one worker count per configuration", "at least two worker counts for a Karp–Flatt serial fraction")
    p = table["workers"] / table["baseline_workers"]

    def e(s: pd.Series) -> pd.Series:
        return (1 / s - 1 / p) / (1 - 1 / p)

    table["serial_fraction"] = e(table["speedup"])
    table["serial_fraction_lo"], table["serial_fraction_hi"] = e(table["speedup_hi"]), e(table["speedup_lo"])
    keep = [c for c in table.columns if not c.startswith(("speedup", "efficiency", "throughput"))]
    return table[keep].reset_index(drop=True)


def weak_sizes(base: float, workers: list[int], *, exponent: float = 1.0, integer: bool = False) -> list[float] | list[int]:
    """Problem sizes that grow the work in step with the workers, for a weak-scaling grid.

    ``exponent`` is how the work grows with the size: 1 for array bytes or table rows, 3
    for the side ``n`` of a matrix multiply (2n³ flops).

    >>> weak_sizes(64.0, [1, 2, 4])
    [64.0, 128.0, 256.0]
    >>> weak_sizes(1024, [1, 2, 8], exponent=3, integer=True)
    [1024, 1290, 2048]
    """
    if not workers or min(workers) < 1:
        raise ParameterError("workers", workers, "a non-empty list of worker counts >= 1")
    w0 = min(workers)
    sizes = [base * (w / w0) ** (1 / exponent) for w in sorted(set(workers))]
    return [round(s) for s in sizes] if integer else [float(s) for s in sizes]


def weak_grid(size: str, base: float, workers: list[int], *, exponent: float = 1.0, integer: bool = False) -> list[dict[str, Any]]:
    """The diagonal of a weak-scaling sweep as explicit grid points: one size per worker count.

    A product grid of workers × :func:`weak_sizes` gives strong and weak scaling from one
    sweep but costs N² points; this costs N.

    >>> weak_grid("size_mb", 64.0, [1, 2])
    [{'workers': 1, 'size_mb': 64.0}, {'workers': 2, 'size_mb': 128.0}]
    """
    sizes = weak_sizes(base, workers, exponent=exponent, integer=integer)
    return [{"workers": w, size: s} for w, s in zip(sorted(set(workers)), sizes)]


def weak_scaling(frame: pd.DataFrame, size: str, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Scaled speedup and weak-scaling efficiency: the problem grows with the workers.

    For each worker count ``w``, the point whose work (``amount`` of a run) is ``w/w0`` times
    the baseline's (fewest workers ``w0``, smallest ``size``), within ``tolerance``, is
    compared with the baseline: scaled speedup ``X(w, n)/X(w0, n0)`` (work per second;
    ideal ``w/w0``) and efficiency ``scaled speedup / (w/w0)``, which is
    ``T(w0, n0) / T(w, n0·w/w0)`` when the work grows exactly with the workers. Other
    varying parameters are separate series. A workers × sizes grid holds both the strong
    (fixed size) and the weak (the diagonal) series; :func:`weak_sizes` makes the sizes.
    """
    import pandas as pd

    _require(frame, ("point", "status", "throughput", "workers", "amount"))
    ok = frame[frame["status"] == "ok"]
    params = point_params(ok)
    if ok.empty or size not in params.columns:
        raise ParameterError("size", size, f"a parameter of the successful trials: {', '.join(c for c in params.columns if c not in ('workload', 'workers')) or 'none'}")
    others = ["workload", *[n for n in varying(ok) if n != size]]
    rows = []
    for _, g in ok.groupby(params[others].astype(str).agg("|".join, axis=1), sort=False):
        gp = params.loc[g.index]
        points = {(int(w), float(s)): gg for (w, s), gg in g.groupby([gp["workers"], gp[size]])}
        w0 = min(w for w, _ in points)
        n0 = min(s for w, s in points if w == w0)
        base = points[(w0, n0)]
        a0 = float(base["amount"].median())
        for w in sorted({w for w, _ in points}):
            target = a0 * w / w0
            found = [(abs(float(gg["amount"].median()) / target - 1), s, gg) for (ww, s), gg in points.items() if ww == w]
            err, s, gg = min(found, key=lambda t: t[0])
            if err > tolerance:
                continue
            x, lo, hi = bootstrap_ratio(gg["throughput"].to_numpy(float), base["throughput"].to_numpy(float))
            ideal = w / w0
            rows.append({
                **{n: gp.iloc[0][n] for n in others}, "workers": w, "baseline_workers": w0, size: s, f"baseline_{size}": n0,
                "work_ratio": float(gg["amount"].median()) / a0, "repeats": len(gg),
                "scaled_speedup": x, "scaled_speedup_lo": lo, "scaled_speedup_hi": hi,
                "efficiency": x / ideal, "efficiency_lo": lo / ideal, "efficiency_hi": hi / ideal,
            })
    table = pd.DataFrame(rows)
    if table.empty or not (table["workers"] > table["baseline_workers"]).any():
        raise ParameterError("frame", f"no point whose work grows with the workers (by {size})", f"for each worker count w a {size} whose run does w/w0 times the baseline's work (see weak_sizes)")
    return table


def describe_weak_scaling(frame: pd.DataFrame, size: str) -> str:
    """A sentence per series: how much of the baseline's speed per unit of work remained."""
    table = weak_scaling(frame, size)
    lines = []
    for _, g in table.groupby("workload", sort=False):
        top = g.iloc[-1]
        w, w0 = int(top["workers"]), int(top["baseline_workers"])
        lines.append(
            f"Weak scaling of {top['workload']}: {_workers(w)} on {top['work_ratio']:.3g}× the work "
            f"({size}={top[size]:g}) kept {top['efficiency']:.0%} ({top['efficiency_lo']:.0%}–"
            f"{top['efficiency_hi']:.0%}) of the speed of {_workers(w0)} on {size}={top[f'baseline_{size}']:g}: "
            f"a scaled speedup of {top['scaled_speedup']:.2f}× where {w / w0:g}× is ideal."
        )
    return "\n".join(lines)
