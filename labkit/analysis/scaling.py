"""Strong scaling from a trials frame: summaries, speedup, efficiency and Karp–Flatt.

Every function takes the tidy trials DataFrame (``Results.frame`` or
``ResultStore.trials_frame()``) and returns a DataFrame or a sentence; every derived
figure has a 95% bootstrap interval over the repeats, NaN (with a ``note`` saying why)
where the repeats are too few for one. A sentence says "faster" or "slower" only when the
interval of the speedup excludes 1.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import DataError
from labkit.common.format import format_rate

from .claims import ratio_words
from .frames import config_keys, describe_config, point_params, require, varying
from .intervals import Estimate, direction, percent, ratio_estimate
from .trust import admit

if TYPE_CHECKING:
    import pandas as pd


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: trials ok/failed, median wall time and throughput, spread."""
    import pandas as pd

    require(frame, ("point", "status", "wall_s", "throughput", "workers"))
    if frame.empty:
        return pd.DataFrame(
            columns=[
                "workers",
                "ok",
                "failed",
                "wall_s_median",
                "throughput_median",
                "throughput_min",
                "throughput_max",
                "unit",
            ]
        )
    names = varying(frame)
    params = point_params(frame)
    rows = []
    for _, g in frame.groupby("point", sort=False):
        ok = g[g["status"] == "ok"]
        first = params.loc[g.index[0]]
        row: dict[str, Any] = {"workers": int(first["workers"]), **{n: first[n] for n in names}}
        row.update(
            ok=len(ok),
            failed=len(g) - len(ok),
            wall_s_median=ok["wall_s"].median() if len(ok) else np.nan,
            throughput_median=ok["throughput"].median() if len(ok) else np.nan,
            throughput_min=ok["throughput"].min() if len(ok) else np.nan,
            throughput_max=ok["throughput"].max() if len(ok) else np.nan,
            unit=ok["unit"].iloc[0] if len(ok) else None,
        )
        rows.append(row)
    return pd.DataFrame(rows).sort_values([*names, "workers"]).reset_index(drop=True)


def strong_scaling(frame: pd.DataFrame) -> pd.DataFrame:
    """Speedup and efficiency of each point against the fewest workers of its configuration.

    Returns one row per point with ``speedup`` and ``efficiency`` and their 95% bootstrap
    intervals (``*_lo``, ``*_hi``) from the repeats' throughputs. Where an interval is not
    available (fewer than 5 runs on a side; the baseline, whose speedup is 1 by
    definition) its bounds are NaN and ``note`` says why.
    """
    import pandas as pd

    require(frame, ("point", "status", "throughput", "workers"))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", "needs at least one successful trial")
    names = varying(frame)
    configs = config_keys(ok)
    rows = []
    for config, g in ok.groupby(configs, sort=False):
        by_w = {int(w): gw["throughput"].to_numpy(float) for w, gw in g.groupby("workers")}
        w0 = min(by_w)
        for w, tp in sorted(by_w.items()):
            # The baseline is 1 by definition; its noise shows in every other point's interval.
            base = Estimate(1.0, np.nan, np.nan, "baseline: speedup 1 by definition")
            s, s_lo, s_hi, note = base if w == w0 else ratio_estimate(tp, by_w[w0])
            ideal = w / w0
            rows.append(
                {
                    **{n: json.loads(config)[n] for n in names},
                    "config": config,
                    "workers": w,
                    "baseline_workers": w0,
                    "repeats": tp.size,
                    "throughput_median": float(np.median(tp)),
                    "speedup": s,
                    "speedup_lo": s_lo,
                    "speedup_hi": s_hi,
                    "efficiency": s / ideal,
                    "efficiency_lo": s_lo / ideal,
                    "efficiency_hi": s_hi / ideal,
                    "note": note,
                }
            )
    return pd.DataFrame(rows)


def compare_sentence(row: pd.Series, w: int, w0: int) -> str:
    """How ``w`` workers compared with ``w0``: a direction only where the speedup's interval excludes 1
    (:func:`~labkit.analysis.claims.ratio_words`)."""
    return _speed_words(
        Estimate(row["speedup"], row["speedup_lo"], row["speedup_hi"], row.get("note", "") or ""), w, w0
    )


def _speed_words(est: Estimate, w: int, w0: int) -> str:
    said = ratio_words(
        est,
        f"the speed of {w0}",
        (f"faster than {w0}", f"slower than {w0}"),
        label="speedup",
        invert=True,
        narrow="more repeats, a quieter machine or a bigger problem",
    )
    return f"{w} workers ran {'' if direction(est.lo, est.hi) in ('up', 'down') else 'at '}{said}"


