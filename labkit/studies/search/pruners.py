"""What a pruner (or a scikit-learn search method) saves against a baseline at equal final quality.

The compute (the sum of trial durations), epochs and wall time each pruner spent against the
baseline's as ratios of medians with 95% intervals, and the difference in median best score:
"equal final quality" is claimed only when that difference's interval lies within a stated
margin, "saves" only where the ratio's interval is below 1 (:mod:`.analysis` for the estimates).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words
from labkit.analysis.frames import pick_configuration, point_params, require
from labkit.analysis.intervals import Estimate, direction
from labkit.analysis.trust import trusted
from labkit.common.errors import ParameterError

from .analysis import ONE, ZERO, _get, _put, _ratio, _score_diff, difference_estimate, values

if TYPE_CHECKING:
    import pandas as pd


def pruner_table(
    frame: pd.DataFrame, by: str = "pruner", baseline: str = "none", where: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Per value of ``by`` (a pruner, or scikit-learn's ``method``) at the most workers measured:
    median trials pruned, the compute spent (``trial_seconds``), epochs and wall time against
    ``baseline``'s as ratios of medians (below 1: saved) and the difference in median best score.

    Parameters
    ----------
    frame : pandas.DataFrame
        Trials of a sweep over ``by`` (``"pruner"`` or ``"method"``).
    by, baseline : str
        The compared parameter and its value to compare against.
    where : dict, optional
        Fixes other parameters, as for :func:`~labkit.analysis.frames.pick_configuration`.
    """
    import pandas as pd

    require(frame, ("point", "status", "workers", "wall_s"))
    ok, label = pick_configuration(frame, where, free=(by,))
    ok = ok[ok["workers"] == ok["workers"].max()]
    params = point_params(ok)
    if by not in params.columns:
        raise ParameterError("by", by, f"a parameter of these trials: {', '.join(params.columns)}")
    groups = {str(v): ok[(params[by].astype(str) == str(v)).to_numpy()] for v in params[by].unique()}
    if baseline not in groups:
        raise ParameterError("baseline", baseline, f"a measured {by}: {sorted(groups)}")
    base = groups[baseline]
    rows = []
    for v in [baseline, *sorted(k for k in groups if k != baseline)]:
        g, first = groups[v], v == baseline
        row: dict[str, Any] = {by: v, "workers": int(g["workers"].iloc[0]), "runs": len(g)}
        for col in ("trials_pruned", "trials_completed", "trial_seconds", "epochs_run", "best_score"):
            x = values(g, col)
            row[col] = float(np.median(x)) if x.size else math.nan
        for name, col in (("compute", "trial_seconds"), ("epochs", "epochs_run"), ("wall", "wall_s")):
            _put(row, f"{name}_ratio", ONE if first else _ratio(values(g, col), values(base, col)))
        scores, base_scores = values(g, "best_score"), values(base, "best_score")
        _put(row, "best_score_diff", ZERO if first else difference_estimate(scores, base_scores))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(configuration=label, by=by, baseline=baseline)
    return table


def quality_words(est: Estimate, margin: float) -> str:
    """Whether two searches reached equal final quality, from the difference in best score.

    >>> quality_words(Estimate(0.001, -0.004, 0.006), 0.01)
    'at equal final quality (difference +0.001, 95% interval -0.004 to +0.006, within ±0.01)'
    """
    if math.isnan(est.value):
        return "final quality not measured"
    if math.isnan(est.lo):
        return f"the runs cannot tell whether the final quality is equal (difference {_score_diff(est)})"
    shown = f"difference {est.value:+.3g}, 95% interval {est.lo:+.3g} to {est.hi:+.3g}"
    if -margin <= est.lo and est.hi <= margin:
        return f"at equal final quality ({shown}, within ±{margin:g})"
    if est.hi < 0 or est.lo > 0:
        return f"at {'lower' if est.hi < 0 else 'higher'} final quality ({shown})"
    return f"the runs cannot tell whether the final quality is equal ({shown}, reaching beyond ±{margin:g})"


