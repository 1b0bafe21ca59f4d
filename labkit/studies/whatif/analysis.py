"""The what-if study's answers: a sweep's traces, predictions for virtual clusters, and
predictions set against runs measured on the same clusters.

The trace replayed is that of the admitted trial (:func:`~labkit.analysis.trust.admit`: ok,
not under outside load) whose wall time is its point's median. Every sentence goes through
:func:`~labkit.analysis.claims.ratio_words`; a prediction is labelled an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.intervals import Estimate, median_estimate
from labkit.analysis.trust import admit, trusted
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number
from labkit.measure.trace import Trace

from .replay import cluster_of, ignored, predict

if TYPE_CHECKING:
    import pandas as pd


def trace_of(results: Any, *, workers: int | None = None) -> Trace:
    """The trace of the median admitted trial of ``results`` (a sweep run with ``trace=True``),
    at ``workers`` where the sweep had several counts. Where every traced trial ran under outside
    load, the median of those, marked ``under_load``: its predictions then claim no direction."""
    from labkit.store import ResultStore

    frame = getattr(results, "frame", None)
    if frame is None or not getattr(results, "store_path", None):
        raise ParameterError("results", results, "the Results of a Sweep run with trace=True")
    with ResultStore(results.store_path) as store:
        traces = store.traces_frame()
    ok = frame[frame["status"].eq("ok") & frame["trial_id"].isin(traces["trial_id"])]
    if workers is not None:
        ok = ok[ok["workers"] == workers]
    if ok.empty:
        where = f" at workers={workers}" if workers is not None else ""
        raise DataError(f"no ok trial{where} has a trace: run the Sweep with trace=True")
    admitted = admit(ok).frame
    ranked = (admitted if len(admitted) else ok).sort_values("wall_s")
    trial_id = ranked["trial_id"].iloc[(len(ranked) - 1) // 2]
    trace = Trace.from_bytes(bytes(traces.loc[traces["trial_id"] == trial_id, "trace"].iloc[0]))
    trace.under_load = admitted.empty and admit(ok).loaded > 0
    return trace


def what_if(trace: Trace, questions: Mapping[str, Mapping[str, Any]], *, samples: int = 40) -> pd.DataFrame:
    """One prediction per question: ``{"8 workers": {"workers": 8}, ...}``, each a change to the
    traced cluster (:func:`~.replay.cluster_of`'s keywords). Columns: ``question``, the cluster's
    ``workers``, ``threads``, ``bandwidth``, ``memory_limit``, ``overhead_s``, ``predicted_s`` with
    ``lo``/``hi`` (NaN and ``note`` where no interval), ``moved_bytes``, ``spilled_bytes``, ``traced_s``."""
    import pandas as pd

    if not isinstance(questions, Mapping) or not questions:
        raise ParameterError(
            "questions", questions, 'a mapping of names to cluster changes, e.g. {"8 workers": {"workers": 8}}'
        )
    rows = []
    for name, changes in questions.items():
        if not isinstance(changes, Mapping):
            raise ParameterError(f"questions[{name!r}]", changes, "a mapping of cluster changes")
        p = predict(trace, cluster_of(trace, **changes), samples=samples)
        c = p.cluster
        rows.append(
            {"question": name, "workers": c.workers, "threads": c.threads, "bandwidth": c.bandwidth,
             "memory_limit": c.memory_limit, "overhead_s": c.overhead_s, "predicted_s": p.wall.value,
             "lo": p.wall.lo, "hi": p.wall.hi, "note": p.wall.note, "moved_bytes": p.transferred,
             "spilled_bytes": p.spilled, "traced_s": trace.wall_s, "under_load": bool(trace.under_load)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _speedup(row: Any) -> Estimate:
    traced = row.traced_s
    if not traced or math.isnan(row.predicted_s):
        return Estimate(math.nan, math.nan, math.nan, "the traced run's wall time was not recorded")
    if row.under_load:
        return Estimate(traced / row.predicted_s, math.nan, math.nan, "the traced run ran under outside load")
    return Estimate(traced / row.predicted_s, traced / row.hi, traced / row.lo, row.note)


def describe_what_if(table: pd.DataFrame) -> str:
    """Each question's predicted wall time (an estimate from the replay) and its predicted
    speedup over the traced run, in words, then what the replay ignores."""
    lines = []
    for row in table.itertuples():
        span = "" if math.isnan(row.lo) else f", 95% of replays {format_number(row.lo)}–{format_number(row.hi)} s"
        words = ratio_words(_speedup(row), label="predicted speedup", invert=True, narrow="a trace of more tasks")
        lines.append(
            f"{row.question}: predicted {format_number(row.predicted_s)} s (an estimate from the replay{span}); "
            f"against the traced run: {words}."
        )
    first = table.iloc[0]
    cluster = cluster_of_row(first)
    lines.append("The replay ignores: " + "; ".join(ignored(cluster)) + ".")
    return "\n".join(lines)


def cluster_of_row(row: Any) -> Any:
    from .engine import VirtualCluster

    bw, mem = row["bandwidth"], row["memory_limit"]
    return VirtualCluster(
        int(row["workers"]), int(row["threads"]), None if bw is None or bw != bw else float(bw),
        memory_limit=None if mem is None or mem != mem else float(mem), overhead_s=float(row["overhead_s"]),
    )  # fmt: skip


def against_measured(table: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """``table``'s predictions beside the ok trials measured at the same worker count (and
    threads): the measured median with its interval, ``error`` = predicted / measured − 1, and
    ``under_load``, how many of those trials ran under outside load (the words leave them out:
    :func:`describe_against_measured`)."""
    import pandas as pd

    from labkit.analysis.trust import load_flags

    ok = measured[measured["status"].eq("ok")] if "status" in measured else measured
    rows = []
    for row in table.itertuples():
        mine = ok[(ok["workers"] == row.workers) & (ok["threads"] == row.workers * row.threads)]  # all threads
        walls = mine["wall_s"].dropna().to_numpy(float)
        m = median_estimate(walls) if walls.size else Estimate(math.nan, math.nan, math.nan, "not measured")
        error = row.predicted_s / m.value - 1 if walls.size else math.nan
        rows.append(
            {"question": row.question, "workers": row.workers, "threads": row.threads,
             "predicted_s": row.predicted_s, "lo": row.lo, "hi": row.hi, "note": row.note,
             "measured_s": m.value, "measured_lo": m.lo, "measured_hi": m.hi, "runs": int(walls.size),
             "error": error, "under_load": sum(f is True for f in load_flags(mine))}
        )  # fmt: skip
    return pd.DataFrame(rows)


@trusted
def describe_against_measured(measured: pd.DataFrame, table: pd.DataFrame) -> str:
    """Each prediction as a ratio to the measured median, the interval being the prediction's."""
    lines, rows = [], against_measured(table, measured)
    for row in rows.itertuples():
        if not row.runs:
            lines.append(f"{row.question}: measured time: not measured (no admitted trial at this size).")
            continue
        est = Estimate(row.predicted_s / row.measured_s, row.lo / row.measured_s, row.hi / row.measured_s, row.note)
        words = ratio_words(est, "the measured median", ("above it", "below it"), narrow="a trace of more tasks")
        lines.append(f"{row.question}: the prediction (an estimate) is {words} ({row.runs} runs measured).")
    errors = rows["error"].dropna().abs()
    if len(errors):
        lines.append(f"Median error {np.median(errors):.1%}, worst {errors.max():.1%}, over {len(errors)} sizes.")
    return "\n".join(lines)
