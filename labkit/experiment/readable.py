"""Results for reading: figures with their intervals in words, and the caveats a conclusion carries."""

from __future__ import annotations

import json
import math
import os
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


def _unstable(ok: pd.DataFrame) -> str:
    """One caveat naming every point whose median time is known only to worse than ±10% ("" if none)."""
    if "point_ci_rel" not in ok or "point" not in ok:
        return ""
    spread = []
    for point, rows in ok.groupby("point", sort=False):
        ci = rows["point_ci_rel"].dropna()
        if len(ci) and math.isfinite(rel := float(ci.iloc[-1])) and rel > UNSTABLE_REL:
            where = ", ".join(f"{k}={v}" for k, v in json.loads(point).items() if k not in ("backend", "workload"))
            spread.append(f"{where} (±{rel:.0%} over {len(rows)} runs)")
    if not spread:
        return ""
    return (
        f"Results may be unstable where the runs spread: the median time is known only to {'; '.join(spread)} "
        "(95% intervals), so effects smaller than that cannot be resolved there; more repeats, a quieter machine "
        "or a bigger problem would."
    )


def caveats(frame: pd.DataFrame, env: dict[str, Any]) -> list[str]:
    """Sentences a conclusion drawn from ``frame`` must carry, each once: points whose runs
    spread too much to resolve small effects, outside load, oversubscription."""
    out = []
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    out.append(_unstable(ok))
    if "under_load" in ok and ok["under_load"].notna().any():
        loaded = ok[ok["under_load"].fillna(False).astype(bool)]
        if len(loaded):
            counts = sorted({int(w) for w in loaded["workers"]})
            out.append(
                f"{len(loaded)} of {len(ok)} trials ran under outside load (at workers {counts}); an answer above "
                "leaves them out where enough others remain, and says so where it could not." + _who(loaded)
            )
    cores = (env.get("cluster") or {}).get("cores") or None
    if cores and "threads" in ok and ok["threads"].notna().any():
        over = sorted({int(w) for w, t in zip(ok["workers"], ok["threads"]) if t == t and t > cores})
        if over:
            out.append(
                f"At workers {over} the cluster ran more threads than this machine's {cores} cores: "
                "those threads shared cores, so their speedup measures time-slicing, not more hardware."
            )
    return [t for t in out if t]


def _who(loaded: pd.DataFrame) -> str:
    """The outside processes seen during the loaded trials (each trial's most, at most three)."""
    if "outside_processes" not in loaded:
        return ""
    seen = list(dict.fromkeys(str(x).split(", ")[0] for x in loaded["outside_processes"] if isinstance(x, str)))
    return f" Outside processes then (the most in each trial): {'; '.join(seen[:3])}." if seen else ""


NOT_PROBED = "Against the cores: their own ceiling was not measured (labkit probe measures it)."


def ceiling_sentences(frame: pd.DataFrame, env: dict[str, Any], store: Any = None) -> list[str]:
    """The speedup of the most workers over the fewest set against what the machine's cores allow.

    The ceiling is the one ``labkit probe`` cached for the machine and software of ``env``
    (the run's environment) in ``store`` (default: the project's store, ``$LABKIT_STORE`` or
    ``results/labkit.db``; :func:`labkit.probes.cached_ceiling` never serves one taken under
    outside load): ``k`` single-thread matmuls at once against ``k0``, for the threads of the
    two worker counts. Only the trials :func:`labkit.analysis.trust.admit` keeps are used.
    The sentence says "the rest is Dask's overhead and data movement" only where the
    speedup's 95% interval lies wholly below the ceiling's; one sentence per configuration,
    none with fewer than two worker counts.
    """
    from labkit.analysis.frames import config_keys, describe_config, varying
    from labkit.analysis.trust import admit

    ok = admit(frame).frame if len(frame) and "status" in frame else frame
    if ok.empty or "workers" not in ok or ok["workers"].nunique() < 2:
        return []
    ceiling = _machine_ceiling(env, store)
    if ceiling is None:
        return [NOT_PROBED]
    names, out = varying(ok), []
    for config, g in ok.groupby(config_keys(ok), sort=False):
        where = f"for {describe_config(config, names)}, " if names else ""
        said = _against(g, ceiling)
        if said:
            out.append(f"Against the cores: {where}{said}.")
    return out


def _machine_ceiling(env: dict[str, Any], store: Any) -> Any:
    from labkit.probes import cached_ceiling
    from labkit.store import default_path, resolve_store_path

    path = resolve_store_path(default_path()) if store is None else store
    if not env or (isinstance(path, (str, os.PathLike)) and not os.path.exists(path)):
        return None  # the run's machine unknown, or no store (none is created here): not measured
    try:
        return cached_ceiling(path, env)
    except Exception:  # noqa: BLE001 - an unreadable store: the ceiling is not known
        return None


def _against(g: pd.DataFrame, ceiling: Any) -> str:
    """One configuration's speedup (most workers over fewest) against the ceiling at their threads."""
    import numpy as np

    from labkit.analysis.intervals import direction, ratio_estimate, show

    g = g[np.isfinite(g["throughput"].astype(float)) & (g["throughput"].astype(float) > 0)]
    by_w = {int(w): gw for w, gw in g.groupby("workers")}
    if len(by_w) < 2:
        return ""
    w0, w = min(by_w), max(by_w)  # as describe_scaling compares them
    k0, k = (_threads(by_w[x], x) for x in (w0, w))
    if k not in ceiling.rates or k0 not in ceiling.rates:
        top = max(ceiling.ks)
        return f"the cores' own ceiling at {k} at once was not measured (the probe went up to {top})"
    s = ratio_estimate(by_w[w]["throughput"].to_numpy(float), by_w[w0]["throughput"].to_numpy(float))
    c = ratio_estimate(list(ceiling.rates[k]), list(ceiling.rates[k0]))
    allow = f"the {show(c.value, c.lo, c.hi, suffix='×')} these cores allow at {k} at once"
    allow += (f" against {k0}" if k0 != 1 else "") + (
        " (outside load not read then)" if ceiling.under_load is None else ""
    )
    speed = show(s.value, s.lo, s.hi, suffix="×", said=direction(s.lo, s.hi))
    if not all(math.isfinite(x) for x in (s.lo, s.hi, c.lo, c.hi)):
        return f"{speed} set against {allow}: without both intervals no share is claimed"
    if s.hi < c.lo:
        return f"{speed} of {allow}: the rest is Dask's overhead and data movement"
    if s.lo > c.hi:
        return f"{speed}, above {allow} for compute: more than the cores alone explain (caches or memory)"
    return (
        f"{speed} against {allow}: the intervals overlap, so the runs cannot tell Dask's overhead from the cores' limit"
    )


def _threads(g: pd.DataFrame, workers: int) -> int:
    """Threads the cluster ran at this worker count (one per worker where not recorded)."""
    if "threads" in g and g["threads"].notna().any():
        return int(g["threads"].dropna().iloc[0])
    return workers
