"""Conclusions about hyperparameter searches: trials per second and time to the best score against
workers, whether more workers pay off, the best score each found; what a pruner saves at
equal final quality is in :mod:`.pruners`, built on the estimates here.

The functions take the trials of a sweep of ``optuna-search`` or ``sklearn-search`` (a trial
is one whole search; ``best_score``, ``time_to_best_s``, ``trial_seconds`` ... are its
metrics). A ``*_table`` has one row per compared point with 95% bootstrap intervals over the
runs (:mod:`labkit.analysis.intervals`: none with fewer than five runs a side); a ``describe_*`` sentence
claims a direction only when its interval does, and "equal final quality" only when the
interval of the difference in median best score lies within a stated margin. What a search
did not measure (scikit-learn does not say when each candidate finished) is said to be so.

>>> difference_estimate([0.9] * 3, [0.8] * 3).note
'interval not available: 3 runs per point; use repeats >= 5'
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.frames import pick_configuration, require, varying
from labkit.analysis.intervals import Estimate, _bootstrap, direction, median_estimate, ratio_estimate, runs_note, show
from labkit.analysis.trust import trusted
from labkit.common.conclusion import Conclusion
from labkit.common.errors import DataError, ParameterError

if TYPE_CHECKING:
    import pandas as pd

TIMES = ("time_to_best_s", "time_to_within_1pct_s")
PAYOFF = (*TIMES, "trials_per_s")
NAN = Estimate(math.nan, math.nan, math.nan, "not measured")
ONE, ZERO = Estimate(1.0, math.nan, math.nan, "the baseline"), Estimate(0.0, math.nan, math.nan, "the baseline")
TARGET = {"time_to_best_s": "the best score", "time_to_within_1pct_s": "within 1% of the best score"}
NAMES = {"trials_per_s": "trials/s", **{k: f"time to {v}" for k, v in TARGET.items()}}


def values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The finite values of a metric column (empty where it was not measured).

    >>> import pandas as pd; values(pd.DataFrame({"t": [1.0, None, float("nan")]}), "t").tolist()
    [1.0]
    """
    if column not in frame.columns:
        return np.array([], float)
    x = np.asarray(frame[column].to_numpy(), dtype=float)
    return x[np.isfinite(x)]


