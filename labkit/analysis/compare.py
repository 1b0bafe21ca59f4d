"""Run-to-run comparison that knows the noise: per matched point, B's time over A's, a rank test, a verdict.

Two sets of trials, A and B, are matched by their grid point (workload, workers and every
parameter; parameters named in ``ignore`` are left out of the match). At each point:

- the effect is the ratio of median wall times, ``median(B) / median(A)`` (above 1: B took
  longer), with a BCa bootstrap interval over both sides' repeats
  (:func:`labkit.analysis.intervals.ratio_estimate`). Times, not throughputs: a parameter
  left out of the match may change the amount of work, and with it the throughput;
- the test is Mann–Whitney's U on the repeats (:func:`scipy.stats.mannwhitneyu`, two-sided);
- the points are one family: the p-values are corrected with Holm's method, and the
  intervals are taken at the Bonferroni level ``1 - alpha / m`` (``m`` points tested), so
  that a flag and its interval never disagree.

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
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.common.format import format_number

from .frames import require
from .intervals import MIN_REPEATS, equivalence_band, ratio_estimate

if TYPE_CHECKING:
    import pandas as pd

MIN_RUNS = 3
"""Fewest runs on each side of a point for it to be tested at all."""
ALPHA = 0.05
"""Family-wise error rate over the points of one comparison."""
MARGIN = 0.05
"""Default margin of practical equivalence: changes within ±5% are not flagged."""
VERDICTS = ("slower", "faster", "same within margin", "no change detected", "not enough runs")
COLUMNS = ["n_a", "n_b", "median_a", "median_b", "ratio", "lo", "hi", "p", "p_adj", "verdict", "note"]


def check_options(alpha: float, margin: float) -> None:
    """Refuse an ``alpha`` outside (0, 0.5] or a ``margin`` outside [0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 0.5:
        raise ParameterError("alpha", alpha, "a false-alarm rate in (0, 0.5], e.g. 0.05")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise ParameterError("margin", margin, "a fraction in [0, 1), e.g. 0.05 (changes within ±5% are not flagged)")


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, float)
    m, order = p.size, np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


@lru_cache(maxsize=512)
def best_p(n_a: int, n_b: int) -> float:
    """The smallest p-value the two-sided rank test can give with ``n_a`` and ``n_b`` runs
    (the two sides completely apart).

    >>> round(best_p(3, 3), 3), round(best_p(5, 5), 4)
    (0.1, 0.0079)
    """
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(np.arange(n_b) + n_a, np.arange(n_a), alternative="two-sided").pvalue)


def runs_to_reject(level: float, start: int = MIN_RUNS) -> int:
    """Fewest runs a side (the same on both) with which the rank test can reject at ``level``.

    >>> runs_to_reject(0.05), runs_to_reject(0.05 / 8)
    (4, 6)
    """
    n = start
    while best_p(n, n) >= level and n < 1000:
        n += 1
    return n


