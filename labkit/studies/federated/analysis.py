"""Conclusions about federated training: rounds, wall time and bytes to a target accuracy, IID vs
non-IID, against the number of clients and local epochs.

The trials are those of the ``fedavg`` workload (``Results.frame`` or
``ResultStore.trials_frame()``), each one training run with its ``rounds_to_target``,
``time_to_target_s`` and ``bytes_to_target`` (None where the target was not reached).
:func:`federated_table` gives one row per grid point: the medians of those figures over
its runs, each with its 95% bootstrap interval. A figure to target exists only for a point
whose every run reached the target: where some did not, the row says in how many runs it
was reached and gives no median, for the runs that did not reach it have no such figure.

:func:`compare_table` compares the values of one parameter (``split``, ``clients``,
``local_epochs``...) with a baseline value at equal other parameters, as ratios of
medians with their intervals; :func:`describe_noniid` and :func:`describe_factor` put that
in words, claiming more or fewer rounds, slower or faster, only where the interval
excludes 1, and saying "not available" (and why) with fewer than five runs a side.

>>> ratio_words(Estimate(1.4, 1.2, 1.7), "the rounds", ("more rounds", "fewer rounds"))
'1.4× the rounds (95% interval 1.2–1.7×): more rounds'
>>> ratio_words(Estimate(1.1, 0.9, 1.3), "the time", ("slower", "faster"))
'1.1× the time (95% interval 0.9–1.3×, which holds 1): the runs cannot tell; more repeats would narrow it'
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words, reached_words  # noqa: F401  (the study shows them)
from labkit.analysis.frames import point_params, require, varying
from labkit.analysis.intervals import Estimate, direction, median_estimate, ratio_estimate, show
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number

if TYPE_CHECKING:
    import pandas as pd

MEASURES = ("rounds_to_target", "time_to_target_s", "bytes_to_target")
_SHORT = {"rounds_to_target": "rounds", "time_to_target_s": "time", "bytes_to_target": "bytes"}
_WORDS = {
    "rounds": ("the rounds", ("more rounds", "fewer rounds")),
    "time": ("the wall time", ("slower", "faster")),
    "bytes": ("the bytes", ("more bytes", "fewer bytes")),
}
_NOT_REACHED = "interval not available: not every run reached the target"


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    require(frame, ("point", "status", "workers", "reached_target", *MEASURES))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", "needs at least one successful fedavg trial")
    return ok.assign(**point_params(ok).drop(columns=["workers"], errors="ignore").add_prefix("p_"))


def _median(values: np.ndarray, reached: bool) -> Estimate:
    """The median of a figure to target with its interval; NaN where a run did not reach it."""
    if not reached:
        return Estimate(math.nan, math.nan, math.nan, _NOT_REACHED)
    if np.any(values <= 0):  # the starting weights met the target: no interval of a ratio scale
        return Estimate(float(np.median(values)), math.nan, math.nan, "interval not available: a value of 0")
    return median_estimate(values)


def _ratio(num: np.ndarray, den: np.ndarray, reached: bool) -> Estimate:
    if not reached:
        return Estimate(math.nan, math.nan, math.nan, _NOT_REACHED)
    if np.any(num <= 0) or np.any(den <= 0):
        return Estimate(math.nan, math.nan, math.nan, "not available: a figure to target of 0")
    return ratio_estimate(num, den)


def value_order(value: Any) -> tuple[bool, Any]:
    """Sort key of a parameter's values: numbers in order, then strings.

    >>> sorted([20, 5, 10], key=value_order), sorted(["label", "iid"], key=value_order)
    ([5, 10, 20], ['iid', 'label'])
    """
    return (isinstance(value, str), value)


def federated_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: its runs, how many reached the target, and the medians to target.

    Parameters
    ----------
    frame : DataFrame
        ``fedavg`` trials (``Results.frame`` or ``ResultStore.trials_frame()``).

    Returns
    -------
    DataFrame
        The parameters that vary, ``workers``, ``runs``, ``reached``, ``max_rounds``,
        ``target_accuracy``; ``rounds``, ``time`` (s) and ``bytes`` to target, medians over
        the runs with 95% intervals (``*_lo``, ``*_hi``; NaN, and ``*_note`` says why, where
        a run did not reach the target or there are fewer than 5 runs); ``bytes_per_round``
        and the median ``final_accuracy``.
    """
    import pandas as pd

    ok = _ok(frame)
    names = varying(ok)
    rows = []
    for point, g in ok.groupby("point", sort=False):
        params = json.loads(point)
        reached = g["reached_target"].astype(bool).to_numpy()
        row: dict[str, Any] = {n: params.get(n) for n in names}
        row.update(
            workers=int(params["workers"]),
            runs=len(g),
            reached=int(reached.sum()),
            max_rounds=int(params["max_rounds"]),
            target_accuracy=float(params["target_accuracy"]),
        )
        for measure in MEASURES:
            est = _median(g[measure].to_numpy(float), bool(reached.all()))
            short = _SHORT[measure]
            row.update({short: est.value, f"{short}_lo": est.lo, f"{short}_hi": est.hi, f"{short}_note": est.note})
        row["bytes_per_round"] = float(g["bytes_per_round"].median())
        row["final_accuracy"] = float(g["final_accuracy"].median())
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values([*names, "workers"], key=lambda c: c.map(value_order)).reset_index(drop=True)


