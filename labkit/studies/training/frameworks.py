"""Frameworks side by side: time per step and to the target against workers, and the scaling efficiency.

The scaling efficiency of N workers against one is ``T1 / (N · TN)``, the definition the anchor
uses: ``T1`` the median time on the fewest workers (one, where measured), ``TN`` the median on N
times as many, both at one global batch, so that 100% means N workers took 1/N of the time.
It is computed for the time per step and, where every run on both sides reached the target,
for the time to the target, each with the 95% interval of the ratio of medians
(:func:`~labkit.analysis.intervals.ratio_estimate`) divided by N. A direction (faster, slower,
sooner, later) is only ever said by :func:`~labkit.analysis.claims.ratio_words`, from the
trials :func:`~labkit.analysis.trust.trusted` admits. The anchor's figures come from another
setting (128 GPUs, other models); no comparison with them is claimed.

>>> efficiency_words(Estimate(0.45, 0.4, 0.5))
'45% (40–50%)'
>>> efficiency_words(Estimate(float("nan"), float("nan"), float("nan"), "not measured: the target was not reached"))
'not measured (the target was not reached)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import reached_words
from labkit.analysis.intervals import Estimate, percent, ratio_estimate, show
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError, ParameterError

from .analysis import _one_workload, _ratio_words, training_table

if TYPE_CHECKING:
    import pandas as pd

ANCHOR = (
    "Horovod's paper (Sergeev and Del Balso, 2018) reports a scaling efficiency T1/(N·TN) of about 90% "
    "for Inception V3 and ResNet-101 and 68% for VGG-16 on 128 GPUs"
)
DEFINITION = (
    "scaling efficiency T1/(N·TN): the median time on the fewest workers over N times the median on N times "
    "as many, at one global batch (100%: N workers take 1/N of the time)"
)
Frames = Mapping[str, "pd.DataFrame | str | None"]


def efficiency_words(est: Estimate) -> str:
    """An efficiency and its interval in words, or why it was not measured."""
    if math.isnan(est.value):
        return f"not measured ({est.note.removeprefix('not measured: ')})"
    return percent(est.value, est.lo, est.hi)


def _efficiency(base: list[float], runs: list[float], n: float, why: str = "") -> Estimate:
    """``T1 / (n · TN)`` from the runs on the fewest workers and on ``n`` times as many."""
    if why or not base or not runs:
        return Estimate(math.nan, math.nan, math.nan, f"not measured: {why or 'no runs on one side'}")
    value, lo, hi, note = ratio_estimate(np.asarray(base), np.asarray(runs))
    return Estimate(value / n, lo / n, hi / n, note)


def _at_batch(frame: pd.DataFrame, batch: int | None, label: str) -> pd.DataFrame:
    table = _one_workload(training_table(frame), label).sort_values("workers")
    values = sorted(int(b) for b in table["batch"].dropna().unique())
    batch = values[-1] if batch is None else batch
    if batch not in values:
        raise ParameterError("batch", batch, f"a global batch {label} measured: {values}")
    return table[table["batch"] == batch].reset_index(drop=True)


def _reached_all(r: Any) -> bool:
    return r.reached == r.runs


def _rows(label: str, table: pd.DataFrame) -> list[dict[str, Any]]:
    base, rows = table.iloc[0], []
    for r in table.itertuples():
        n = r.workers / base.workers
        why = "" if _reached_all(r) and _reached_all(base) else "the target was not reached in every run"
        first = r.workers == base.workers
        one = Estimate(1.0, math.nan, math.nan, "baseline: 100% by definition")
        step = one if first else _efficiency(base.step_runs, r.step_runs, n)
        ttt = one if first and not why else _efficiency(base.ttt_runs, r.ttt_runs, n, why)
        rows.append(
            {
                "framework": label,
                **{k: getattr(r, k) for k in ("workload", "workers", "batch", "runs", "reached")},
                **{k: getattr(r, k) for k in ("step_s", "step_lo", "step_hi", "ttt_s", "ttt_lo", "ttt_hi")},
                **dict(zip(("eff_step", "eff_step_lo", "eff_step_hi", "eff_step_note"), step)),
                **dict(zip(("eff_ttt", "eff_ttt_lo", "eff_ttt_hi", "eff_ttt_note"), ttt)),
                "step_runs": r.step_runs,
                "ttt_runs": r.ttt_runs,
            }
        )
    return rows


def efficiency_table(frames: Frames, batch: int | None = None) -> pd.DataFrame:
    """One row per framework and worker count at one global ``batch`` (default: each framework's
    largest): the median time per step and to the target with their intervals, and the scaling
    efficiency of each against the fewest workers (``eff_step``, ``eff_ttt``, with ``_lo``/``_hi``
    and a ``_note`` where there is no interval). ``frames`` maps a framework's name to its trials;
    one that is None or a string (why it was not measured) has no rows."""
    import pandas as pd

    rows = []
    for label, frame in frames.items():
        if frame is None or isinstance(frame, str) or frame.empty:
            continue
        rows += _rows(label, _at_batch(frame, batch, label))
    if not rows:
        raise DataError("no framework's trials", "needs the trials of at least one framework")
    return pd.DataFrame(rows)


def _framework_lines(label: str, table: pd.DataFrame) -> list[str]:
    lines = []
    for r in table.itertuples():
        text = f"{label} ({r.workload}), {r.workers} worker(s): median time per step {show(r.step_s, r.step_lo, r.step_hi, suffix=' s')}"
        text += f"; {reached_words(r.reached, r.runs)}"
        if r.reached:
            text += f", median time to target {show(r.ttt_s, r.ttt_lo, r.ttt_hi, suffix=' s')}"
        lines.append(text + ".")
    base = table.iloc[0]
    for r in table.iloc[1:].itertuples():
        steps = _ratio_words(base.step_runs, r.step_runs, "steps ran", "faster", "slower")
        if _reached_all(r) and _reached_all(base):
            ttt = _ratio_words(base.ttt_runs, r.ttt_runs, "the target came", "sooner", "later")
        else:
            ttt = "time to target not compared: not every run reached the target"
        step_eff = efficiency_words(Estimate(r.eff_step, r.eff_step_lo, r.eff_step_hi, r.eff_step_note))
        ttt_eff = efficiency_words(Estimate(r.eff_ttt, r.eff_ttt_lo, r.eff_ttt_hi, r.eff_ttt_note))
        lines.append(
            f"{label}, {r.workers} workers against {base.workers}: {steps}; {ttt}; scaling efficiency "
            f"of a step {step_eff}, of the time to target {ttt_eff}."
        )
    if len(table) == 1:
        lines.append(f"{label}: one worker count measured: no scaling efficiency.")
    return lines


def _versus(a: str, ta: pd.DataFrame, b: str, tb: pd.DataFrame) -> list[str]:
    """``b`` against ``a`` at every worker count both measured."""
    lines = []
    for w in sorted(set(ta["workers"]) & set(tb["workers"])):
        ra, rb = ta[ta["workers"] == w].iloc[0], tb[tb["workers"] == w].iloc[0]
        steps = _ratio_words(ra.step_runs, rb.step_runs, f"{b}'s steps ran", f"faster than {a}'s", f"slower than {a}'s")
        if _reached_all(ra) and _reached_all(rb):
            ttt = _ratio_words(
                ra.ttt_runs, rb.ttt_runs, f"{b} reached the target", f"sooner than {a}", f"later than {a}"
            )
        else:
            ttt = f"time to target not compared: {a} {reached_words(ra.reached, ra.runs)}, {b} {reached_words(rb.reached, rb.runs)}"
        lines.append(f"{w} worker(s), {b} against {a}: {steps}; {ttt}.")
    return lines or [f"{b} against {a}: no worker count measured by both: no comparison."]


@trusted
def describe_efficiency(frames: Frames, batch: int | None = None) -> str:
    """Per framework, at one global batch: time per step and to the target at each worker count,
    more workers against the fewest (ratios and the scaling efficiency, with their intervals),
    then each later framework against the first at the worker counts both measured. ``frames``
    maps a framework's name to its trials, or to why it was not measured (a string)."""
    lines = [f"The {DEFINITION}. The anchor: {ANCHOR}; it comes from another setting, and is not compared here."]
    measured = {}
    for label, frame in frames.items():
        if frame is None or isinstance(frame, str):
            lines.append(f"{label}: not measured ({frame or 'no trials'}).")
        elif frame.empty:
            lines.append(f"{label}: no trial left to claim from (see the trials note).")
        else:
            measured[label] = frame
    if measured:
        table = efficiency_table(measured, batch)
        tables = {k: g.reset_index(drop=True) for k, g in table.groupby("framework", sort=False)}
        for label, t in tables.items():
            lines += _framework_lines(label, t)
        (first, ta), *rest = tables.items()
        for label, t in rest:
            lines += _versus(first, ta, label, t)
    return "\n".join(lines)