def _samples(name: str, values: Any) -> np.ndarray:
    x = np.asarray(values, float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ParameterError(name, x[:5].tolist(), "at least one finite time > 0 (seconds)")
    return x


def _band(margin: float) -> str:
    return f"±{margin:.0%}" if margin else "no change"


def _verdict(r: Any, p_adj: float, alpha: float, margin: float, m: int, n: tuple[int, int]) -> tuple[str, str]:
    """The verdict of one tested point and the note that goes with it."""
    down, up = equivalence_band(margin)
    rejects = p_adj < alpha
    if math.isnan(r.lo):
        why = r.note or "interval not available"
        return "no change detected", f"{why}; a change is flagged only when its interval shows it"
    if rejects and r.lo > up:
        return "slower", ""
    if rejects and r.hi < down:
        return "faster", ""
    if margin and r.lo >= down and r.hi <= up:
        return "same within margin", f"the interval lies within {_band(margin)}"
    span, level = f"{_pct(r.lo)} to {_pct(r.hi)}", alpha / m
    if best_p(*n) >= level:
        return "no change detected", (
            f"with {n[0]} and {n[1]} runs the rank test's smallest possible p ({best_p(*n):.2g}) is not below "
            f"α/{m} = {level:.2g}; use repeats >= {max(runs_to_reject(level), MIN_REPEATS)}"
        )
    if r.lo <= 1 <= r.hi:
        return (
            "no change detected",
            f"changes of {span} cannot be told from noise with these runs; more repeats narrow it",
        )
    if rejects:
        return (
            "no change detected",
            f"a change of {span} is likely, but not shown beyond {_band(margin)}; more repeats narrow it",
        )
    return "no change detected", (
        f"the interval ({span}) excludes no change but the rank test does not reject after correction "
        f"(p = {p_adj:.2g}); more repeats would settle it"
    )


def _pct(ratio: float) -> str:
    change = (ratio - 1) * 100
    return "unbounded" if not math.isfinite(ratio) else f"{change:+.0f}%" if abs(change) >= 1 else f"{change:+.1f}%"


def compare_samples(
    samples: Mapping[str, tuple[Any, Any]],
    *,
    alpha: float = ALPHA,
    margin: float = MARGIN,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare the repeats of A and B at each point, as one family of tests.

    Parameters
    ----------
    samples : mapping of str to (array-like, array-like)
        Point -> (A's wall times, B's wall times), in seconds.
    alpha : float, default 0.05
        Family-wise false-alarm rate over all tested points (Holm; intervals at ``1 - alpha/m``).
    margin : float, default 0.05
        Margin of practical equivalence: a change is flagged only when its interval lies
        wholly beyond ``1 + margin`` (or below ``1 / (1 + margin)``). 0 flags any change the
        test and interval show.
    seed : int, default 0
        Seed of the bootstrap (point ``i`` uses ``seed + i``).

    Returns
    -------
    pandas.DataFrame
        Indexed by point: ``n_a``, ``n_b``, ``median_a``, ``median_b`` (s), ``ratio``
        (``median_b / median_a``), ``lo``/``hi`` (its interval at ``confidence``; NaN where
        not available), ``p`` (rank test), ``p_adj`` (Holm), ``verdict`` (one of
        :data:`VERDICTS`), ``note`` (why, and what would resolve it), ``confidence``.
    """
    import pandas as pd
    from scipy.stats import mannwhitneyu

    check_options(alpha, margin)
    if not isinstance(samples, Mapping) or not samples:
        raise ParameterTypeError("samples", samples, "a non-empty mapping of point -> (A's times, B's times)")
    data = {k: (_samples(f"samples[{k!r}][0]", a), _samples(f"samples[{k!r}][1]", b)) for k, (a, b) in samples.items()}
    tested = [k for k, (a, b) in data.items() if min(a.size, b.size) >= MIN_RUNS]
    m = max(len(tested), 1)
    confidence = 1 - alpha / m
    p = {k: float(mannwhitneyu(data[k][1], data[k][0], alternative="two-sided").pvalue) for k in tested}
    p = {k: 1.0 if math.isnan(v) else v for k, v in p.items()}  # no variation at all: nothing to reject
    p_adj = dict(zip(tested, holm([p[k] for k in tested]).tolist()))
    n_boot = int(min(20_000, max(2_000, math.ceil(25 / ((1 - confidence) / 2)))))
    rows = []
    for i, (key, (a, b)) in enumerate(data.items()):
        ratio = float(np.median(b) / np.median(a))
        row = {"n_a": a.size, "n_b": b.size, "median_a": float(np.median(a)), "median_b": float(np.median(b))}
        if key not in p:
            fewest = "one run" if min(a.size, b.size) == 1 else f"{min(a.size, b.size)} runs"
            note = (
                f"{fewest} on a side: a change is never judged on fewer than {MIN_RUNS}; use repeats >= {MIN_REPEATS}"
            )
            nan = {"lo": math.nan, "hi": math.nan, "p": math.nan, "p_adj": math.nan}
            rows.append({**row, "ratio": ratio, **nan, "verdict": "not enough runs", "note": note})
            continue
        r = ratio_estimate(b, a, n_boot=n_boot, confidence=confidence, seed=seed + i)
        verdict, note = _verdict(r, p_adj[key], alpha, margin, m, (a.size, b.size))
        tested_row = {"ratio": r.value, "lo": r.lo, "hi": r.hi, "p": p[key], "p_adj": p_adj[key]}
        rows.append({**row, **tested_row, "verdict": verdict, "note": note})
    out = pd.DataFrame(rows, index=pd.Index(list(data), name="point"), columns=COLUMNS)
    out["confidence"] = confidence
    return out


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

    @property
    def tested(self) -> int:
        """Points tested (enough runs on both sides): the family the correction is over."""
        return int((self.points["verdict"] != "not enough runs").sum())

    def counts(self) -> dict[str, int]:
        """How many points got each verdict."""
        return {v: int((self.points["verdict"] == v).sum()) for v in VERDICTS}

    def summary(self) -> str:
        """The comparison in a few sentences: verdicts, how they were tested, what was left out."""
        c, n = self.counts(), len(self.points)
        said = [f"{c[v]} {v}" for v in VERDICTS if c[v]]
        text = f"{n} point{'s' if n != 1 else ''} compared (B against A, median wall time): {', '.join(said)}."
        if self.tested:
            level = self.points["confidence"].iloc[0]
            text += (
                f" A point is flagged only when Mann–Whitney's test rejects at α={self.alpha:g} after Holm's "
                f"correction over {self.tested} point{'s' if self.tested != 1 else ''} and its {level:.2%} interval "
                f"lies beyond {_band(self.margin)}."
            )
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
    dicts = [json.loads(p) for p in ok["point"]]
    ok["_key"] = [_key(d, ignore) for d in dicts]
    merged = ok.groupby("_key")["point"].nunique()
    if ignore and (merged > 1).any():
        key = merged[merged > 1].index[0]
        values = sorted({json.dumps({n: d.get(n) for n in ignore}) for d, k in zip(dicts, ok["_key"]) if k == key})
        raise ParameterError(
            "ignore", list(ignore), f"parameters with one value per point of {name}; {name} holds {', '.join(values)}"
        )
    return ok, left_out


def _loaded(rows: pd.DataFrame) -> Any:
    """Trials flagged under outside load; None where the load was not measured."""
    flags = rows["under_load"].dropna() if "under_load" in rows else ()
    return None if len(flags) == 0 else int(flags.astype(bool).sum())


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
    """Match two trials frames by grid point and compare their ok trials' wall times.

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
        ``points`` holds :func:`compare_samples`'s columns plus ``label``, ``loaded_a`` and
        ``loaded_b`` (trials under outside load; None: not measured) and ``fingerprints_a``/``fingerprints_b`` (None: not recorded).
    """
    check_options(alpha, margin)
    if isinstance(ignore, str) or not all(isinstance(n, str) for n in ignore):
        raise ParameterTypeError("ignore", ignore, "a list of parameter names, e.g. ['work_s']")
    ignore = tuple(ignore)
    ok_a, lost_a = _side(a, "A", ignore)
    ok_b, lost_b = _side(b, "B", ignore)
    known = {n for p in [*ok_a["point"], *ok_b["point"]] for n in json.loads(p)} - {"workload", "workers"}
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
    samples = {k: (groups_a[k]["wall_s"].to_numpy(float), groups_b[k]["wall_s"].to_numpy(float)) for k in common}
    points = compare_samples(samples, alpha=alpha, margin=margin, seed=seed)
    labels = point_labels(common)
    points.insert(0, "label", [labels[k] for k in common])
    points["loaded_a"] = [_loaded(groups_a[k]) for k in common]
    points["loaded_b"] = [_loaded(groups_b[k]) for k in common]
    points["fingerprints_a"] = [_fingerprints(groups_a[k]) for k in common]
    points["fingerprints_b"] = [_fingerprints(groups_b[k]) for k in common]
    ignored: dict[str, dict[str, list[str]]] = {}
    for n in ignore:
        for side, ok in (("A", ok_a), ("B", ok_b)):
            values = sorted({_show(json.loads(p).get(n)) for p, k in zip(ok["point"], ok["_key"]) if k in common})
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
    )
