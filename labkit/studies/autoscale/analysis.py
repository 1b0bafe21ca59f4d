"""Bursty load on fixed and adaptive clusters: latency percentiles, worker-seconds and the claims they allow.

The input is one record per run (see :func:`run_frames`): the arrival schedule and what
each task reported (submit, start and end times, its worker) and the scheduler's state
sampled over the run (workers, and tasks not finished). From those:

- **Latency** of a task is its end minus its submission. Its percentiles (p50, p95, p99)
  pool the tasks of a configuration; their 95% intervals come from a bootstrap over
  *independent units*, never over single tasks, whose latencies within a wave queue behind
  one another. A unit is a wave when, in every run of that configuration, each wave's
  tasks had finished and the cluster was back at its starting size before the next wave
  arrived; otherwise it is a whole run (:func:`units_table` says which, and why).
- **Worker-seconds** of a run is the integral of the sampled worker count (workers the
  scheduler had registered) from the first arrival to the end of the last task, each
  sample held until the next (:func:`worker_seconds`). Its interval is over runs.
- A ratio between two configurations (of percentiles, or of median worker-seconds) is
  called higher or lower only when its 95% interval excludes 1; where the interval holds 1
  the runs cannot tell, and where there is no interval (fewer than
  :data:`~labkit.analysis.intervals.MIN_REPEATS` units) the figure is labelled an estimate.
- Runs that ran under outside load (``under_load``) are left out of the comparisons and of
  the answer (:func:`~labkit.analysis.trust.admit`, :func:`admitted_runs`), which says how
  many were; a run whose load was not measured is kept, and the answer says so.

>>> worker_seconds([0.0, 1.0, 2.0], [1, 3, 1], 0.0, 2.5)
4.5
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis import intervals as iv
from labkit.analysis.claims import ratio_words
from labkit.analysis.intervals import figures
from labkit.analysis.trust import Admitted, _nothing_left, admit, footer
from labkit.common import checks
from labkit.common.conclusion import Conclusion
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number

from .percentiles import percentile_estimate, percentile_ratio

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
_TASK_COLUMNS = ("task", "wave", "offset_s", "submit_s", "start_s", "end_s", "worker")
_SAMPLE_COLUMNS = ("t_s", "workers", "asked", "queued", "processing")
LATE_S = 0.05
"""Submissions later than this behind the schedule are reported."""


def wave_schedule(waves: int, tasks_per_wave: int, burst_s: float, gap_s: float, seed: int = 0) -> pd.DataFrame:
    """The arrival schedule: one row per task with its ``wave`` and ``offset_s`` (seconds after the start).

    Wave ``k`` starts at ``k * (burst_s + gap_s)``; its arrivals are drawn uniformly within
    the next ``burst_s`` seconds from ``numpy.random.default_rng(seed)``, so at least
    ``gap_s`` seconds pass between a wave's last arrival and the next wave's first.

    >>> s = wave_schedule(2, 3, 1.0, 4.0)
    >>> s.groupby("wave").size().tolist(), bool(s["offset_s"].iloc[3] >= 5.0)
    ([3, 3], True)
    """
    import pandas as pd

    waves, tasks_per_wave = checks.count("waves", waves), checks.count("tasks_per_wave", tasks_per_wave)
    burst_s, gap_s = checks.seconds("burst_s", burst_s, zero=True), checks.seconds("gap_s", gap_s, zero=True)
    rng = np.random.default_rng(checks.count("seed", seed, least=0))
    offsets = [k * (burst_s + gap_s) + np.sort(rng.uniform(0.0, burst_s, tasks_per_wave)) for k in range(waves)]
    wave = np.repeat(np.arange(waves), tasks_per_wave)
    return pd.DataFrame({"task": np.arange(wave.size), "wave": wave, "offset_s": np.concatenate(offsets)})


def check_name(name: Any) -> str:
    """``name``, or a ParameterError unless it is a non-empty, printable experiment name."""
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise ParameterError("experiment", name, "a non-empty, printable name")
    return name


def worker_seconds(t: Any, workers: Any, start: float, end: float) -> float:
    """The integral of a sampled worker count over ``[start, end]``, each sample held until the next.

    Parameters
    ----------
    t : array-like
        Sample times (seconds, increasing); the first at or before ``start``.
    workers : array-like
        The worker count at each sample.
    start, end : float
        The window.

    Returns
    -------
    float
        Worker-seconds; a change of the count between two samples is placed at the later
        one, so each change is known only to within one sampling step. NaN (not measured)
        where a count is NaN.
    """
    t, n = np.asarray(t, float), np.asarray(workers, float)
    if t.size == 0 or t.size != n.size or not end >= start:
        raise ParameterError("samples", t.size, "one count per time, and end >= start")
    if t[0] > start:
        raise ParameterError("start", start, f"a time at or after the first sample ({t[0]:g})")
    edges = np.clip(np.append(t, max(end, t[-1])), start, end)
    return math.nan if np.isnan(n).any() else float(np.sum(n * np.diff(edges)))


def run_frames(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(tasks, samples, runs)``: tidy frames from the runs' records.

    A record holds ``config``, ``kind`` (``"fixed"`` or ``"adaptive"``), ``rank`` (the
    configuration's place in tables), ``repeat``, ``position`` (its place in its round),
    ``t0`` (epoch seconds of the schedule's zero), ``end_s`` (the last task's end),
    ``load`` (the 1-minute load average at its start), optionally ``under_load`` (outside
    load over the run: True, False, or None or absent where not measured), ``tasks`` (lists of
    ``task, wave, offset_s, submit_s, start_s, end_s, worker``, times in seconds after
    ``t0``) and ``samples`` (lists of ``t_s, workers, asked, queued, processing``).
    """
    import pandas as pd

    if not records:
        raise ParameterError("records", records, "at least one run")
    tasks, samples, runs = [], [], []
    for rec in records:
        keys = {"config": rec["config"], "repeat": int(rec["repeat"])}
        tf = pd.DataFrame({c: rec["tasks"][c] for c in _TASK_COLUMNS}).assign(**keys)
        sf = pd.DataFrame({c: rec["samples"][c] for c in _SAMPLE_COLUMNS}, dtype=float).assign(**keys)
        tasks.append(tf)
        samples.append(sf)
        step = np.diff(sf["t_s"].to_numpy())
        runs.append(
            {
                **keys,
                **{k: rec[k] for k in ("kind", "rank", "position", "t0", "load")},
                "under_load": rec.get("under_load"),
                "duration_s": float(rec["end_s"]),
                "worker_seconds": worker_seconds(sf["t_s"], sf["workers"], 0.0, rec["end_s"]),
                "asked_worker_seconds": worker_seconds(sf["t_s"], sf["asked"], 0.0, rec["end_s"]),
                "sample_step_s": float(np.median(step)) if step.size else math.nan,
                "fewest_workers": int(sf["workers"].min()),
                "peak_workers": int(sf["workers"].max()),
                "tasks": len(tf),
                "late_s": float((tf["submit_s"] - tf["offset_s"]).max()),
            }
        )
    t = pd.concat(tasks, ignore_index=True)
    t["latency_s"] = t["end_s"] - t["submit_s"]
    t["wait_s"] = t["start_s"] - t["submit_s"]
    order = ["config", "repeat", *_TASK_COLUMNS, "latency_s", "wait_s"]
    return t[order], pd.concat(samples, ignore_index=True), pd.DataFrame(runs).sort_values(["rank", "repeat"])


