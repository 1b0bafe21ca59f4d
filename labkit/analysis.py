"""From trials to answers: summaries, speedup and efficiency with their uncertainty.

Every function takes the tidy trials DataFrame (``Results.frame`` or
``ResultStore.trials_frame()``) and returns a DataFrame or a sentence. The grid point of
each trial is its ``point`` column (canonical JSON); a *configuration* is a point without
its worker count, so speedup compares the worker counts of one configuration.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ParameterError

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
            s, s_lo, s_hi = bootstrap_ratio(tp, by_w[w0])
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