def compare_table(frame: pd.DataFrame, factor: str, baseline: Any = None) -> pd.DataFrame:
    """Each value of ``factor`` against ``baseline`` at equal other parameters, as ratios.

    Parameters
    ----------
    frame : DataFrame
        ``fedavg`` trials.
    factor : str
        The parameter compared: ``"split"``, ``"clients"``, ``"local_epochs"``...
    baseline : optional
        The value compared against: ``"iid"`` for ``split``, else the smallest value.

    Returns
    -------
    DataFrame
        One row per other value and setting of the other parameters (``context``): the
        ratios (value over baseline) of the median rounds, wall time and bytes to target,
        ``*_ratio`` with ``*_ratio_lo`` and ``*_ratio_hi`` (95%; NaN with ``*_note`` where
        not available, e.g. a run of either side that did not reach the target), the medians
        of each side, runs and runs that reached the target.
    """
    import pandas as pd

    ok = _ok(frame)
    col = f"p_{factor}"
    if col not in ok.columns:
        have = sorted(c[2:] for c in ok.columns if c.startswith("p_") and c != "p_workload")
        raise ParameterError("factor", factor, f"a parameter of these trials: {', '.join(have)}")
    values = sorted(ok[col].unique(), key=value_order)
    if baseline is None:
        baseline = "iid" if factor == "split" and "iid" in values else values[0]
    if baseline not in values:
        raise ParameterError("baseline", baseline, f"a measured value of {factor}: {values}")
    others = [c for c in ok.columns if c.startswith("p_") and c not in (col, "p_workload")] + ["workers"]
    shown = [n for n in varying(ok) if n != factor]
    keys = ok[others].apply(lambda r: json.dumps(r.to_dict(), sort_keys=True, default=str), axis=1)
    rows = []
    for _, g in ok.groupby(keys, sort=False):
        base = g[g[col] == baseline]
        if base.empty:
            continue
        first = base.iloc[0]
        context = ", ".join(f"{n}={first[f'p_{n}']}" for n in shown) or "all settings"
        for value in sorted(g[col].unique(), key=value_order):
            if value == baseline:
                continue
            side = g[g[col] == value]
            reached = bool(side["reached_target"].astype(bool).all() and base["reached_target"].astype(bool).all())
            row: dict[str, Any] = {
                "_order": (tuple(value_order(first[f"p_{n}"]) for n in shown), value_order(value)),
                "context": context,
                "factor": factor,
                "baseline": baseline,
                "value": value,
                "runs_baseline": len(base),
                "runs": len(side),
                "reached_baseline": int(base["reached_target"].astype(bool).sum()),
                "reached": int(side["reached_target"].astype(bool).sum()),
                "max_rounds": int(side["p_max_rounds"].iloc[0]),
                "max_rounds_baseline": int(first["p_max_rounds"]),
                "target_accuracy": float(first["p_target_accuracy"]),
            }
            for measure in MEASURES:
                est = _ratio(side[measure].to_numpy(float), base[measure].to_numpy(float), reached)
                short = _SHORT[measure]
                row.update(
                    {
                        f"{short}_ratio": est.value,
                        f"{short}_ratio_lo": est.lo,
                        f"{short}_ratio_hi": est.hi,
                        f"{short}_note": est.note,
                        f"{short}_baseline": float(base[measure].median()) if reached else math.nan,
                        short: float(side[measure].median()) if reached else math.nan,
                    }
                )
            rows.append(row)
    if not rows:
        return pd.DataFrame(rows)
    return pd.DataFrame(sorted(rows, key=lambda r: r["_order"])).drop(columns="_order")


