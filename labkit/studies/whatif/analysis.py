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
from labkit.analysis.intervals import Estimate, figures, median_estimate
from labkit.analysis.trust import admit, trusted
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number
from labkit.measure.trace import Trace

from .probe import Network
from .replay import cluster_of, ignored, predict

if TYPE_CHECKING:
    import pandas as pd


def _traced_trials(results: Any, where: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """The ok trials of ``results`` with a trace and the ``where`` values, the admitted ones
    among them (:func:`~labkit.analysis.trust.admit`), and the stored traces."""
    from labkit.store import ResultStore

    frame = getattr(results, "frame", None)
    if frame is None or not getattr(results, "store_path", None):
        raise ParameterError("results", results, "the Results of a Sweep run with trace=True")
    with ResultStore(results.store_path) as store:
        traces = store.traces_frame()
    ok = frame[frame["status"].eq("ok") & frame["trial_id"].isin(traces["trial_id"])]
    for key, value in where.items():
        if value is not None:
            ok = ok[ok[key] == value]
    if ok.empty:
        said = ", ".join(f"{k}={v}" for k, v in where.items() if v is not None)
        raise DataError(f"no ok trial{' at ' + said if said else ''} has a trace: run the Sweep with trace=True")
    return ok, admit(ok).frame, traces


def _read(traces: pd.DataFrame, trial_id: Any) -> Trace:
    return Trace.from_bytes(bytes(traces.loc[traces["trial_id"] == trial_id, "trace"].iloc[0]))


def trace_of(results: Any, *, workers: int | None = None, keep_loaded: bool = False, **where: Any) -> Trace:
    """The trace of the median admitted trial of ``results`` (a sweep run with ``trace=True``),
    at ``workers`` (and other ``where`` values, ``chunk_mb=8.0``) where the sweep had several.
    Where every traced trial ran under outside load, the median of those, marked
    ``under_load``: its predictions then claim no direction. ``keep_loaded``: the median of
    every ok traced trial, those under outside load too (for figures that claim nothing, as
    a benchmark's, set beside medians of every run)."""
    ok, admitted, traces = _traced_trials(results, {"workers": workers, **where})
    pool = ok if keep_loaded or admitted.empty else admitted
    ranked = pool.sort_values("wall_s")
    trace = _read(traces, ranked["trial_id"].iloc[(len(ranked) - 1) // 2])
    trace.under_load = (keep_loaded or admitted.empty) and admit(ok).loaded > 0
    return trace


def traces_of(results: Any, **where: Any) -> list[Trace]:
    """Every admitted trace of ``results`` at the ``where`` values (all traced ones, each marked
    ``under_load``, where none was admitted): what :func:`~.chunks.predict_chunks` fits."""
    ok, admitted, traces = _traced_trials(results, where)
    kept = admitted if len(admitted) else ok
    out = [_read(traces, t) for t in kept["trial_id"]]
    for t in out:
        t.under_load = admitted.empty and admit(ok).loaded > 0
    return out


def what_if(
    trace: Trace, questions: Mapping[str, Mapping[str, Any]], *, samples: int = 40, network: Network | None = None
) -> pd.DataFrame:
    """One prediction per question: ``{"8 workers": {"workers": 8}, ...}``, each a change to the
    traced cluster (:func:`~.replay.cluster_of`'s keywords; ``network`` from
    :func:`~.probe.measure_network` gives what the trace lacks). Columns: ``question``, the cluster's
    ``workers``, ``threads``, ``bandwidth``, ``latency_s``, ``memory_limit``, ``overhead_s``,
    ``dispatch_s``, ``predicted_s`` with
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
        p = predict(trace, cluster_of(trace, network, **changes), samples=samples)
        c = p.cluster
        rows.append(
            {"question": name, "workers": c.workers, "threads": c.threads, "bandwidth": c.bandwidth,
             "latency_s": c.latency_s, "memory_limit": c.memory_limit, "overhead_s": c.overhead_s,
             "dispatch_s": c.dispatch_s, "predicted_s": p.wall.value,
             "lo": p.wall.lo, "hi": p.wall.hi, "note": p.wall.note, "moved_bytes": p.transferred,
             "spilled_bytes": p.spilled, "traced_s": trace.wall_s, "under_load": bool(trace.under_load)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def replays(value: float, lo: float, hi: float, what: str = "the replay") -> str:
    """A predicted wall time, labelled an estimate, with the range of its replays (the digits
    it takes for its ends to differ).

    >>> replays(0.30012, 0.30001, 0.30049)
    '0.3001 s (an estimate from the replay, 95% of replays 0.3–0.3005 s)'
    """
    if math.isnan(lo) or math.isnan(hi):
        return f"{format_number(value)} s (an estimate from {what})"
    v, a, b = figures(value, lo, hi)
    return f"{v} s (an estimate from {what}, 95% of replays {a}–{b} s)"


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
        said = replays(row.predicted_s, row.lo, row.hi)
        words = ratio_words(_speedup(row), label="predicted speedup", invert=True, narrow="a trace of more tasks")
        lines.append(f"{row.question}: predicted {said}; against the traced run: {words}.")
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


def task_time_ratio(traced: Trace, other: Trace, *, samples: int = 400, seed: int = 0) -> Estimate:
    """How long the same tasks took in ``other`` (a run at another size) against ``traced``:
    per kind (key prefix) the ratio of mean durations, weighted by the kind's share of the traced
    task time, with a 95% interval from resampling each kind's tasks in both. Above 1, the
    tasks themselves ran slower there (cores shared, memory bandwidth shared), which a replay,
    keeping the traced durations, does not predict."""

    def kinds(t: Trace) -> dict[str, np.ndarray]:
        out: dict[str, list[float]] = {}
        for i in range(t.tasks):
            out.setdefault(t.prefixes[t.prefix[i]], []).append(t.stop[i] - t.start[i])
        return {k: np.asarray(v) for k, v in out.items()}

    a, b = kinds(traced), kinds(other)
    common = [k for k in a if k in b and a[k].mean() > 0]
    if not common:
        return Estimate(math.nan, math.nan, math.nan, "not measured: no task kind in both runs")
    weights = np.array([len(a[k]) for k in common], float)

    def ratio(pick: Any) -> float:
        return float(
            sum(w * pick(b[k]) for w, k in zip(weights, common)) / sum(w * pick(a[k]) for w, k in zip(weights, common))
        )

    value = ratio(np.mean)
    rng = np.random.default_rng(seed)
    draws = [ratio(lambda x: rng.choice(x, len(x)).mean()) for _ in range(samples)]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    if hi - lo <= 1e-9 * value:
        return Estimate(value, math.nan, math.nan, "interval not available: the task durations do not vary")
    return Estimate(value, min(float(lo), value), max(float(hi), value))