def _pct(est: Estimate) -> str:
    return f" (95% interval {1 - est.hi:.0%}–{1 - est.lo:.0%})"


def _saved(est: Estimate) -> str:
    """A pruner's ratio to the baseline in words (:func:`ratio_words`), and the share saved where
    its interval lies below 1."""
    said = ratio_words(est, "the baseline's", ("more", "less"))
    return said + (f", saved {1 - est.value:.0%}{_pct(est)}" if direction(est.lo, est.hi) == "down" else "")


def describe_pruners(
    frame: pd.DataFrame,
    margin: float = 0.01,
    by: str = "pruner",
    baseline: str = "none",
    where: dict[str, Any] | None = None,
) -> str:
    """What each pruner (or search ``method``) saves against ``baseline`` at equal final quality:
    the compute (sum of trial durations) and wall time saved, with intervals, and whether the
    best score stayed within ``margin`` of the baseline's.

    Parameters
    ----------
    frame, by, baseline, where
        As for :func:`pruner_table`.
    margin : float, default 0.01
        The largest best-score difference that still counts as equal final quality.
    """
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 1:
        raise ParameterError("margin", margin, "a score difference between 0 and 1, e.g. 0.01")
    return _pruners(frame, margin, by, baseline, where)


@trusted
def _pruners(frame: pd.DataFrame, margin: float, by: str, baseline: str, where: dict[str, Any] | None) -> str:
    table = pruner_table(frame, by, baseline, where)
    lines = [
        f"Against {by}={baseline} on {int(table['workers'].iloc[0])} worker(s) ({table.attrs['configuration']}): "
        f"equal final quality means the 95% interval of the difference in median best score lies within ±{margin:g}."
    ]
    kept: dict[str, list[tuple[float, str, Estimate]]] = {"compute": [], "epochs": []}
    for _, r in table.iloc[1:].iterrows():
        quality = quality_words(_get(r, "best_score_diff"), margin)
        pruned = "not measured" if math.isnan(r["trials_pruned"]) else f"{r['trials_pruned']:g}"
        lines.append(
            f"{r[by]}: trials pruned {pruned} (median of {r['runs']} runs); "
            f"compute {_saved(_get(r, 'compute_ratio'))}; "
            f"epochs {_saved(_get(r, 'epochs_ratio'))}; wall time {_saved(_get(r, 'wall_ratio'))}; {quality}."
        )
        for what, est in (("compute", _get(r, "compute_ratio")), ("epochs", _get(r, "epochs_ratio"))):
            if quality.startswith("at equal") and direction(est.lo, est.hi) == "down":
                kept[what].append((est.value, r[by], est))
    return "\n".join([*lines, f"Answer: {_most(table, kept, by)}."])


def _most(table: pd.DataFrame, kept: dict[str, list[tuple[float, str, Estimate]]], by: str) -> str:
    """Which value of ``by`` saves the most: only where its interval lies below every other's."""
    best = {what: min(found, key=lambda k: k[0]) for what, found in kept.items() if found}
    if "compute" not in best:
        answer = f"no {by} was shown to save compute (the trials' summed durations) at equal final quality"
        if "epochs" in best:
            ratio, name, est = best["epochs"]
            answer += (
                f"; {name} ran {1 - ratio:.0%} fewer epochs{_pct(est)} at equal quality, but its time did not show it"
            )
        return answer
    ratio, name, est = best["compute"]
    others = [_get(r, "compute_ratio") for _, r in table.iloc[1:].iterrows() if r[by] != name]
    if all(est.hi < o.lo for o in others):
        return f"{name} saves the most compute at equal final quality: {1 - ratio:.0%} of the trial-seconds{_pct(est)}"
    names = ", ".join(str(n) for _, n, _ in kept["compute"])
    return (
        f"{names} saved compute at equal final quality, but the runs cannot tell which saves the most (the "
        "intervals of the compute ratios overlap, or one is not available)"
    )
