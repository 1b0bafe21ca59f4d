"""Run-to-run comparison that knows the noise: per matched point, B's time over A's, a rank test, a verdict.

Two sets of trials, A and B, are matched by their grid point (workload, workers and every
parameter; parameters named in ``ignore`` are left out of the match). At each point:

- the effect is the ratio of median wall times, ``median(B) / median(A)`` (above 1: B took
  longer), with a BCa bootstrap interval over both sides' repeats
  (:func:`labkit.analysis.intervals.ratio_estimate`). Times, not throughputs: a parameter
  left out of the match may change the amount of work, and with it the throughput;
- the test is Mann–Whitney's U on the repeats (:func:`scipy.stats.mannwhitneyu`, two-sided);
- the points that can be flagged (at least :data:`FLAG_RUNS` runs on both sides) are one
  family: their p-values are corrected with Holm's method, and the intervals are taken at
  the Bonferroni level ``1 - alpha / m`` (``m`` such points), so that a flag and its
  interval never disagree; a point that cannot be flagged does not widen the others';
- only trials that may carry a direction count (:func:`labkit.analysis.trust.admit`: ok,
  not degraded, not under outside load). A point left with fewer than :data:`FLAG_RUNS` on
  a side once its loaded trials are out reads ``no direction claimed`` and says why
  ("B: 5 of 5 trials ran under outside load"); its estimate, from every ok trial, is shown.

A point is flagged ``slower`` only when the corrected test rejects *and* the whole interval
lies above ``1 + margin`` (``faster``: below ``1 / (1 + margin)``); an interval inside that
band reads ``same within margin``; the rest is ``no change detected``, with what would
resolve it in the note. Fewer than :data:`MIN_RUNS` runs on a side is ``not enough runs``
(no test, no interval); an interval needs :data:`~labkit.analysis.intervals.MIN_REPEATS`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a = rng.lognormal(0.0, 0.03, 7)
>>> out = compare_samples({"p": (a, a * 1.3)})
>>> out.loc["p", "verdict"], f"{out.loc['p', 'ratio']:.2f}"
('slower', '1.30')
>>> compare_samples({"p": ([1.0, 1.1], [1.2, 1.3])}).loc["p", "verdict"]
'not enough runs'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.common.format import format_number

from .compare_stats import (
    ALPHA,
    COLUMNS,
    FLAG_RUNS,
    MARGIN,
    MIN_RUNS,
    NO_DIRECTION,
    VERDICTS,
    band,
    best_p,
    check_options,
    compare_samples,
    holm,
    runs_to_reject,
)
from .frames import require
from .trust import Admitted, admit, load_words

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALPHA",
    "FLAG_RUNS",
    "MARGIN",
    "MIN_RUNS",
    "NO_DIRECTION",
    "VERDICTS",
    "Comparison",
    "best_p",
    "check_options",
    "compare_samples",
    "compare_trials",
    "holm",
    "point_labels",
    "runs_to_reject",
]


@dataclass
class Comparison:
    """What :func:`compare_trials` found: one row per matched point, and what was not compared."""

    points: pd.DataFrame
    samples: dict[str, tuple[np.ndarray, np.ndarray]]
    alpha: float
    margin: float
    ignore: tuple[str, ...] = ()
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)  # side -> status -> trials not ok
    ignored_values: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # name -> side -> values
    admitted: dict[str, Admitted] = field(default_factory=dict)  # side -> its matched trials, admitted

    @property
    def tested(self) -> int:
        """Points that can be flagged (enough admitted runs on both sides): the family the correction is over."""
        return int(self.points["family"].sum()) if "family" in self.points else 0

    def counts(self) -> dict[str, int]:
        """How many points got each verdict."""
        return {v: int((self.points["verdict"] == v).sum()) for v in VERDICTS}

    def flagged(self, direction: str = "any") -> int:
        """Points flagged ``"slower"``, ``"faster"`` or either (``"any"``)."""
        wanted = ("slower", "faster") if direction == "any" else (direction,)
        return int(self.points["verdict"].isin(wanted).sum())

    def summary(self) -> str:
        """The comparison in a few sentences: verdicts, how they were tested, what was left out."""
        c, n = self.counts(), len(self.points)
        said = [f"{c[v]} {v}" for v in VERDICTS if c[v]]
        text = f"{n} point{'s' if n != 1 else ''} compared (B against A, median wall time): {', '.join(said)}."
        if self.tested:
            level = self.points["confidence"].iloc[0]
            text += (
                f" A point is flagged only when Mann–Whitney's test rejects at α={self.alpha:g} after Holm's "
                f"correction over the {self.tested} point{'s' if self.tested != 1 else ''} that can be flagged and "
                f"its {level:.2%} interval lies beyond {band(self.margin)}."
            )
        text += self._load_summary()
        for side in ("A", "B"):
            lost = self.left_out.get(side) or {}
            if lost:
                parts = ", ".join(f"{k} {v}" for k, v in sorted(lost.items()))
                text += f" {side}: {sum(lost.values())} trials not ok left out ({parts})."
        for side, only in (("A", self.only_a), ("B", self.only_b)):
            if only:
                text += f" {len(only)} point{'s' if len(only) != 1 else ''} only in {side}, not compared."
        for name, by_side in self.ignored_values.items():
            values = "; ".join(f"{s}: {', '.join(v)}" for s, v in by_side.items())
            text += f" Not matched on {name} ({values})."
        return text

    def _load_summary(self) -> str:
        """What outside load did to the comparison: trials left out, load not measured, nothing claimed."""
        text = ""
        for side, adm in self.admitted.items():
            if adm.total and adm.loaded == adm.total:
                text += f" {side}: {adm.loaded} of {adm.total} trials ran under outside load: no direction claimed."
            elif adm.loaded:
                text += f" {side}: {adm.loaded} of {adm.total} trials ran under outside load and were left out."
            if adm.unknown:
                text += f" {side}: outside load not measured for {adm.unknown} of {adm.total} trials."
        if len(self.points) and self.counts()[NO_DIRECTION] == len(self.points):
            text += " Every point is left with too few trials run without outside load: this comparison claims nothing."
        return text


def _key(d: Mapping[str, Any], ignore: Iterable[str]) -> str:
    return json.dumps({k: v for k, v in d.items() if k not in ignore}, sort_keys=True, default=str)


def _show(v: Any) -> str:
    return format_number(v) if isinstance(v, float) else str(v)


def point_labels(keys: Iterable[str]) -> dict[str, str]:
    """Short labels: the workload, the workers and the parameters that differ between ``keys``.

    >>> point_labels(['{"workers": 1, "workload": "w", "n": 2}', '{"workers": 2, "workload": "w", "n": 2}'])
    {'{"workers": 1, "workload": "w", "n": 2}': 'w, workers=1', '{"workers": 2, "workload": "w", "n": 2}': 'w, workers=2'}
    """
    dicts = {k: json.loads(k) for k in keys}
    names = sorted({n for d in dicts.values() for n in d} - {"workload", "workers"})
    vary = [n for n in names if len({json.dumps(d.get(n), default=str) for d in dicts.values()}) > 1]
    workers = {k: [f"workers={d['workers']}"] if "workers" in d else [] for k, d in dicts.items()}
    return {k: ", ".join([str(d.get("workload", "?")), *workers[k], *(f"{n}={_show(d.get(n))}" for n in vary)])
            for k, d in dicts.items()}  # fmt: skip


def _side(frame: pd.DataFrame, name: str, ignore: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, int]]:
    require(frame, ("point", "status", "wall_s"))
    left_out = {str(k): int(v) for k, v in frame.loc[frame["status"] != "ok", "status"].value_counts().items()}
    ok = frame[(frame["status"] == "ok") & frame["wall_s"].notna()].copy()
    if ok.empty:
        raise ParameterError(name, f"{len(frame)} trials, none ok", "a set of trials with at least one ok trial")
    import pandas as pd

    codes, points = pd.factorize(ok["point"])  # each point's JSON read once, however many trials it has
    dicts = [json.loads(p) for p in points]
    keys = [_key(d, ignore) for d in dicts]
    ok["_key"] = np.asarray(keys, dtype=object)[codes]
    merged = ok.groupby("_key")["point"].nunique()
    if ignore and (merged > 1).any():
        key = merged[merged > 1].index[0]
        values = sorted({json.dumps({n: d.get(n) for n in ignore}) for d, k in zip(dicts, keys) if k == key})
        raise ParameterError(
            "ignore", list(ignore), f"parameters with one value per point of {name}; {name} holds {', '.join(values)}"
        )
    return ok, left_out


def _loaded(rows: pd.DataFrame) -> Any:
    """Trials flagged under outside load; None where the load was not measured."""
    flags = rows["under_load"].dropna() if "under_load" in rows else ()
    return None if len(flags) == 0 else int(flags.astype(bool).sum())


def _no_direction(a: Admitted, b: Admitted) -> str:
    """Why a point claims no direction: which side's trials ran under outside load, and what was left.

    >>> import pandas as pd
    >>> ok = pd.DataFrame({"status": ["ok"] * 5, "under_load": [False] * 5})
    >>> _no_direction(admit(ok), admit(ok.assign(under_load=True)))
    'B: 5 of 5 trials ran under outside load: no direction claimed'
    """
    said = [f"{n}: {s.loaded} of {s.total} trials ran under outside load" for n, s in (("A", a), ("B", b)) if s.loaded]
    left = min(len(a.frame), len(b.frame))
    why = f" ({left} left on a side; a direction needs {FLAG_RUNS})" if left else ""
    return f"{'; '.join(said)}: {NO_DIRECTION}{why}"


def _judge(
    groups: tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]], common: list[str], **options: Any
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Each common point's row, from its admitted trials; a point that outside load left with too
    few admitted trials is estimated from every ok trial and claims no direction."""
    import pandas as pd

    times = lambda f: f["wall_s"].to_numpy(float)  # noqa: E731
    adm = {k: (admit(groups[0][k]), admit(groups[1][k])) for k in common}
    short = {k for k, (a, b) in adm.items() if (a.loaded or b.loaded) and min(len(a.frame), len(b.frame)) < FLAG_RUNS}
    judged = {k: (times(adm[k][0].frame), times(adm[k][1].frame)) for k in common if k not in short}
    samples = {k: (times(groups[0][k]), times(groups[1][k])) for k in short}
    rows = compare_samples(judged, **options) if judged else pd.DataFrame(columns=[*COLUMNS, "confidence"])
    confidence = rows["confidence"].iloc[0] if judged else math.nan
    for k in short:
        a, b = samples[k]
        estimate = {"n_a": a.size, "n_b": b.size, "median_a": float(np.median(a)), "median_b": float(np.median(b))}
        estimate["ratio"] = estimate["median_b"] / estimate["median_a"]
        nan = dict.fromkeys(("lo", "hi", "p", "p_adj"), math.nan)
        note = _no_direction(*adm[k])
        rows.loc[k] = {
            **estimate,
            **nan,
            "verdict": NO_DIRECTION,
            "note": note,
            "family": False,
            "confidence": confidence,
        }
    samples.update(judged)
    return rows.loc[common], {k: samples[k] for k in common}