def describe_scaling(frame: pd.DataFrame) -> str:
    """A sentence per configuration, e.g. "2 workers ran 1.6× faster than 1 (…): parallel efficiency 80% (…)".

    "Faster" and "slower" only where the speedup's interval excludes 1; otherwise the
    sentence says the runs cannot tell, or why there is no interval.
    """
    ok = frame[frame["status"] == "ok"]
    failed = frame[frame["status"] != "ok"]
    note = ""
    if len(failed):
        first = failed["error"].dropna()
        note = f" {len(failed)} trial(s) did not finish ok" + (f" (first: {first.iloc[0]})" if len(first) else "") + "."
    if ok.empty:
        return "No trial finished ok, so there is nothing to conclude." + note
    table = strong_scaling(frame)
    names = varying(frame)
    lines = []
    for config, g in table.groupby("config", sort=False):
        where = f"For {describe_config(config, names)}: " if names else ""
        unit = ok["unit"].iloc[0]
        if len(g) < 2:
            row = g.iloc[0]
            lines.append(
                f"{where}only {int(row['workers'])} worker(s) measured, at {format_rate(row['throughput_median'], unit)}; add worker counts to see scaling."
            )
            continue
        top = g.iloc[-1]
        w, w0 = int(top["workers"]), int(top["baseline_workers"])
        top, said, caveat = _unloaded(ok, config, top, w, w0)
        efficiency = percent(top["efficiency"], top["efficiency_lo"], top["efficiency_hi"])
        sentence = said or compare_sentence(top, w, w0)
        lines.append(
            f"{where}{sentence if where else sentence[:1].upper() + sentence[1:]}: parallel efficiency {efficiency}, "
            f"{format_rate(top['throughput_median'], unit)}{caveat}."
        )
    return "\n".join(lines) + note


def _unloaded(ok: pd.DataFrame, config: str, top: pd.Series, w: int, w0: int) -> tuple[pd.Series, str, str]:
    """The comparison of ``w`` with ``w0`` workers made from the trials :func:`~labkit.analysis.trust.admit` keeps.

    A speedup taken while other work loaded the machine measures that load as much as the
    scaling: where trials of either side were flagged ``under_load``, the comparison is made
    again from the others alone. When too few are left for an interval, no direction is
    claimed (the sentence says so); the row with every trial is kept for the estimate.
    Returns the row, the sentence where it differs from :func:`compare_sentence`'s, and a
    caveat for trials whose outside load was not measured ("" when none).
    """
    a = admit(ok[config_keys(ok).eq(config) & ok["workers"].isin([w, w0])])
    caveat = f"; outside load not measured for {a.unknown} of its {a.total} trials" if a.unknown else ""
    if not a.loaded:
        return top, "", caveat
    clean = None if a.empty else strong_scaling(a.frame)
    row = clean[clean["workers"].eq(w)] if clean is not None and clean["workers"].nunique() == 2 else None
    k, n = a.loaded, a.total
    if row is not None and len(row) and np.isfinite(row["speedup_lo"].iloc[0]):
        said = f"leaving out the {k} of {n} trials that ran under outside load, {compare_sentence(row.iloc[0], w, w0)}"
        return row.iloc[0], said, caveat
    note = (
        f"{k} of its {n} trials ran while other work loaded this machine, too many to leave out; "
        "a quieter machine would settle it"
    )
    return top, _speed_words(Estimate(top["speedup"], np.nan, np.nan, note), w, w0), caveat


def karp_flatt(frame: pd.DataFrame) -> pd.DataFrame:
    """The Karp–Flatt experimentally determined serial fraction of each point.

    ``e = (1/S - 1/p) / (1 - 1/p)`` with ``S`` the speedup and ``p`` the worker ratio over
    the configuration's fewest workers (so ``e`` is relative to that baseline). A constant
    ``e`` is a true serial part (Amdahl); an ``e`` rising with ``p`` is overhead that grows
    with the workers (the USL's coherency). Intervals follow from the speedup's.
    """
    table = strong_scaling(frame)
    table = table[table["workers"] > table["baseline_workers"]].copy()
    if table.empty:
        raise DataError(
            "one worker count per configuration", "needs at least two worker counts for a Karp–Flatt serial fraction"
        )
    p = table["workers"] / table["baseline_workers"]

    def e(s: pd.Series) -> pd.Series:
        return (1 / s - 1 / p) / (1 - 1 / p)

    table["serial_fraction"] = e(table["speedup"])
    table["serial_fraction_lo"], table["serial_fraction_hi"] = e(table["speedup_hi"]), e(table["speedup_lo"])
    keep = [c for c in table.columns if not c.startswith(("speedup", "efficiency", "throughput"))]
    return table[keep].reset_index(drop=True)
