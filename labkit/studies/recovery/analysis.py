"""What losing a worker cost: faulty runs' time against clean ones, what Dask recomputed, whether the result held.

The runs are the trials of :func:`labkit.studies.recovery.run.recomputation` (a trials
frame): one row per run, ``fault`` False (clean) or True (a worker was SIGKILLed ``kill_s``
seconds into it; None where the run ended before the kill came), its ``wall_s``, its
``result`` (the sum the run computed), and what the scheduler's task stream showed was
computed more than once (:func:`recomputed`): ``recomputed_tasks``, ``recomputed_bytes``
(``nbytes`` of those results) and ``recomputed_compute_s``.

The time of a faulty run against a clean one is a ratio of medians with its 95% bootstrap
interval (:func:`~labkit.analysis.intervals.ratio_estimate`); it is called slower or faster
only when that interval excludes 1, and with fewer than 5 runs a side it is an estimate
with no interval. Work a killed worker was in the middle of is not in the counts: the task
stream records finished tasks only.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.frames import require
from labkit.analysis.intervals import Estimate, ratio_estimate
from labkit.analysis.trust import load_flags
from labkit.common.conclusion import Conclusion
from labkit.common.errors import DataError
from labkit.common.format import format_number
from labkit.measure.alerts import AlertRules

if TYPE_CHECKING:
    import pandas as pd

RECOMPUTED = ("recomputed_tasks", "recomputed_bytes", "recomputed_compute_s")
"""What :func:`recomputed` measures besides ``tasks``."""
COLUMNS = (
    "fault",
    "status",
    "wall_s",
    "kill_s",
    "result",
    "recomputed_tasks",
    "recomputed_bytes",
    "recomputed_compute_s",
)
RESULT_RTOL = 1e-12
"""Relative difference within which two runs' sums are the same result."""
_MiB = 2**20


