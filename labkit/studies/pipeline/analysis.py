"""Conclusions about model parallelism: throughput and the pipeline bubble against stages and
micro-batches, and a pipeline against data parallelism at equal workers.

The functions take tidy trials frames (``Results.frame`` or ``ResultStore.trials_frame()``)
of the ``pipeline-mlp`` workload (:mod:`labkit.studies.pipeline.workloads`). Throughput is the
trials' ``throughput`` column (samples over each timed run's wall time, as the Sweep
measures every workload); the bubble is each run's measured ``bubble_fraction``, shown
beside GPipe's estimate ``(S - 1) / (M + S - 1)``, which is labelled as one. Intervals are
95% bootstrap intervals of medians over the repeats (:mod:`labkit.analysis.intervals`); with fewer than
five runs a point they are not available and the sentences say so. A sentence claims a
direction (fell, faster) only when the interval of its ratio excludes 1
(:func:`~labkit.analysis.claims.ratio_words`).

>>> ratio_words(Estimate(0.5, 0.4, 0.6), label="bubble", words=("rose", "fell"))
'bubble 0.5× (95% interval 0.4–0.6×): fell'
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.frames import config_keys, point_params, require
from labkit.analysis.intervals import Estimate, direction, median_estimate, ratio_estimate, runs_note, show_rate
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number

if TYPE_CHECKING:
    import pandas as pd

WORKLOAD = "pipeline-mlp"
SHOWN = ("mode", "hidden", "depth", "batch", "steps")  # the configuration named beside stages and micro-batches
NETWORK = ("hidden", "depth")


def _ok(frame: pd.DataFrame, name: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    require(frame, ("point", "status", "throughput", "workers", "unit", *columns))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise ParameterError(name, "no trial with status ok", "at least one successful trial")
    return ok


def _workers_used(ok: pd.DataFrame, params: pd.DataFrame) -> np.ndarray:
    """Distinct workers holding a stage, per trial (from ``stage_worker``; else ``min(stages, workers)``)."""
    fallback = np.minimum(params["stages"].to_numpy(int), ok["workers"].to_numpy(int))
    if "stage_worker" not in ok.columns:
        return fallback
    used = [len(set(v)) if isinstance(v, (list, tuple)) else f for v, f in zip(ok["stage_worker"], fallback)]
    return np.asarray(used, int)


def _finite(values: Any) -> np.ndarray:
    x = np.asarray(values, float)
    return x[np.isfinite(x)]


def _median(values: np.ndarray) -> Estimate:
    if values.size == 0:
        return Estimate(math.nan, math.nan, math.nan, "not measured")
    if np.any(values <= 0):
        return Estimate(float(np.median(values)), math.nan, math.nan, "interval not available: a value <= 0")
    return median_estimate(values)


def _ratio(num: np.ndarray, den: np.ndarray) -> Estimate:
    if num.size == 0 or den.size == 0:
        return Estimate(math.nan, math.nan, math.nan, "not measured")
    if np.any(num <= 0) or np.any(den <= 0):
        value = float(np.median(num) / np.median(den)) if np.median(den) > 0 else math.nan
        return Estimate(value, math.nan, math.nan, "interval not available: a value <= 0")
    return ratio_estimate(num, den)


def pipeline_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and worker count of ``pipeline-mlp`` trials: throughput and
    measured bubble (medians over the runs, 95% intervals), GPipe's estimate beside them.

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of the ``pipeline-mlp`` workload (other workloads' rows are left out).

    Returns
    -------
    pandas.DataFrame
        Columns ``workers`` (the lab's), ``workers_used`` (holding a stage), ``stages``,
        ``microbatches``, ``mode``, ``hidden``, ``depth``, ``batch``, ``steps``, ``runs``, ``throughput``,
        ``throughput_lo``, ``throughput_hi``, ``unit``, ``bubble``, ``bubble_lo``, ``bubble_hi``
        (measured; NaN where not measured), ``bubble_estimate`` (GPipe's, an estimate),
        ``note`` (why an interval is not available; ``""`` when it is), ``config`` (the point
        without its worker count) and ``throughput_runs``, ``bubble_runs`` (the repeats).
    """
    import pandas as pd

    ok = _ok(frame, "frame")
    params = point_params(ok)
    ok = ok[(params["workload"] == WORKLOAD).to_numpy()]
    if ok.empty:
        raise DataError("no ok trial of pipeline-mlp", "needs trials of the pipeline-mlp workload")
    params = point_params(ok)
    ok = ok.assign(_config=config_keys(ok), _used=_workers_used(ok, params))
    rows = []
    for (config, workers), g in ok.groupby(["_config", "workers"], sort=False):
        p = {**json.loads(config)}
        tp = _finite(g["throughput"])
        bubble = _finite(g["bubble_fraction"]) if "bubble_fraction" in g.columns else np.array([])
        t, busy = _median(tp), _median(1.0 - bubble)  # the interval of 1 - bubble: bubbles may reach 0
        stages, mb = int(p["stages"]), int(p["microbatches"])
        rows.append(
            {
                "workers": int(workers),
                "workers_used": int(g["_used"].max()),
                "stages": stages,
                "microbatches": mb,
                **{k: p.get(k) for k in SHOWN},
                "runs": int(tp.size),
                "throughput": t.value,
                "throughput_lo": t.lo,
                "throughput_hi": t.hi,
                "unit": str(g["unit"].iloc[0]),
                "bubble": 1.0 - busy.value,
                "bubble_lo": 1.0 - busy.hi,
                "bubble_hi": 1.0 - busy.lo,
                "bubble_estimate": (stages - 1) / (mb + stages - 1),
                "note": runs_note(tp.size) if tp.size else "not measured",
                "config": config,
                "throughput_runs": tp.tolist(),
                "bubble_runs": bubble.tolist(),
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(
        ["mode", "hidden", "depth", "batch", "workers", "stages", "microbatches"], kind="stable"
    ).reset_index(drop=True)


UP_DOWN = ("rose", "fell")


def percent_span(lo: float, hi: float) -> str:
    """An interval of shares in percent, with as many decimals as it takes for its ends to differ.

    >>> percent_span(0.9951, 0.9954), percent_span(0.25, 0.4)
    ('99.51%–99.54%', '25.0%–40.0%')
    """
    for places in range(1, 7):
        low, high = f"{lo:.{places}%}", f"{hi:.{places}%}"
        if low != high:
            break
    return f"{low}–{high}"


def _bubble_words(r: Any) -> str:
    if math.isnan(r.bubble):
        return f"bubble not measured (GPipe's estimate {r.bubble_estimate:.0%})"
    span = (
        "interval not available"
        if math.isnan(r.bubble_lo)
        else f"95% interval {percent_span(r.bubble_lo, r.bubble_hi)}"
    )
    return f"measured bubble {r.bubble:.1%} ({span}; GPipe's estimate {r.bubble_estimate:.0%})"


def _label(r: Any) -> str:
    return f"{r.stages} stage(s) on {r.workers_used} of {r.workers} worker(s), {r.microbatches} micro-batch(es)"


@trusted
def describe_pipeline(frame: pd.DataFrame) -> str:
    """Throughput and bubble of each measured point, and, per stage count, what more
    micro-batches changed (the ratios of the most to the fewest, with their intervals).

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of the ``pipeline-mlp`` workload.

    Returns
    -------
    str
        One line per point, one per stage count measured at more than one micro-batch
        count, and a note on GPipe's estimate.
    """
    table = pipeline_table(frame)
    lines = []
    for r in table.itertuples():
        lines.append(
            f"{_label(r)} ({r.mode}, hidden {r.hidden}, depth {r.depth}, batch {r.batch}): "
            f"{show_rate(r.throughput, r.throughput_lo, r.throughput_hi, r.unit)}, {_bubble_words(r)}"
            + (f" [{r.note}]" if r.note else "")
            + "."
        )
    keys = ["mode", "hidden", "depth", "batch", "steps", "workers", "stages"]
    for key, g in table.groupby(keys, sort=False, dropna=False):
        if g["microbatches"].nunique() < 2:
            continue
        few, many = g.loc[g["microbatches"].idxmin()], g.loc[g["microbatches"].idxmax()]
        b = _ratio(np.asarray(many["bubble_runs"], float), np.asarray(few["bubble_runs"], float))
        t = _ratio(np.asarray(many["throughput_runs"], float), np.asarray(few["throughput_runs"], float))
        lines.append(
            f"{key[6]} stage(s), lab of {key[5]} worker(s) ({key[0]}, hidden {key[1]}, depth {key[2]}, batch {key[3]}), "
            f"{few.microbatches} → {many.microbatches} "
            f"micro-batches: {ratio_words(b, label='measured bubble', words=UP_DOWN)}; "
            f"{ratio_words(t, label='throughput', words=UP_DOWN)}."
        )
    lines.append(
        "GPipe's estimate assumes equal stages, each on its own device, and free communication: "
        "the measured bubble also counts transfers, the client's scheduling and stages sharing a worker."
    )
    return "\n".join(lines)


def _fastest(table: pd.DataFrame) -> pd.Series:
    return table.loc[table["throughput"].idxmax()]


def _data_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and worker count of a data-parallel frame: its throughput runs and network."""
    import pandas as pd

    ok = _ok(frame, "data_frame")
    ok = ok.assign(_config=config_keys(ok))
    rows = []
    for (config, workers), g in ok.groupby(["_config", "workers"], sort=False):
        tp = _finite(g["throughput"])
        d = json.loads(config)
        rows.append(
            {
                "workers": int(workers),
                "config": config,
                "network": tuple(d[k] for k in NETWORK) if all(k in d for k in NETWORK) else None,
                "unit": str(g["unit"].iloc[0]),
                "throughput": float(np.median(tp)) if tp.size else math.nan,
                "throughput_runs": tp.tolist(),
            }
        )
    return pd.DataFrame(rows)


def _data_words(config: str) -> str:
    d = json.loads(config)
    return ", ".join(f"{k} {d[k]}" for k in ("workload", "batch", *NETWORK) if k in d)


def _compare(p: pd.Series, d: pd.Series) -> tuple[str, str]:
    """The line for one pair, and its verdict."""
    est = _ratio(np.asarray(p["throughput_runs"], float), np.asarray(d["throughput_runs"], float))
    if math.isnan(est.lo) and not est.note:
        est = est._replace(note=runs_note(len(p["throughput_runs"]), len(d["throughput_runs"])))
    which = {"up": "the pipeline is faster", "down": "data parallelism is faster"}.get(
        direction(est.lo, est.hi), "the runs cannot tell which is faster"
    )
    said = ratio_words(est, words=("the pipeline is faster", "data parallelism is faster"))
    line = (
        f"{p['workers_used']} worker(s): pipeline ({p['stages']} stage(s), {p['microbatches']} micro-batch(es), "
        f"hidden {p['hidden']}, depth {p['depth']}, batch {p['batch']}) at {format_number(p['throughput'])} "
        f"samples/s against data parallelism ({_data_words(d['config'])}) at {format_number(d['throughput'])} "
        f"samples/s: {said}."
    )
    return line, which


@trusted
def describe_pipeline_vs_data(pipeline_frame: pd.DataFrame, data_frame: pd.DataFrame) -> str:
    """The pipeline against data parallelism at equal workers and on the same network: the ratio
    of their samples per second, with its interval; a direction only where the interval excludes 1.

    At each worker count measured by both (for the pipeline: the workers holding its stages),
    the fastest configuration by median of the pipeline's training runs (``mode="train"``)
    whose network (``hidden``, ``depth``) the data-parallel trials also ran is compared with
    the fastest data-parallel configuration on that network. Both sides' samples per second
    are as their workloads measure them (a data-parallel trial's wall time also holds its
    held-out evaluations); the sentence names each configuration, batch sizes included.

    Parameters
    ----------
    pipeline_frame : pandas.DataFrame
        Trials of ``pipeline-mlp``.
    data_frame : pandas.DataFrame
        Trials of a data-parallel workload (``ddp-train``, ``sgd-numpy``) whose unit is samples.

    Returns
    -------
    str
        One line per shared worker count and an ``Answer:`` line.
    """
    pipe = pipeline_table(pipeline_frame)
    data = _data_table(data_frame)
    for name, t in (("pipeline_frame", pipe), ("data_frame", data)):
        units = set(t["unit"])
        if units != {"samples"}:
            raise ParameterError(name, f"units {sorted(units)}", "trials whose work is counted in samples")
    pipe = pipe[(pipe["mode"] == "train") & pipe["throughput"].notna()]
    pipe = pipe.assign(network=[(h, d) for h, d in zip(pipe["hidden"], pipe["depth"])])
    data = data[data["throughput"].notna()]
    if pipe.empty:
        return "Answer: not measured: the pipeline trials hold no successful training runs (mode='train')."
    shared = sorted(set(pipe["workers_used"]) & set(data["workers"]))
    if not shared:
        return (
            f"Answer: not measured at equal workers: the pipeline used {sorted(set(pipe['workers_used']))} worker(s), "
            f"data parallelism ran on {sorted(set(data['workers']))}."
        )
    lines, verdicts = [], []
    for w in shared:
        p_w, d_w = pipe[pipe["workers_used"] == w], data[data["workers"] == w]
        if d_w["network"].notna().all():
            nets = set(d_w["network"])
            p_w = p_w[[n in nets for n in p_w["network"]]]
        if p_w.empty:
            lines.append(
                f"{w} worker(s): not measured on the same network (pipeline: {sorted(set(pipe['network']))}, "
                f"data parallelism: {sorted(set(d_w['network']))}, as (hidden, depth))."
            )
            verdicts.append(f"at {w} worker(s) not measured on the same network")
            continue
        p = _fastest(p_w)
        same = d_w[[n == p["network"] for n in d_w["network"]]] if d_w["network"].notna().all() else d_w
        line, which = _compare(p, _fastest(same))
        lines.append(line)
        verdicts.append(f"at {w} worker(s) {which}")
    lines.append("Answer: " + "; ".join(verdicts) + " (ratio: pipeline samples/s over data-parallel samples/s).")
    return "\n".join(lines)