def _fingerprints(rows: pd.DataFrame) -> tuple[str, ...] | None:
    known = "fingerprint" in rows and not rows["fingerprint"].isna().any()
    return tuple(sorted(set(rows["fingerprint"]))) if known else None


def compare_trials(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    ignore: Sequence[str] = (),
    alpha: float = ALPHA,
    margin: float = MARGIN,
    seed: int = 0,
) -> Comparison:
    """Match two trials frames by grid point and compare the wall times of the trials that may carry a direction.

    Parameters
    ----------
    a, b : pandas.DataFrame
        Trials frames (``ResultStore.trials_frame()``): ``point``, ``status``, ``wall_s``;
        ``under_load`` and ``fingerprint`` when the store has them.
    ignore : sequence of str
        Parameters left out of the match (``["work_s"]`` compares points that differ only
        there); each must take one value per point on each side.
    alpha, margin, seed
        As for :func:`compare_samples`.

    Returns
    -------
    Comparison
        ``points`` holds :func:`compare_samples`'s columns (from the admitted trials; ``n_a``
        and ``n_b`` count the runs behind the medians) plus ``label``, ``loaded_a`` and
        ``loaded_b`` (trials under outside load; None: not measured), ``load_a`` and
        ``load_b`` (:func:`~labkit.analysis.trust.load_words`) and
        ``fingerprints_a``/``fingerprints_b`` (None: not recorded).
    """
    check_options(alpha, margin)
    if isinstance(ignore, str) or not all(isinstance(n, str) for n in ignore):
        raise ParameterTypeError("ignore", ignore, "a list of parameter names, e.g. ['work_s']")
    ignore = tuple(ignore)
    ok_a, lost_a = _side(a, "A", ignore)
    ok_b, lost_b = _side(b, "B", ignore)
    known = {n for p in {*ok_a["point"], *ok_b["point"]} for n in json.loads(p)} - {"workload", "workers"}
    for n in ignore:
        if n not in known:
            raise ParameterError("ignore", n, f"a workload parameter of these points: {', '.join(sorted(known))}")
    groups_a, groups_b = dict(list(ok_a.groupby("_key"))), dict(list(ok_b.groupby("_key")))
    common = [k for k in groups_a if k in groups_b]
    every = point_labels([*groups_a, *groups_b])
    if not common:
        raise ParameterError(
            "B",
            f"points {sorted(every[k] for k in groups_b)[:4]}",
            f"trials at a point A has too ({sorted(every[k] for k in groups_a)[:4]}); "
            "--ignore NAME matches points that differ only in NAME",
        )
    points, samples = _judge((groups_a, groups_b), common, alpha=alpha, margin=margin, seed=seed)
    labels = point_labels(common)
    points.insert(0, "label", [labels[k] for k in common])
    for side, groups in (("a", groups_a), ("b", groups_b)):
        points[f"loaded_{side}"] = [_loaded(groups[k]) for k in common]
        points[f"load_{side}"] = [load_words(groups[k]) for k in common]
    points["fingerprints_a"] = [_fingerprints(groups_a[k]) for k in common]
    points["fingerprints_b"] = [_fingerprints(groups_b[k]) for k in common]
    ignored: dict[str, dict[str, list[str]]] = {}
    for n in ignore:
        for side, ok in (("A", ok_a), ("B", ok_b)):
            pairs = set(zip(ok["point"], ok["_key"]))  # a point's JSON read once
            values = sorted({_show(json.loads(p).get(n)) for p, k in pairs if k in common})
            ignored.setdefault(n, {})[side] = values
    return Comparison(
        points=points,
        samples=samples,
        alpha=float(alpha),
        margin=float(margin),
        ignore=ignore,
        only_a=sorted(every[k] for k in groups_a if k not in groups_b),
        only_b=sorted(every[k] for k in groups_b if k not in groups_a),
        left_out={side: lost for side, lost in (("A", lost_a), ("B", lost_b)) if lost},
        ignored_values=ignored,
        admitted={side: admit(ok[ok["_key"].isin(common)]) for side, ok in (("A", ok_a), ("B", ok_b))},
    )