def _reach(runs: int, reached: int, max_rounds: int) -> str:
    if reached == runs:
        return f"reached in each of {runs} runs"
    if reached == 0:
        return f"target not reached in {max_rounds} rounds in any of {runs} runs"
    return f"reached in {reached} of {runs} runs; not reached in {max_rounds} rounds in the other {runs - reached}"


def describe_point(row: Any) -> str:
    """One row of :func:`federated_table` in words."""
    target = f"{row['target_accuracy'] * 100:g}%"
    if row["reached"] < row["runs"]:
        text = _reach(row["runs"], row["reached"], row["max_rounds"])
        return f"{text} (median final accuracy {row['final_accuracy']:.1%}): rounds and time to {target} not measured"
    notes = {row[f"{short}_note"] for short in ("rounds", "time", "bytes")}
    shared = notes.pop() if len(notes) == 1 else ""
    rounds, time_s, mb = (
        _figure(row, short, scale, suffix, shared)
        for short, scale, suffix in (("rounds", 1, " rounds"), ("time", 1, " s"), ("bytes", 1e-6, " MB"))
    )
    how = f"medians of {row['runs']} runs; {shared}" if shared else f"medians of {row['runs']} runs, 95% intervals"
    return f"reached {target} in {rounds}, {time_s}, {mb} communicated ({how})"


def _figure(row: Any, short: str, scale: float, suffix: str, shared: str) -> str:
    """A median to target with its interval; its note in place of the interval, unless all share it."""
    text = show(row[short], row[f"{short}_lo"], row[f"{short}_hi"], scale=scale, suffix=suffix)
    note = row[f"{short}_note"]
    if shared:
        return text.replace(" (interval not available)", "")
    return text.replace("(interval not available)", f"({note})") if note else text


def _compare_line(row: Any, label: str) -> str:
    if math.isnan(row["rounds_ratio"]) and row["rounds_note"] == _NOT_REACHED:
        base = _reach(row["runs_baseline"], row["reached_baseline"], row["max_rounds_baseline"])
        side = _reach(row["runs"], row["reached"], row["max_rounds"])
        return f"{row['context']}: {label}: {side}; baseline {base}: no ratio of figures to target."
    parts = [
        ratio_words(Estimate(*(row[f"{s}_{k}"] for k in ("ratio", "ratio_lo", "ratio_hi", "note"))), *_WORDS[s])
        for s in ("rounds", "time", "bytes")
    ]
    medians = (
        f"medians {format_number(row['rounds'])} vs {format_number(row['rounds_baseline'])} rounds, "
        f"{format_number(row['time'])} vs {format_number(row['time_baseline'])} s"
    )
    return f"{row['context']}: {label}: {'; '.join(parts)} ({medians}, {row['runs']} vs {row['runs_baseline']} runs)."