def _configs(runs: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(runs.sort_values(["rank", "repeat"])["config"]))


def admitted_runs(
    tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, Admitted]:
    """The frames less the runs that ran under outside load (:func:`~labkit.analysis.trust.admit`),
    and what was left out: every claimed direction comes from these runs."""
    a = admit(runs)
    keys = set(zip(a.frame["config"], a.frame["repeat"]))

    def keep(f: pd.DataFrame) -> pd.DataFrame:
        return f[[k in keys for k in zip(f["config"], f["repeat"])]]

    return keep(tasks), keep(samples), a.frame, a


def units_table(tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration, the unit its latency intervals resample: ``"wave"`` or ``"run"``, and why.

    Waves are independent units when in every run each wave's tasks had all ended, and the
    sampled worker count was back at the run's first sample, when the next wave's first
    task was submitted.
    """
    import pandas as pd

    rows = []
    for config in _configs(runs):
        g = tasks[tasks["config"] == config]
        by_run = dict(tuple(samples[samples["config"] == config].groupby("repeat")))
        reason = next((why for r, run in g.groupby("repeat") if (why := _carried_over(run, by_run[r]))), "")
        count = g.groupby(["repeat"] if reason else ["repeat", "wave"]).ngroups
        rows.append({"config": config, "unit": "run" if reason else "wave", "units": count})
        rows[-1]["reason"] = reason or "waves were independent"
    return pd.DataFrame(rows)


def _carried_over(run: pd.DataFrame, s: pd.DataFrame) -> str:
    """Why a run's waves are not independent (work or workers carried into the next wave), or ``""``."""
    waves = run.groupby("wave").agg(first=("submit_s", "min"), last_end=("end_s", "max")).sort_index()
    repeat = run["repeat"].iloc[0]
    for wave, last_end, next_first in zip(waves.index[:-1], waves["last_end"].iloc[:-1], waves["first"].iloc[1:]):
        before = s.loc[s["t_s"] <= next_first, "workers"]
        if last_end > next_first:
            return f"in run {repeat}, wave {wave}'s tasks were still running when wave {wave + 1} arrived"
        if len(before) and before.iloc[-1] != s["workers"].iloc[0]:
            return (
                f"in run {repeat}, the cluster had {before.iloc[-1]:.0f} workers, not its starting "
                f"{s['workers'].iloc[0]:.0f}, when wave {wave + 1} arrived"
            )
    return ""


def _blocks(tasks: pd.DataFrame, config: str, unit: str) -> list[np.ndarray]:
    g = tasks[tasks["config"] == config]
    keys = ["repeat"] if unit == "run" else ["repeat", "wave"]
    return [b["latency_s"].to_numpy(float) for _, b in g.groupby(keys)]


def latency_table(tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and percentile: latency (s) with its 95% interval, the unit and count resampled."""
    import pandas as pd

    units = units_table(tasks, samples, runs).set_index("config")
    rows = []
    for config in _configs(runs):
        unit = units.loc[config, "unit"]
        blocks = _blocks(tasks, config, unit)
        for name, q in QUANTILES.items():
            e = percentile_estimate(blocks, q, unit)
            rows.append(
                {"config": config, "quantile": name, "latency_s": e.value, "lo_s": e.lo, "hi_s": e.hi, "note": e.note}
                | {"unit": unit, "units": len(blocks), "tasks": int(sum(b.size for b in blocks))}
            )
    return pd.DataFrame(rows)


def worker_seconds_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: median worker-seconds over runs with its 95% interval, and the sampling step."""
    import pandas as pd

    rows = []
    for config in _configs(runs):
        g = runs[runs["config"] == config]
        e = iv.median_estimate(g["worker_seconds"].to_numpy(float))
        rows.append(
            {"config": config, "worker_seconds": e.value, "lo": e.lo, "hi": e.hi, "note": e.note, "runs": len(g)}
            | {"per_run": g["worker_seconds"].round(3).tolist(), "sample_step_s": float(g["sample_step_s"].median())}
        )
    return pd.DataFrame(rows)


def comparisons(tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Ratios between configurations, each with its interval and direction.

    The ratio ``a / b`` of each latency percentile and of median worker-seconds, for the
    adaptive configuration ``a`` against each fixed one ``b``, and the largest fixed one
    against the smallest; ``direction`` is ``'up'`` or ``'down'`` only where the interval
    excludes 1. Runs that ran under outside load are left out (:func:`admitted_runs`); a
    configuration with no run left is in no row.
    """
    import pandas as pd

    tasks, samples, runs, _ = admitted_runs(tasks, samples, runs)
    columns = ["a", "b", "measure", "value", "lo", "hi", "note"]
    if runs.empty:
        return pd.DataFrame(columns=[*columns, "direction"]).rename(columns={"value": "ratio"})
    units = units_table(tasks, samples, runs).set_index("config")
    configs = _configs(runs)
    kinds = runs.groupby("config")["kind"].first()
    adaptive = [c for c in configs if kinds[c] == "adaptive"]
    fixed = [c for c in configs if kinds[c] == "fixed"]
    pairs = [(a, b) for a in adaptive for b in fixed] + ([(fixed[-1], fixed[0])] if len(fixed) > 1 else [])
    rows = []
    for a, b in pairs:
        ua, ub = units.loc[a, "unit"], units.loc[b, "unit"]
        for name, q in QUANTILES.items():
            e = percentile_ratio(_blocks(tasks, a, ua), _blocks(tasks, b, ub), q, (ua, ub))
            rows.append({"a": a, "b": b, "measure": f"{name} latency", **e._asdict()})
        wa, wb = (runs.loc[runs["config"] == c, "worker_seconds"].to_numpy(float) for c in (a, b))
        rows.append({"a": a, "b": b, "measure": "worker-seconds", **iv.ratio_estimate(wa, wb)._asdict()})
    out = pd.DataFrame(rows, columns=columns).rename(columns={"value": "ratio"})
    out["direction"] = [iv.direction(lo, hi) for lo, hi in zip(out["lo"], out["hi"])]
    return out


def claim(row: Any) -> str:
    """One comparison in words: a direction only where the interval excludes 1 (:func:`ratio_words`).

    >>> claim({"a": "adaptive-1-4", "b": "fixed-4", "measure": "p95 latency", "ratio": 2.0, "lo": 1.5, "hi": 2.6, "note": ""})
    "adaptive-1-4's p95 latency was 2× fixed-4's (95% interval 1.5–2.6×): higher"
    >>> claim({"a": "adaptive-1-4", "b": "fixed-4", "measure": "p95 latency", "ratio": 1.1, "lo": 0.9, "hi": 1.3, "note": ""})
    "adaptive-1-4's p95 latency was 1.1× fixed-4's (95% interval 0.9–1.3×, which holds 1): the runs cannot tell; more waves or repeats would narrow it"
    """
    est = iv.Estimate(*(row[k] for k in ("ratio", "lo", "hi", "note")))
    verb = "were" if row["measure"].endswith("s") else "was"
    said = ratio_words(est, f"{row['b']}'s", ("higher", "lower"), narrow="more waves or repeats")
    return f"{row['a']}'s {row['measure']} {verb} {said}"


def _figure(value: float, lo: float, hi: float, note: str, suffix: str = "") -> str:
    """A figure with its interval, whose ends get the digits it takes to differ, or with why it has none.

    >>> _figure(3.19, 3.1899, 3.1902, "", " s"), _figure(3.19, math.nan, math.nan, "one run")
    ('3.19 s (3.1899–3.1902 s)', '3.19 (one run)')
    """
    if note or math.isnan(lo) or math.isnan(hi):
        return f"{format_number(value)}{suffix} ({note or 'interval not available'})"
    v, a, b = figures(value, lo, hi, "")
    return f"{v}{suffix} ({a}–{b}{suffix})"


def _config_lines(tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Each configuration's latency percentiles and worker-seconds, and the unit its intervals resample."""
    lat = latency_table(tasks, samples, runs)
    ws = worker_seconds_table(runs).set_index("config")
    units = units_table(tasks, samples, runs).set_index("config")
    lines = []
    for config, g in lat.groupby("config", sort=False):
        one = g["note"].iloc[0] if g["note"].nunique() == 1 else ""  # one reason for every percentile
        each = [_figure(r.latency_s, r.lo_s, r.hi_s, r.note, " s") for r in g.itertuples()]
        each = [f"{format_number(v)} s" for v in g["latency_s"]] if one else each
        figures = ", ".join(f"{q} {f}" for q, f in zip(g["quantile"], each)) + (f", estimates ({one})" if one else "")
        w, u = ws.loc[config], units.loc[config]
        lines.append(
            f"{config}: latency {figures}; worker-seconds {_figure(w['worker_seconds'], w['lo'], w['hi'], w['note'])}; "
            f"latency intervals resample {u['units']} {u['unit']}{'s' * int(u['units'] != 1)} ({u['reason']})."
        )
    return lines


def _span(lo: float, hi: float) -> str:
    """A range of figures, its ends in the digits it takes to differ; one figure where they are equal."""
    return format_number(lo) if lo == hi else "–".join(figures(lo, lo, hi, "")[1:])


def describe_autoscaling(tasks: pd.DataFrame, samples: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The answer in words: each configuration's figures, then every comparison, then what to trust.

    Only runs that did not run under outside load (:func:`admitted_runs`) give figures and
    comparisons; the answer ends with what was left out, and where it gives several 95%
    intervals, that they are not adjusted for their number (:func:`~labkit.analysis.trust.footer`).
    """
    step, waves = float(runs["sample_step_s"].median()), int(tasks["wave"].nunique())
    lines = [
        f"{runs['repeat'].nunique()} round(s) of {runs['config'].nunique()} clusters, {waves} waves of "
        f"{len(tasks) // len(runs) // waves} tasks a run; workers sampled every {format_number(step)} s, "
        "so worker-seconds place each change within one step.",
    ]
    kept_tasks, kept_samples, kept, a = admitted_runs(tasks, samples, runs)
    if a.empty:
        return _nothing_left(a)
    lines += _config_lines(kept_tasks, kept_samples, kept)
    for config in [c for c in _configs(runs) if c not in set(kept["config"])]:
        lines.append(f"{config}: every run ran under outside load; left out, and in no comparison.")
    lines += [claim(r) for r in comparisons(kept_tasks, kept_samples, kept).to_dict("records")]
    for r in kept[(kept["kind"] == "fixed") & (kept["fewest_workers"] != kept["peak_workers"])].itertuples():
        lines.append(f"{r.config} run {r.repeat} had {r.fewest_workers}–{r.peak_workers} workers: not one count.")
    if (late := float(kept["late_s"].max())) > LATE_S:
        lines.append(f"Submissions ran up to {format_number(late)} s late; latency counts from each one.")
    lo, hi = runs["load"].min(), runs["load"].max()
    if np.isfinite([lo, hi]).all():
        lines.append(f"1-minute load average of this machine at the runs' starts: {_span(lo, hi)}.")
    return footer("\n".join(lines), a)


def describe_cold_start(frame: pd.DataFrame) -> str:
    """The cold start in words: the median time from asking for one more worker to its first task, with its interval.

    ``frame`` has one row per try: ``from_workers`` (the count before asking),
    ``registered_s`` (until the scheduler listed the new worker) and ``first_task_s`` (until
    a task pinned to it started), both in seconds after asking.
    """
    if len(frame) == 0:
        raise DataError("no tries", "needs at least one cold-start try")
    first, listed = (iv.median_estimate(frame[c].to_numpy(float)) for c in ("first_task_s", "registered_s"))
    return Conclusion.of(
        f"Cold start, from asking for one more worker (from {', '.join(map(str, sorted(set(frame['from_workers']))))}) "
        f"to its first task starting: median {_figure(*first, ' s')} over {len(frame)} tries; until the scheduler "
        f"listed the new worker: median {_figure(*listed, ' s')}. These are worker processes started on this machine; "
        "a cluster that must first get a machine (a cloud VM, a batch job, a pod) adds that wait, not measured here."
    )
