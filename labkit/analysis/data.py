"""Conclusions about data: which kind of data scales worst, batch size against a latency target, codecs, spilling.

Each pair of functions takes tidy trials frames (``Results.frame`` or
``ResultStore.trials_frame()``): a ``*_table`` with one row per compared point and its 95%
bootstrap interval over the repeats, and a ``describe_*`` sentence built from that table.
A sentence claims a direction (worst, meets, slower) only when its interval does; with
fewer than five runs a side the interval is not available and the sentence says so.

>>> import math
>>> verdict(0.2, math.nan, math.nan, [0.1, 0.15, 0.12], 0.25)
'met in each of 3 runs (too few runs for an interval)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_number, format_rate

from .frames import pick_configuration, point_params, require
from .intervals import ratio_estimate, runs_note
from .scaling import scaling

if TYPE_CHECKING:
    import pandas as pd

SPLIT = ("compute_cpu", "compute_other", "transfer", "spill", "serialization", "idle", "other")
MiB = 2**20


def _ok(frame: pd.DataFrame, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    require(frame, ("point", "status", "throughput", "workers", *columns))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise ParameterError("frame", "no trial with status ok", "at least one successful trial")
    return ok.assign(**point_params(ok).drop(columns=["workers"], errors="ignore").add_prefix("p_"))


def _interval_text(lo: float, hi: float, runs: int) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return f"{runs} run(s); {runs_note(runs) or 'interval not available'}"
    return f"95% interval {format_number(lo)}–{format_number(hi)}, {runs} runs"


def split_shares(frame: pd.DataFrame) -> dict[str, float]:
    """Median share of each time-split bucket in the trials' worker time (NaN: not measured).

    >>> import pandas as pd
    >>> f = pd.DataFrame({"time_total_s": [2.0, 4.0], "time_idle_s": [1.0, 1.0], "time_compute_cpu_s": [1.0, 3.0]})
    >>> split_shares(f)["idle"], split_shares(f)["transfer"]
    (0.375, nan)
    """
    if "time_total_s" not in frame.columns:
        return dict.fromkeys(SPLIT, math.nan)
    total = frame["time_total_s"].astype(float).where(lambda t: t > 0)
    out = {}
    for b in SPLIT:
        col = f"time_{b}_s"
        share = frame[col].astype(float) / total if col in frame.columns else total * math.nan
        out[b] = float(share.median()) if share.notna().any() else math.nan
    return out


# -- data variety: which kind scales worst ---------------------------------------------


def kind_scaling(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per kind of data: speedup and efficiency of its most workers over its fewest, with intervals,
    and where its worker time went at each end (``share_<bucket>`` at the most workers,
    ``base_share_<bucket>`` at the fewest).

    ``frames`` maps a kind's name (``"tables"``) to its sweep's trials; where a sweep varied
    a parameter besides workers, its largest value is taken (:func:`pick_configuration`).
    """
    import pandas as pd

    if not isinstance(frames, Mapping) or not frames:
        raise ParameterError("frames", frames, "a dict of kind name -> trials frame")
    rows = []
    for kind, frame in frames.items():
        ok, label = pick_configuration(frame)
        top = scaling(ok).sort_values("workers").iloc[-1]
        most, fewest = ok[ok["workers"] == top["workers"]], ok[ok["workers"] == top["baseline_workers"]]
        row = {"kind": kind, "configuration": label, **top[["workers", "baseline_workers", "repeats"]].to_dict()}
        row.update({k: float(top[k]) for k in ("speedup", "speedup_lo", "speedup_hi", "efficiency")})
        row.update(efficiency_lo=float(top["efficiency_lo"]), efficiency_hi=float(top["efficiency_hi"]))
        row.update({f"share_{b}": v for b, v in split_shares(most).items()})
        row.update({f"base_share_{b}": v for b, v in split_shares(fewest).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _where_time_went(row: Any) -> str:
    shares = {b: row[f"share_{b}"] for b in SPLIT if not math.isnan(row[f"share_{b}"])}
    if not shares:
        return "where its time went was not measured (no time split)."
    listed = ", ".join(f"{b.replace('_', ' ')} {v:.0%}" for b, v in sorted(shares.items(), key=lambda kv: -kv[1])[:3])
    growth = {b: v - row[f"base_share_{b}"] for b, v in shares.items() if not math.isnan(row[f"base_share_{b}"])}
    text = f"at {int(row['workers'])} workers its worker time went to {listed}"
    if growth and max(growth.values()) > 0:
        b = max(growth, key=growth.get)
        text += (
            f"; the share that grew most from {int(row['baseline_workers'])} worker(s) is {b.replace('_', ' ')} "
            f"({row[f'base_share_{b}']:.0%} → {shares[b]:.0%})"
        )
    return text + "."


def describe_data_variety(frames: Mapping[str, pd.DataFrame]) -> str:
    """Which kind of data scales worst here, when the efficiency intervals say so, and where its time went."""
    table = kind_scaling(frames)
    lines = [
        f"{r.kind}: {int(r.workers)} workers ran {format_number(r.speedup)}× as fast as {int(r.baseline_workers)} "
        f"({_interval_text(r.speedup_lo, r.speedup_hi, int(r.repeats))}), {r.efficiency:.0%} parallel efficiency."
        for r in table.itertuples()
    ]
    scaled = table[table["workers"] > table["baseline_workers"]]
    if len(scaled) < 2:
        return "\n".join([*lines, "Fewer than two kinds were measured at more than one worker count: no ranking."])
    scaled = scaled.sort_values("efficiency")
    worst, others = scaled.iloc[0], scaled.iloc[1:]
    if scaled[["efficiency_lo", "efficiency_hi"]].isna().any().any():
        verdict_ = (
            f"{worst.kind} had the lowest efficiency measured ({worst.efficiency:.0%}), but without intervals "
            "(fewer than 5 runs a point) the runs do not establish which kind scales worst"
        )
    elif worst["efficiency_hi"] < others["efficiency_lo"].min():
        verdict_ = (
            f"{worst.kind} scales worst here: its efficiency interval "
            f"({worst.efficiency_lo:.0%}–{worst.efficiency_hi:.0%}) lies below every other kind's"
        )
    else:
        rival = others.loc[others["efficiency_lo"].idxmin()]
        verdict_ = (
            f"the runs cannot tell which kind scales worst: the efficiency interval of {worst.kind} "
            f"({worst.efficiency_lo:.0%}–{worst.efficiency_hi:.0%}) overlaps that of {rival.kind} "
            f"({rival.efficiency_lo:.0%}–{rival.efficiency_hi:.0%}); the lowest measured is {worst.kind}"
        )
    lines.append(f"Answer: {verdict_}; {_where_time_went(worst)}")
    return "\n".join(lines)


# -- batch vs stream: which batch size meets a latency target --------------------------


def latency_table(frame: pd.DataFrame, quantile: str = "p95") -> pd.DataFrame:
    """Per arrival rate, workers and batch size: the median over runs of each run's latency
    ``quantile`` (``"p50"``, ``"p95"``, ``"p99"``) with its interval, throughput and growth."""
    import pandas as pd

    from .intervals import median_estimate

    if quantile not in ("p50", "p95", "p99"):
        raise ParameterError("quantile", quantile, "'p50', 'p95' or 'p99'")
    col = f"latency_{quantile}_s"
    ok = _ok(frame, (col, "records_per_s"))
    rows = []
    for (rate, workers, batch), g in ok.groupby(["p_rate", "workers", "p_batch"], sort=True):
        lat = g[col].to_numpy(float)
        m = median_estimate(lat)
        rows.append(
            {
                "rate": float(rate),
                "workers": int(workers),
                "batch": int(batch),
                "runs": lat.size,
                f"{quantile}_s": m.value,
                f"{quantile}_lo": m.lo,
                f"{quantile}_hi": m.hi,
                f"{quantile}_runs": lat.tolist(),
                "records_per_s": float(g["records_per_s"].median()),
                "latency_growth_s": float(g["latency_growth_s"].median()) if "latency_growth_s" in g else math.nan,
            }
        )
    return pd.DataFrame(rows)


def verdict(value: float, lo: float, hi: float, runs: list[float], target_s: float) -> str:
    """Whether a latency meets ``target_s``: by its interval, or, without one, by every run."""
    if not (math.isnan(lo) or math.isnan(hi)):
        if hi <= target_s:
            return f"meets it (interval {format_number(lo)}–{format_number(hi)} s, {len(runs)} runs)"
        if lo > target_s:
            return f"misses it (interval {format_number(lo)}–{format_number(hi)} s, {len(runs)} runs)"
        return (
            f"cannot tell: the interval {format_number(lo)}–{format_number(hi)} s holds the target ({len(runs)} runs)"
        )
    few = "too few runs for an interval" if len(runs) < 5 else "the runs do not vary"
    if all(r <= target_s for r in runs):
        return f"met in each of {len(runs)} runs ({few})"
    if all(r > target_s for r in runs):
        return f"missed in each of {len(runs)} runs ({few})"
    return f"met in {sum(r <= target_s for r in runs)} of {len(runs)} runs: cannot tell ({few})"


def describe_latency_target(
    frame: pd.DataFrame, target_s: float, rate: float | None = None, quantile: str = "p95"
) -> str:
    """Which batch sizes meet a latency target at an arrival rate, from the measured ``quantile``."""
    if isinstance(target_s, bool) or not isinstance(target_s, (int, float)) or not 0 < target_s < math.inf:
        raise ParameterError("target_s", target_s, "a latency target in seconds > 0")
    table = latency_table(frame, quantile)
    rates = sorted(table["rate"].unique())
    if rate is None and len(rates) == 1:
        rate = rates[0]
    if rate is None or float(rate) not in rates:
        raise ParameterError("rate", rate, f"a measured arrival rate: {rates}")
    table = table[table["rate"] == float(rate)]
    q = quantile
    lines = [f"Target: {q} latency ≤ {format_number(target_s)} s at {format_number(rate)} records/s."]
    met, sure, unsure = [], [], []
    for r in table.itertuples():
        v = r._asdict()
        said = verdict(v[f"{q}_s"], v[f"{q}_lo"], v[f"{q}_hi"], v[f"{q}_runs"], target_s)
        lines.append(
            f"batch {r.batch} on {r.workers} worker(s): {q} {format_number(v[f'{q}_s'])} s (median of runs), "
            f"{format_rate(r.records_per_s, 'records')}: {said}."
        )
        met += [r] if said.startswith(("meets", "met in each")) else []
        sure += [r] if said.startswith("meets") else []
        unsure += [r] if "cannot tell" in said else []
    if not met:
        open_ = ", ".join(str(r.batch) for r in unsure)
        tail = f"; for batch size(s) {open_} the runs cannot tell" if unsure else ""
        lines.append(f"Answer: no batch size measured was shown to meet the target{tail}.")
        return "\n".join(lines)
    best = min(met, key=lambda r: getattr(r, f"{q}_s"))
    how = "by its interval" if best in sure else "in every run, without an interval"
    names = ", ".join(str(r.batch) for r in met)
    lines.append(
        f"Answer: batch size(s) {names} met the target; batch {best.batch} had the lowest {q} "
        f"({format_number(getattr(best, f'{q}_s'))} s; met {how})."
    )
    return "\n".join(lines)


# -- compression: the best trade-off per kind of data ----------------------------------


def codec_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per operation, kind of data and codec: compression ratio, median throughput, and the
    throughput against the fastest codec for that data (a ratio of medians with its interval)."""
    import pandas as pd

    ok = _ok(frame, ("compression_ratio",))
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


# -- memory: how much slower a spilling run is ------------------------------------------


def spill_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per working-set ratio: runs ok and failed, median throughput, the slowdown against the
    smallest ratio (its throughput over this one's, with its interval) and the bytes spilled."""
    import pandas as pd

    require(frame, ("point", "status", "throughput"))
    params = point_params(frame)
    base_ratio = params.loc[frame["status"] == "ok", "ratio"].min()
    if pd.isna(base_ratio):
        raise ParameterError("frame", "no memory-spill trial with status ok", "at least one successful trial")
    base = frame.loc[(params["ratio"] == base_ratio) & (frame["status"] == "ok"), "throughput"].to_numpy(float)
    rows = []
    for ratio, g in frame.groupby(params["ratio"], sort=True):
        ok = g[g["status"] == "ok"]
        row: dict[str, Any] = {"ratio": float(ratio), "runs": len(ok), "failed": len(g) - len(ok)}
        row["error"] = g.loc[g["status"] != "ok", "error"].dropna().head(1).tolist() or None
        tp = ok["throughput"].to_numpy(float)
        est = ratio_estimate(base, tp) if len(tp) and ratio != base_ratio else None
        row.update(
            throughput=float(np.median(tp)) if len(tp) else math.nan,
            unit=g["unit"].dropna().iloc[0] if g["unit"].notna().any() else None,
            slowdown=est.value if est else (1.0 if len(tp) else math.nan),
            slowdown_lo=est.lo if est else math.nan,
            slowdown_hi=est.hi if est else math.nan,
        )
        for col in ("spilled_bytes", "spill_write_bytes"):
            vals = ok[col].astype(float) if col in ok.columns else ok["throughput"] * math.nan
            row[col] = float(vals.median()) if vals.notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def describe_spill(frame: pd.DataFrame) -> str:
    """How much slower runs whose working set passes the memory limit are than one that fits."""
    table = spill_table(frame)
    base = table[table["runs"] > 0].iloc[0]
    lines = [
        f"Baseline: working set {base.ratio:g}× the memory limit, {format_rate(base.throughput, base.unit)} "
        f"({_spilled(base)})."
    ]
    for r in table[table["ratio"] != base.ratio].itertuples():
        failed = f"; {r.failed} run(s) failed ({r.error[0][:120]})" if r.failed else ""
        if r.runs == 0:
            lines.append(f"{r.ratio:g}× the limit: no run finished{failed}.")
            continue
        how = _slowdown_words(r.slowdown, r.slowdown_lo, r.slowdown_hi)
        lines.append(f"{r.ratio:g}× the limit: {how} than {base.ratio:g}× ({_spilled(r)}){failed}.")
    return "\n".join(lines)


def _spilled(row: Any) -> str:
    """What a row's runs spilled (medians), in words; "not measured" where the workers do not say."""
    if math.isnan(row.spilled_bytes) and math.isnan(row.spill_write_bytes):
        return "spilling not measured"
    held = "not measured" if math.isnan(row.spilled_bytes) else f"{row.spilled_bytes / MiB:.0f} MiB"
    written = "not measured" if math.isnan(row.spill_write_bytes) else f"{row.spill_write_bytes / MiB:.0f} MiB"
    return f"on disk while held: {held}; written to disk during the run: {written}"


def _slowdown_words(s: float, lo: float, hi: float) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return f"{format_number(s)}× the baseline's time per byte (an estimate: interval not available)"
    span = f"95% interval {format_number(lo)}–{format_number(hi)}×"
    if lo > 1:
        return f"{format_number(s)}× slower ({span})"
    if hi < 1:
        return f"{format_number(1 / s)}× faster ({span} slowdown)"
    return f"not measurably slower or faster ({format_number(s)}×, {span})"