def _tally(table: pd.DataFrame, short: str, words: tuple[str, str]) -> str:
    said = [direction(r[f"{short}_ratio_lo"], r[f"{short}_ratio_hi"]) for _, r in table.iterrows()]
    missing = int(sum(math.isnan(v) for v in table[f"{short}_ratio"]))
    counts = {
        words[0]: said.count("up"),
        words[1]: said.count("down"),
        "the runs cannot tell": said.count("unclear"),
        "no interval (too few runs)": said.count("unknown") - missing,
        "not measured (target not reached in every run)": missing,
    }
    return ", ".join(f"{what} in {n}" for what, n in counts.items() if n)


def _answer(table: pd.DataFrame, subject: str) -> str:
    settings = f"{len(table)} setting{'s' if len(table) != 1 else ''}"
    return (
        f"Answer: {subject}, in {settings} compared: rounds to target: "
        f"{_tally(table, 'rounds', ('more rounds', 'fewer rounds'))}; wall time to target: "
        f"{_tally(table, 'time', ('slower', 'faster'))}. A direction is claimed only where its 95% interval excludes 1."
    )


@trusted
def describe_noniid(frame: pd.DataFrame) -> str:
    """How much non-IID data (``split="label"``) slows federated training against IID data.

    Parameters
    ----------
    frame : DataFrame
        ``fedavg`` trials with both splits at equal other parameters.

    Returns
    -------
    str
        One line per setting (ratios of rounds, wall time and bytes to target, non-IID over
        IID, each with its direction only where its 95% interval excludes 1) and an answer;
        a sentence saying there is nothing to compare where both splits were not measured.
    """
    measured = set(_ok(frame)["p_split"])
    table = compare_table(frame, "split", "iid") if {"iid", "label"} <= measured else None
    if table is None or table.empty or "label" not in set(table["value"]):
        return "IID and non-IID shards were not both measured at equal other parameters: no comparison of splits."
    table = table[table["value"] == "label"]
    lines = [
        f"Non-IID (each client holding mostly a few classes) against IID shards, to {table['target_accuracy'].iloc[0] * 100:g}% "
        "held-out accuracy; ratios are non-IID over IID medians."
    ]
    lines += [_compare_line(r, "non-IID vs IID") for _, r in table.iterrows()]
    lines.append(_answer(table, "non-IID data"))
    return "\n".join(lines)


@trusted
def describe_factor(frame: pd.DataFrame, factor: str, baseline: Any = None) -> str:
    """Rounds, wall time and bytes to target for each value of ``factor`` against ``baseline``.

    Parameters
    ----------
    frame : DataFrame
        ``fedavg`` trials.
    factor : str
        ``"clients"``, ``"local_epochs"``, ``"participation"``...
    baseline : optional
        The value compared against (default: the smallest measured).

    Returns
    -------
    str
        One line per value and setting of the other parameters, and an answer; a sentence
        saying there is nothing to compare where only one value was measured.
    """
    table = compare_table(frame, factor, baseline)
    if table.empty:
        return f"No two values of {factor} were measured at equal other parameters: no comparison of {factor}."
    base = table["baseline"].iloc[0]
    lines = [f"{factor} against {factor}={base}; ratios are the value's medians over the baseline's."]
    lines += [_compare_line(r, f"{factor}={r['value']} vs {base}") for _, r in table.iterrows()]
    lines.append(_answer(table, f"the other values of {factor} (against {factor}={base})"))
    return "\n".join(lines)


@trusted
def describe_federated(frame: pd.DataFrame) -> str:
    """Each grid point's rounds, wall time and bytes to target in words, one line per point."""
    table = federated_table(frame)
    names = [c for c in table.columns if c not in _TABLE_COLUMNS]
    lines = []
    for _, r in table.iterrows():
        label = ", ".join(f"{n}={r[n]}" for n in names) or "fedavg"
        lines.append(f"{label} on {r['workers']} worker(s): {describe_point(r)}.")
    return "\n".join(lines)


_TABLE_COLUMNS = {
    "workers",
    "runs",
    "reached",
    "max_rounds",
    "target_accuracy",
    "bytes_per_round",
    "final_accuracy",
    *(f"{s}{end}" for s in ("rounds", "time", "bytes") for end in ("", "_lo", "_hi", "_note")),
}