def recomputed(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What a task stream (``distributed.get_task_stream().data``) shows was computed more
    than once: every finish of a key after its first, counted, with its result's bytes and
    its compute seconds; ``tasks`` counts every finish.

    >>> r = [{"key": "a", "status": "OK", "nbytes": 8, "startstops": ({"action": "compute", "start": 0, "stop": 2},)}]
    >>> recomputed(r + r)
    {'tasks': 2, 'recomputed_tasks': 1, 'recomputed_bytes': 8, 'recomputed_compute_s': 2.0}
    """
    seen: Counter[Any] = Counter()
    out = {"tasks": 0, "recomputed_tasks": 0, "recomputed_bytes": 0, "recomputed_compute_s": 0.0}
    for r in records:
        if r.get("status", "OK") != "OK":
            continue
        out["tasks"] += 1
        seen[r["key"]] += 1
        if seen[r["key"]] > 1:
            out["recomputed_tasks"] += 1
            out["recomputed_bytes"] += int(r.get("nbytes") or 0)
            out["recomputed_compute_s"] += sum(
                float(s["stop"] - s["start"]) for s in r.get("startstops", ()) if s.get("action") == "compute"
            )
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _under_load(outside: float, steal: float, resolution: float) -> bool | None:
    """Above :class:`~labkit.measure.alerts.AlertRules`' thresholds, as a sweep's trials are
    flagged; None where the outside CPU was not measured and steal was not above its own."""
    o, st, res = (None if _missing(v) else float(v) for v in (outside, steal, resolution))
    return AlertRules().load_flag(o, st, res)


def recovery_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run, in the order they ran, for reading and drawing.

    Parameters
    ----------
    frame : DataFrame
        The trials of a ``recomputation`` run.

    Returns
    -------
    DataFrame
        ``run`` (1, 2, … in order), ``kind`` ("clean", "faulty", or "faulty, kill missed"
        where the run ended before the kill came), ``wall_s``, ``kill_s``, ``tasks`` and the
        three ``recomputed_*`` figures, ``result`` and ``same_result`` (equal to the first
        clean run's sum within :data:`RESULT_RTOL`; None without a clean run to compare with),
        ``outside_cpu_percent`` and ``steal_percent`` on this machine during the timed run, and
        ``under_load`` (above the thresholds of ``AlertRules``; None: not measured).
    """
    import pandas as pd

    require(frame, COLUMNS)
    if frame.empty:
        raise DataError("no trials", "needs the trials of labkit.studies.recovery.run.recomputation")
    runs = frame.sort_values("trial_id" if "trial_id" in frame else "started_at").reset_index(drop=True)
    fault = runs["fault"].astype(bool)
    kind = np.where(~fault, "clean", np.where(runs["kill_s"].map(_missing), "faulty, kill missed", "faulty"))
    clean = runs.loc[~fault, "result"].dropna()
    ref = float(clean.iloc[0]) if len(clean) else None
    same = [
        None if ref is None or _missing(v) else math.isclose(float(v), ref, rel_tol=RESULT_RTOL, abs_tol=0.0)
        for v in runs["result"]
    ]
    load = ["outside_cpu_percent", "steal_percent", "outside_resolution_percent"]
    columns = ["wall_s", "kill_s", "tasks", *RECOMPUTED, "result", *load]
    out = pd.DataFrame({"run": np.arange(1, len(runs) + 1), "kind": kind, "status": runs["status"]})
    for c in columns:
        out[c] = runs[c].astype(float) if c in runs else np.nan
    out["same_result"] = same
    out["under_load"] = [_under_load(*v) for v in zip(*(out[c] for c in load))]
    return out


def time_ratio(frame: pd.DataFrame) -> Estimate:
    """Median time of the runs that lost a worker over that of the clean runs, with its 95%
    interval (NaN, and why, with fewer than 5 runs a side); NaN without both kinds. Runs under
    outside load (:func:`~labkit.analysis.trust.load_flags`) are left out: they carry no direction."""
    runs = recovery_runs(frame)
    runs = runs[[f is not True for f in load_flags(runs)]]
    faulty = runs.loc[runs["kind"].eq("faulty"), "wall_s"].dropna().to_numpy(float)
    clean = runs.loc[runs["kind"].eq("clean"), "wall_s"].dropna().to_numpy(float)
    if not len(faulty) or not len(clean):
        return Estimate(math.nan, math.nan, math.nan, "not measured: no run of one of the two kinds")
    return ratio_estimate(faulty, clean)


def _values(series: pd.Series, fmt: Any) -> str:
    return ", ".join(fmt(v) for v in series)


def describe_recovery(frame: pd.DataFrame) -> str:
    """What losing a worker mid-run cost, in words: time against clean runs, what was
    recomputed in each run, and whether every run gave the clean runs' result."""
    runs = recovery_runs(frame)
    clean, faulty = runs[runs["kind"].eq("clean")], runs[runs["kind"].eq("faulty")]
    missed = runs[runs["kind"].eq("faulty, kill missed")]
    lines = []
    if len(clean):
        lines.append(f"Clean runs: median {format_number(clean['wall_s'].median())} s over {len(clean)} runs.")
    if len(faulty):
        lines.append(
            f"Runs that lost a worker (SIGKILL a median {format_number(faulty['kill_s'].median())} s in; "
            f"its nanny started it again): median {format_number(faulty['wall_s'].median())} s over {len(faulty)} runs."
        )
    if len(missed):
        many = len(missed) > 1
        lines.append(
            f"{len(missed)} faulty run{'s' if many else ''} ended before the kill came and "
            f"{'are' if many else 'is'} left out of the comparison."
        )
    r = time_ratio(frame)
    lines.append(
        "Median time of the faulty runs: " + ratio_words(r, "the clean runs' median", ("slower", "faster")) + "."
    )
    for name, rows in (("faulty", faulty), ("clean", clean)):
        if len(rows):
            lines.append(
                f"Recomputed per {name} run (tasks that finished more than once, from the scheduler's task stream): "
                f"tasks {_values(rows['recomputed_tasks'], lambda v: str(int(v)))}; "
                f"MiB {_values(rows['recomputed_bytes'], lambda v: format_number(v / _MiB))}; "
                f"compute s {_values(rows['recomputed_compute_s'], format_number)}."
            )
    if len(faulty):
        lines.append(
            "Not counted: the work the killed worker was in the middle of (the task stream holds finished tasks)."
        )
    lines.append(_load_words(runs))
    checked = runs[runs["same_result"].notna()]
    if checked.empty:
        lines.append("Result: not checked (no clean run to compare with).")
    elif checked["same_result"].astype(bool).all():
        lines.append(
            f"Result: all {len(checked)} runs gave the first clean run's sum ({float(clean['result'].iloc[0]):.15g})."
        )
    else:
        bad = checked[~checked["same_result"].astype(bool)]
        which = f"run{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad['run']))}"
        lines.append(f"Result: {which} gave another sum than the first clean run's.")
    return Conclusion(lines)


def _load_words(runs: pd.DataFrame) -> str:
    rules, loaded = AlertRules(), runs[runs["under_load"].eq(True)]
    text = (
        f"Outside load (other processes above {rules.outside_cpu_percent:g}% of a core, or steal above "
        f"{rules.steal_percent:g}%, during the timed run): "
    )
    if len(loaded):
        text += f"run{'s' if len(loaded) > 1 else ''} {', '.join(map(str, loaded['run']))} ran under it, and "
        text += "are left out of the time comparison (their times include that outside work)"
    else:
        text += "no run was measured above it"
    unknown = int(runs["under_load"].isna().sum())
    if unknown:
        text += f"; outside load not measured in {unknown} (a worker's process changed during the run, as when one is killed)"
    return text + "."


def describe_resume(interrupted: dict[str, Any], reused: int, measured: int) -> str:
    """An interrupted sweep and its resumption, in words.

    Parameters
    ----------
    interrupted : dict
        What :func:`labkit.studies.recovery.interrupt.interrupted_sweep` returned: ``at_interrupt``,
        ``after`` and ``lost`` (trial ids), ``status`` (of the interrupted run), ``interrupts``
        (SIGINTs sent), ``planned`` trials.
    reused, measured : int
        ``Results.reused`` and ``Results.measured_now`` of the sweep run again.

    >>> facts = {"at_interrupt": [1, 2, 3], "after": [1, 2, 3], "lost": [], "status": "interrupted", "planned": 8}
    >>> print(describe_resume(facts, 3, 5))
    The first run stored 3 of 8 trials before SIGINT; the store marks it 'interrupted'. Of those 3 trials, 0 were lost.
    Run again, the sweep reused 3 trials and measured 5 now: only the trials not yet stored.
    """
    at, lost, planned = len(interrupted["at_interrupt"]), len(interrupted["lost"]), interrupted["planned"]
    status, late = interrupted["status"], len(set(interrupted["after"]) - set(interrupted["at_interrupt"]))
    sent = interrupted.get("interrupts", 1)
    again = "" if sent <= 1 else f" (sent {sent} times: the first did not stop the sweep)"
    first = (
        f"The first run stored {at} of {planned} trials before SIGINT{again}; "
        + ("the store has no status for it" if status is None else f"the store marks it {status!r}")
        + f". Of those {at} trials, {lost} were lost"
        + (f"; {late} more {'was' if late == 1 else 'were'} stored after the first SIGINT." if late else ".")
    )
    kept = len(interrupted["after"])
    rest = "only the trials not yet stored" if reused + measured == planned and reused >= kept else ""
    second = f"Run again, the sweep reused {reused} trials and measured {measured} now"
    return first + "\n" + second + (f": {rest}." if rest else f", of {planned} planned.")