def difference_estimate(a: Any, b: Any, *, seed: int = 0) -> Estimate:
    """``median(a) - median(b)`` with its bootstrap interval (BCa over both sides' runs).

    Parameters
    ----------
    a, b : array-like
        Runs on each side (best scores, say); finite.
    seed : int, default 0

    Returns
    -------
    Estimate
        NaN bounds, and why in ``note``, with fewer than five runs a side or runs that do not vary;
        all NaN ("not measured") where a side has no runs.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ParameterError("runs", (a.tolist()[:5], b.tolist()[:5]), "finite values on both sides")
    note = runs_note(a.size, b.size) if a.size and b.size else NAN.note
    if note:
        return Estimate(float(np.median(a) - np.median(b)) if a.size and b.size else math.nan, math.nan, math.nan, note)
    diff = lambda x, y, axis=-1: np.median(x, axis=axis) - np.median(y, axis=axis)  # noqa: E731
    return _bootstrap((a, b), diff, 0.95, 2000, seed)


def _median(x: np.ndarray) -> Estimate:
    return median_estimate(x) if x.size else NAN


def _ratio(num: np.ndarray, den: np.ndarray) -> Estimate:
    return ratio_estimate(num, den) if num.size and den.size else NAN


def _put(row: dict[str, Any], name: str, est: Estimate) -> None:
    row.update({name: est.value, f"{name}_lo": est.lo, f"{name}_hi": est.hi, f"{name}_note": est.note})


def _get(row: Any, name: str) -> Estimate:
    return Estimate(row[name], row[f"{name}_lo"], row[f"{name}_hi"], row[f"{name}_note"])


def search_scaling_table(frame: pd.DataFrame, where: dict[str, Any] | None = None) -> pd.DataFrame:
    """Per worker count of one search configuration: trials/s and the times to the best score and
    to within 1% of it (medians, intervals), their speedups over the fewest workers
    (``trials_speedup``; ``best_sooner``, ``within_sooner``: how many times sooner; above 1 is
    better) and the difference in median best score from the fewest's (``best_score_diff``).

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of a search sweep over workers.
    where : dict, optional
        Fixes parameters, as for :func:`~labkit.analysis.frames.pick_configuration`.

    Returns
    -------
    pandas.DataFrame
        One row per worker count; ``*_lo``/``*_hi`` NaN (and ``*_note`` why) without an interval.
    """
    import pandas as pd

    ok, label = pick_configuration(frame, where)
    groups = {int(w): g for w, g in ok.groupby("workers")}
    base_w = min(groups)
    base = groups[base_w]
    rows = []
    for w, g in sorted(groups.items()):
        row: dict[str, Any] = {"workers": w, "baseline_workers": base_w, "runs": len(g)}
        for col in ("trials_per_s", *TIMES):
            _put(row, col, _median(values(g, col)))
        scores = values(g, "best_score")
        row["best_score"] = float(np.median(scores)) if scores.size else math.nan
        first = w == base_w
        _put(row, "trials_speedup", ONE if first else _ratio(values(g, "trials_per_s"), values(base, "trials_per_s")))
        _put(row, "best_sooner", ONE if first else _ratio(values(base, TIMES[0]), values(g, TIMES[0])))
        _put(row, "within_sooner", ONE if first else _ratio(values(base, TIMES[1]), values(g, TIMES[1])))
        _put(row, "best_score_diff", ZERO if first else difference_estimate(scores, values(base, "best_score")))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["configuration"] = label
    return table


def _speedup(est: Estimate, words: tuple[str, str], label: str = "speedup") -> str:
    """A speedup in words ("2× faster", "2× slower (speedup 0.5×, …)"): :func:`ratio_words`.

    >>> _speedup(Estimate(2.0, 1.6, 2.4), ("faster", "slower")), _speedup(Estimate(0.5, 0.4, 0.6), ("faster", "slower"))
    ('2× faster (95% interval 1.6–2.4×)', '2× slower (speedup 0.5×, 95% interval 0.4–0.6×)')
    """
    return ratio_words(est, words=words, label=label, invert=True)


def _score_diff(est: Estimate) -> str:
    if math.isnan(est.value):
        return "not measured"
    if math.isnan(est.lo):
        return f"{est.value:+.3g} by medians, an estimate ({est.note or 'interval not available'})"
    return f"{est.value:+.3g} (95% interval {est.lo:+.3g} to {est.hi:+.3g})"


def _seconds(est: Estimate) -> str:
    return "not measured" if math.isnan(est.value) else show(est.value, est.lo, est.hi, suffix=" s")


def describe_search_scaling(
    frame: pd.DataFrame, where: dict[str, Any] | None = None, by: str = "time_to_best_s"
) -> str:
    """Trials/s and time to the best score against workers, and whether more workers pay off for
    this search: a step up in workers pays off when ``by`` (``"time_to_best_s"``,
    ``"time_to_within_1pct_s"`` or ``"trials_per_s"``) improves by an interval that excludes 1.
    Where ``by`` was not measured (scikit-learn's searches), trials/s decides, and it says so.

    Parameters
    ----------
    frame, where
        As for :func:`search_scaling_table`.
    by : str, default "time_to_best_s"
        What decides whether a step up in workers pays off.
    """
    if by not in PAYOFF:
        raise ParameterError("by", by, f"one of {', '.join(map(repr, PAYOFF))}")
    return _search_scaling(frame, where, by)


@trusted
def _search_scaling(frame: pd.DataFrame, where: dict[str, Any] | None, by: str) -> str:
    table = search_scaling_table(frame, where)
    lines = [f"Search: {table.attrs['configuration']}; medians of runs with their 95% intervals."]
    for _, r in table.iterrows():
        score = "not measured" if math.isnan(r["best_score"]) else f"{r['best_score']:.4g}"
        text = (
            f"{r['workers']} worker(s), {r['runs']} runs: {show(*_get(r, 'trials_per_s')[:3])} trials/s; "
            f"time to the best score {_seconds(_get(r, TIMES[0]))}, to within 1% of it "
            f"{_seconds(_get(r, TIMES[1]))}; median best score {score}."
        )
        if r["workers"] != r["baseline_workers"]:
            text += (
                f" Against {r['baseline_workers']}: trials/s: "
                f"{_speedup(_get(r, 'trials_speedup'), ('faster', 'slower'))}; "
                f"time to the best score: {_speedup(_get(r, 'best_sooner'), ('sooner', 'later'))}; "
                f"best score difference {_score_diff(_get(r, 'best_score_diff'))}."
            )
        lines.append(text)
    lines.append(_payoff(pick_configuration(frame, where)[0], by))
    return "\n".join(lines)


def _payoff(ok: pd.DataFrame, by: str) -> str:
    groups = {int(w): g for w, g in ok.groupby("workers")}
    counts = sorted(groups)
    if len(counts) < 2:
        return "Answer: one worker count measured: whether more workers pay off was not measured."
    fallback = ""
    if all(values(g, by).size == 0 for g in groups.values()):
        fallback = f" (time to {TARGET.get(by, by)} not measured for this search: judged by trials/s)"
        by = "trials_per_s"
    verbs = ("sooner", "later") if by in TARGET else ("faster", "slower")
    better, worse = (f"{v} to reach {TARGET[by]}" if by in TARGET else f"{v} in trials/s" for v in verbs)
    chosen = counts[0]
    for w in counts[1:]:
        a, b = values(groups[chosen], by), values(groups[w], by)
        est = _ratio(b, a) if by == "trials_per_s" else _ratio(a, b)
        d = direction(est.lo, est.hi)
        if d == "up":
            chosen = w
            continue
        sofar = f"more workers pay off up to {chosen}, and " if chosen > counts[0] else ""
        said = _speedup(est, (better, worse), f"speedup in {NAMES[by]}")
        if d == "down":
            return f"Answer{fallback}: {sofar}more workers do not pay off beyond {chosen}: {w} workers were {said}."
        return (
            f"Answer{fallback}: {sofar}the runs cannot tell whether more than {chosen} worker(s) pay off: {w} against "
            f"{chosen}, {said}."
        )
    return (
        f"Answer{fallback}: more workers pay off for this search up to {chosen}, the most measured: each step up "
        f"was {better}, by an interval that excludes 1."
    )


def describe_best(frame: pd.DataFrame) -> str:
    """The best score found in each point's runs and its parameters, as recorded with each trial."""
    require(frame, ("point", "status", "workers"))
    ok = frame[frame["status"] == "ok"]
    if ok.empty or "best_score" not in ok.columns:
        raise DataError("no search trial with a best score", "needs trials of optuna-search or sklearn-search")
    shown = [*varying(ok), "workers"]
    lines = []
    for point, g in ok.groupby("point", sort=False):
        label = ", ".join(f"{k}={v}" for k, v in json.loads(point).items() if k in shown)
        scores = g["best_score"].astype(float)
        if scores.notna().sum() == 0:
            lines.append(f"{label}: no run completed a trial: best score not measured.")
            continue
        top = g.loc[scores.idxmax()]
        lines.append(
            f"{label}: best score {float(top['best_score']):.4g} with {top['best_params']} "
            f"(the best of {int(scores.notna().sum())} runs; their median {float(scores.median()):.4g})."
        )
    return Conclusion(lines)
