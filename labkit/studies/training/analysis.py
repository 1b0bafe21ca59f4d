"""Conclusions about training runs: time to a target accuracy against workers, global batch and framework.

The headline is the one MLPerf Training uses: the time to reach a target held-out accuracy,
not the time per epoch alone (an epoch that runs faster but needs more epochs is no win).
Each function takes tidy trials frames of a training workload (``ddp-train``, ``tf-train``, ``sgd-numpy``,
or any workload whose metrics carry ``time_to_target_s``, ``reached_target``,
``time_per_epoch_s`` and ``epochs``): :func:`training_table` gives one row per grid point with
the median over its runs and a 95% bootstrap interval, and the ``describe_*`` sentences claim
a direction only when an interval does. A run that did not reach the target has no time to
target: it is counted as such ("reached in 3 of 5 runs"), never given a number, and a point
with such runs is never called the soonest.

>>> reached_words(5, 5), reached_words(0, 3), reached_words(2, 5)
('reached the target in all 5 runs', 'did not reach the target in any of 3 runs', 'reached the target in 2 of 5 runs')
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words, reached_words
from labkit.analysis.frames import point_params, require
from labkit.analysis.intervals import median_estimate, ratio_estimate, show
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number
from labkit.workloads.learning import SKIPPED, torch_note  # noqa: F401  (the study shows them)

if TYPE_CHECKING:
    import pandas as pd

NEEDED = ("time_to_target_s", "reached_target", "time_per_epoch_s", "epochs")


def training_points(workers: list[int], batch_sizes: list[int], batch: int) -> list[dict[str, int]]:
    """Grid points for a data-parallel sweep: every global batch at the most workers, and ``batch``
    at every other worker count (the points :func:`describe_batch` and :func:`describe_workers` compare).

    >>> training_points([1, 2], [64, 1024], 1024)
    [{'workers': 2, 'batch': 64}, {'workers': 2, 'batch': 1024}, {'workers': 1, 'batch': 1024}]
    """
    if not workers or not batch_sizes:
        raise ParameterError("workers, batch_sizes", (workers, batch_sizes), "non-empty lists")
    if batch not in batch_sizes:
        raise ParameterError("batch", batch, f"one of batch_sizes {list(batch_sizes)}")
    most = max(workers)
    return [{"workers": most, "batch": b} for b in batch_sizes] + [
        {"workers": w, "batch": batch} for w in sorted(set(workers)) if w != most
    ]


def _times(values: Any) -> np.ndarray:
    import pandas as pd

    x = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)
    return x[np.isfinite(x) & (x > 0)]


def training_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point (workload, workers, batch and the other parameters): runs, runs that
    reached the target, the median time to target among those with its interval, the median
    time per epoch and per step with their intervals, epochs, final accuracy and bytes all-reduced
    per step (``step_s`` NaN where the trials have no ``time_per_step_s``: not measured).

    ``ttt_s`` is NaN where no run reached the target (not measured); ``ttt_lo``/``ttt_hi``
    are NaN where no interval is available (``ttt_note`` says why).
    """
    import pandas as pd

    require(frame, ("point", "status", "workers", *NEEDED))
    ok = frame[frame["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise DataError("no trial with status ok", "needs at least one successful training trial")
    params = point_params(ok)
    rows = []
    for point, g in ok.groupby("point", sort=False):
        p = params.loc[g.index[0]]
        reached = g["reached_target"].astype(bool).to_numpy()
        ttt, epoch_s = _times(g.loc[reached, "time_to_target_s"]), _times(g["time_per_epoch_s"])
        step_s = _times(g["time_per_step_s"]) if "time_per_step_s" in g else np.array([])
        t = median_estimate(ttt) if ttt.size else None
        e = median_estimate(epoch_s) if epoch_s.size else None
        s = median_estimate(step_s) if step_s.size else None
        epochs = pd.to_numeric(g["epochs"], errors="coerce")
        row = {
            "workload": p["workload"],
            "workers": int(g["workers"].iloc[0]),
            "batch": int(p["batch"]) if "batch" in p else None,
            "lr": float(pd.to_numeric(g["lr"]).median()) if "lr" in g else math.nan,
            "runs": len(g),
            "reached": int(reached.sum()),
            "ttt_s": t.value if t else math.nan,
            "ttt_lo": t.lo if t else math.nan,
            "ttt_hi": t.hi if t else math.nan,
            "ttt_note": t.note if t else "not measured: the target was not reached",
            "ttt_runs": ttt.tolist(),
            "epoch_s": e.value if e else math.nan,
            "epoch_lo": e.lo if e else math.nan,
            "epoch_hi": e.hi if e else math.nan,
            "epoch_runs": epoch_s.tolist(),
            "step_s": s.value if s else math.nan,
            "step_lo": s.lo if s else math.nan,
            "step_hi": s.hi if s else math.nan,
            "step_runs": step_s.tolist(),
            "epochs": float(epochs[reached].median()) if reached.any() else math.nan,
            "max_epochs": float(epochs.max()),
            "final_accuracy": float(pd.to_numeric(g["final_accuracy"]).median()) if "final_accuracy" in g else math.nan,
            "target_accuracy": float(pd.to_numeric(g["target_accuracy"]).iloc[0])
            if "target_accuracy" in g
            else math.nan,
            "bytes_allreduced_per_step": (
                float(pd.to_numeric(g["bytes_allreduced_per_step"]).median())
                if "bytes_allreduced_per_step" in g
                else math.nan
            ),
            "point": point,
        }
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["workload", "workers", "batch"], ignore_index=True)


def _one_workload(table: pd.DataFrame, where: str) -> pd.DataFrame:
    names = sorted(table["workload"].unique())
    if len(names) > 1:
        raise DataError(f"trials of {names}", f"needs the trials of one workload ({where})")
    return table


def _row_words(r: Any, label: str) -> str:
    text = f"{label}: {reached_words(r.reached, r.runs)}"
    if r.reached:
        among = "" if r.reached == r.runs else " among those"
        text += f"; time to target {show(r.ttt_s, r.ttt_lo, r.ttt_hi, suffix=' s')}{among}, {format_number(r.epochs)} epochs (median)"
    else:
        text += f" within {int(r.max_epochs)} epochs"
    if not math.isnan(r.epoch_s):
        text += f"; an epoch took {show(r.epoch_s, r.epoch_lo, r.epoch_hi, suffix=' s')}"
    return text + "."


def _soonest(table: pd.DataFrame, what: str) -> str:
    """Which row reaches the target soonest, claimed only when its interval lies below every other's."""
    full = table[table["reached"] == table["runs"]]
    never = table[table["reached"] == 0]
    partial = table[(table["reached"] > 0) & (table["reached"] < table["runs"])]
    if full.empty:
        return f"no {what} reached the target in every run: the soonest is not measured."
    best = full.loc[full["ttt_s"].idxmin()]
    others = full.drop(index=best.name)
    tail = ""
    if not never.empty:
        tail += f"; {', '.join(str(v) for v in never[what])} did not reach it"
    if not partial.empty:
        return (
            f"the runs cannot tell which {what} reaches the target soonest: {', '.join(str(v) for v in partial[what])} "
            f"reached it in only some runs (lowest median among the rest: {what} {best[what]}){tail}."
        )
    if others.empty:
        return f"only {what} {best[what]} reached the target in every run{tail}."
    if math.isnan(best.ttt_hi) or others["ttt_lo"].isna().any():
        note = best.ttt_note or next((n for n in others["ttt_note"] if n), "")
        return (
            f"{what} {best[what]} had the lowest median time to target ({format_number(best.ttt_s)} s), but without "
            f"intervals the runs do not establish which {what} is soonest ({note}){tail}."
        )
    rival = others.loc[others["ttt_lo"].idxmin()]
    if best.ttt_hi < rival.ttt_lo:
        return (
            f"{what} {best[what]} reaches the target soonest: its interval "
            f"({format_number(best.ttt_lo)}–{format_number(best.ttt_hi)} s) lies below every other's{tail}."
        )
    return (
        f"the runs cannot tell which {what} reaches the target soonest: the interval of {what} {best[what]} "
        f"({format_number(best.ttt_lo)}–{format_number(best.ttt_hi)} s) overlaps that of {what} {rival[what]} "
        f"({format_number(rival.ttt_lo)}–{format_number(rival.ttt_hi)} s){tail}; more repeats would narrow them."
    )


def _pick(table: pd.DataFrame, column: str, value: int | None) -> tuple[pd.DataFrame, int]:
    values = sorted(table[column].dropna().unique())
    value = values[-1] if value is None else value
    if value not in values:
        raise ParameterError(column, value, f"a measured value: {[int(v) for v in values]}")
    return table[table[column] == value], int(value)


@trusted
def describe_batch(frame: pd.DataFrame, workers: int | None = None) -> str:
    """Which global batch reaches the target soonest at ``workers`` (default: the most measured),
    and whether the batch with the fastest epochs also arrived first."""
    table, workers = _pick(_one_workload(training_table(frame), "describe_batch"), "workers", workers)
    table = table.sort_values("batch").set_index("batch", drop=False)
    lines = [
        f"{table['workload'].iloc[0]} on {workers} worker(s), target held-out accuracy "
        f"{table['target_accuracy'].iloc[0]:g}, learning rate (lr) scaled with the global batch:"
    ]
    lines += [_row_words(r, f"batch {r.batch} (lr {format_number(r.lr)})") for r in table.itertuples()]
    lines.append(f"Answer: {_soonest(table, 'batch')}")
    fast = table.dropna(subset=["epoch_s"])
    full = table[table["reached"] == table["runs"]]
    if len(fast) > 1 and not full.empty:
        quick, soon = fast.loc[fast["epoch_s"].idxmin()], full.loc[full["ttt_s"].idxmin()]
        if quick.batch != soon.batch:
            needed = (
                f"needed {format_number(quick.epochs)} epochs"
                if quick.reached
                else f"did not reach the target in {quick.runs - quick.reached} run(s)"
            )
            lines.append(
                f"Epochs are not the measure: batch {quick.batch} ran the fastest epochs "
                f"({format_number(quick.epoch_s)} s) but {needed}, against {format_number(soon.epochs)} for batch "
                f"{soon.batch}, whose median time to target was lower (medians; see the answer for what the intervals say)."
            )
    return "\n".join(lines)


def _ratio_words(before: list[float], after: list[float], what: str, faster: str, slower: str) -> str:
    """``what`` and the speed ratio of ``before``'s runs over ``after``'s in words (:func:`ratio_words`)."""
    if not before or not after:
        return f"{what}: not measured on both sides"
    est = ratio_estimate(np.asarray(before), np.asarray(after))
    return f"{what}: {ratio_words(est, words=(faster, slower), label='speed ratio', invert=True)}"


@trusted
def describe_workers(frame: pd.DataFrame, batch: int | None = None) -> str:
    """Time per epoch and time to target against the worker count at one global batch
    (default: the largest measured), each as a ratio to the fewest workers with its interval."""
    table, batch = _pick(_one_workload(training_table(frame), "describe_workers"), "batch", batch)
    table = table.sort_values("workers")
    lines = [f"{table['workload'].iloc[0]}, global batch {batch} (lr {format_number(table['lr'].iloc[0])}):"]
    lines += [_row_words(r, f"{r.workers} worker(s)") for r in table.itertuples()]
    base = table.iloc[0]
    for r in table.iloc[1:].itertuples():
        epoch = _ratio_words(base.epoch_runs, r.epoch_runs, "epochs ran", "as fast", "slower")
        if r.reached == r.runs and base.reached == base.runs:
            ttt = _ratio_words(base.ttt_runs, r.ttt_runs, "the target came", "sooner", "later")
        else:
            ttt = "time to target not compared: " + (
                f"{r.workers} worker(s) {reached_words(r.reached, r.runs)}"
                if r.reached < r.runs
                else f"{base.workers} worker(s) {reached_words(base.reached, base.runs)}"
            )
        lines.append(f"Answer for {r.workers} worker(s) against {base.workers}: {epoch}; {ttt}.")
    if len(table) == 1:
        lines.append("Answer: one worker count measured: no comparison.")
    return "\n".join(lines)


def _bytes(value: float) -> str:
    return "not measured" if math.isnan(value) else format_number(value)


@trusted
def describe_frameworks(torch_frame: pd.DataFrame | None, numpy_frame: pd.DataFrame) -> str:
    """PyTorch (gloo all-reduce) against NumPy SGD through the client at the points both measured:
    how many times sooner one reached the target, with its interval. ``torch_frame`` None: not measured."""
    np_table = _one_workload(training_table(numpy_frame), "numpy_frame").set_index(["workers", "batch"])
    if torch_frame is None:
        return f"PyTorch vs NumPy: PyTorch not measured ({SKIPPED})."
    t_table = _one_workload(training_table(torch_frame), "torch_frame").set_index(["workers", "batch"])
    common = [k for k in t_table.index if k in np_table.index]
    if not common:
        return "PyTorch vs NumPy: no (workers, batch) point measured by both: no comparison."
    lines = []
    for workers, batch in common:
        t, n = t_table.loc[(workers, batch)], np_table.loc[(workers, batch)]
        head = f"{workers} worker(s), batch {batch}"
        if t.reached < t.runs or n.reached < n.runs:
            lines.append(
                f"{head}: not compared: PyTorch {reached_words(t.reached, t.runs)}, NumPy {reached_words(n.reached, n.runs)}."
            )
            continue
        words = _ratio_words(
            n.ttt_runs, t.ttt_runs, "PyTorch reached the target", "sooner than NumPy", "later than NumPy"
        )
        lines.append(
            f"{head}: {words} (medians {format_number(t.ttt_s)} s vs {format_number(n.ttt_s)} s; "
            f"bytes each rank sent per step to combine gradients: {_bytes(t.bytes_allreduced_per_step)} vs "
            f"{_bytes(n.bytes_allreduced_per_step)})."
        )
    return "\n".join(lines)
