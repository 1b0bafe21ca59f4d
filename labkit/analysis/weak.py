"""Weak scaling: the problem grows with the workers; sizes, grids, scaled speedup.

The efficiency of weak scaling is called below (or above) ideal only when its interval
excludes 100%, and only from the trials :func:`~labkit.analysis.trust.admit` keeps (those
under outside load are left out, and the sentence says how many); otherwise the sentence
says the runs cannot tell it from ideal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_workers

from .frames import point_params, require, varying
from .intervals import direction, percent, ratio_estimate
from .trust import admit

if TYPE_CHECKING:
    import pandas as pd


def weak_sizes(
    base: float, workers: list[int], *, exponent: float = 1.0, integer: bool = False
) -> list[float] | list[int]:
    """Problem sizes that grow the work in step with the workers, for a weak-scaling grid.

    ``exponent`` is how the work grows with the size: 1 for array bytes or table rows, 3
    for the side ``n`` of a matrix multiply (2n³ flops).

    >>> weak_sizes(64.0, [1, 2, 4])
    [64.0, 128.0, 256.0]
    >>> weak_sizes(1024, [1, 2, 8], exponent=3, integer=True)
    [1024, 1290, 2048]
    """
    if not workers or min(workers) < 1:
        raise ParameterError("workers", workers, "a non-empty list of worker counts >= 1")
    w0 = min(workers)
    sizes = [base * (w / w0) ** (1 / exponent) for w in sorted(set(workers))]
    return [round(s) for s in sizes] if integer else [float(s) for s in sizes]


def weak_grid(
    size: str, base: float, workers: list[int], *, exponent: float = 1.0, integer: bool = False
) -> list[dict[str, Any]]:
    """The diagonal of a weak-scaling sweep as explicit grid points: one size per worker count.

    A product grid of workers × :func:`weak_sizes` gives strong and weak scaling from one
    sweep but costs N² points; this costs N.

    >>> weak_grid("size_mb", 64.0, [1, 2])
    [{'workers': 1, 'size_mb': 64.0}, {'workers': 2, 'size_mb': 128.0}]
    """
    sizes = weak_sizes(base, workers, exponent=exponent, integer=integer)
    return [{"workers": w, size: s} for w, s in zip(sorted(set(workers)), sizes)]


def weak_scaling(frame: pd.DataFrame, size: str, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Scaled speedup and weak-scaling efficiency: the problem grows with the workers.

    For each worker count ``w``, the point whose work (``amount`` of a run) is ``w/w0`` times
    the baseline's (fewest workers ``w0``, smallest ``size``), within ``tolerance``, is
    compared with the baseline: scaled speedup ``X(w, n)/X(w0, n0)`` (work per second;
    ideal ``w/w0``) and efficiency ``scaled speedup / (w/w0)``, which is
    ``T(w0, n0) / T(w, n0·w/w0)`` when the work grows exactly with the workers. Other
    varying parameters are separate series. A workers × sizes grid holds both the strong
    (fixed size) and the weak (the diagonal) series; :func:`weak_sizes` makes the sizes.
    Intervals are NaN where not available (the baseline; fewer than 5 runs on a side), and
    ``note`` says why.
    """
    import pandas as pd

    require(frame, ("point", "status", "throughput", "workers", "amount"))
    ok = frame[frame["status"] == "ok"]
    params = point_params(ok)
    if ok.empty or size not in params.columns:
        raise ParameterError(
            "size",
            size,
            f"a parameter of the successful trials: {', '.join(c for c in params.columns if c not in ('workload', 'workers')) or 'none'}",
        )
    others = ["workload", *[n for n in varying(ok) if n != size]]
    rows = []
    for _, g in ok.groupby(params[others].astype(str).agg("|".join, axis=1), sort=False):
        gp = params.loc[g.index]
        points = {(int(w), float(s)): gg for (w, s), gg in g.groupby([gp["workers"], gp[size]])}
        w0 = min(w for w, _ in points)
        n0 = min(s for w, s in points if w == w0)
        base = points[(w0, n0)]
        a0 = float(base["amount"].median())
        for w in sorted({w for w, _ in points}):
            target = a0 * w / w0
            found = [
                (abs(float(gg["amount"].median()) / target - 1), s, gg) for (ww, s), gg in points.items() if ww == w
            ]
            err, s, gg = min(found, key=lambda t: t[0])
            if err > tolerance:
                continue
            if w == w0:
                x, lo, hi, note = 1.0, float("nan"), float("nan"), "baseline: scaled speedup 1 by definition"
            else:
                x, lo, hi, note = ratio_estimate(gg["throughput"].to_numpy(float), base["throughput"].to_numpy(float))
            ideal = w / w0
            rows.append(
                {
                    **{n: gp.iloc[0][n] for n in others},
                    "workers": w,
                    "baseline_workers": w0,
                    size: s,
                    f"baseline_{size}": n0,
                    "work_ratio": float(gg["amount"].median()) / a0,
                    "repeats": len(gg),
                    "scaled_speedup": x,
                    "scaled_speedup_lo": lo,
                    "scaled_speedup_hi": hi,
                    "efficiency": x / ideal,
                    "efficiency_lo": lo / ideal,
                    "efficiency_hi": hi / ideal,
                    "note": note,
                }
            )
    table = pd.DataFrame(rows)
    if table.empty or not (table["workers"] > table["baseline_workers"]).any():
        raise DataError(
            f"no point whose work grows with the workers (by {size})",
            f"needs for each worker count w a {size} whose run does w/w0 times the baseline's work (see weak_sizes)",
        )
    return table


def _admitted_table(frame: pd.DataFrame, size: str) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """The table from every ok trial (for the estimate), the one from the admitted trials
    (None where too few are left for one) and what was left out, in words."""
    table = weak_scaling(frame, size)
    a = admit(frame)
    if not a.loaded:
        return table, table, a.note
    try:
        return table, weak_scaling(a.frame, size), a.note
    except (DataError, ParameterError):
        return table, None, a.note


def _verdict(top: pd.Series, clean: pd.DataFrame | None) -> tuple[pd.Series, str]:
    """The row a direction may come from, and that direction in words."""
    if clean is not None:
        same = clean[clean["workload"].eq(top["workload"]) & clean["workers"].eq(top["workers"])]
        if len(same):
            top = same.iloc[-1]
        else:
            top = top.copy()
            top["efficiency_lo"] = top["efficiency_hi"] = float("nan")
            top["note"] = (
                "too many of its trials ran under outside load to leave out; a quieter machine would settle it"
            )
    way = direction(top["efficiency_lo"], top["efficiency_hi"])
    return top, {
        "down": "below ideal (the interval excludes 100%)",
        "up": "above ideal (the interval excludes 100%)",
        "unclear": "these runs cannot tell it from ideal (the interval includes 100%); more repeats or a quieter machine would help",
        "unknown": f"no comparison with ideal is claimed ({top['note']})",
    }[way]


def describe_weak_scaling(frame: pd.DataFrame, size: str) -> str:
    """A sentence per series: how much of the baseline's speed per unit of work remained.

    Below or above ideal only where the efficiency's interval excludes 100%, from the
    trials not under outside load; the last sentence says what was left out.
    """
    table, clean, note = _admitted_table(frame, size)
    lines = []
    for _, g in table.groupby("workload", sort=False):
        top = g.iloc[-1]
        if clean is None:
            top = top.copy()
            top["efficiency_lo"] = top["efficiency_hi"] = float("nan")
            top["note"] = "too many trials ran under outside load to leave out; a quieter machine would settle it"
        top, verdict = _verdict(top, clean)
        w, w0 = int(top["workers"]), int(top["baseline_workers"])
        lines.append(
            f"Weak scaling of {top['workload']}: {format_workers(w)} on {top['work_ratio']:.3g}× the work "
            f"({size}={top[size]:g}) kept {percent(top['efficiency'], top['efficiency_lo'], top['efficiency_hi'])} "
            f"of the speed of {format_workers(w0)} on {size}={top[f'baseline_{size}']:g}: a scaled speedup of "
            f"{top['scaled_speedup']:.2f}× where {w / w0:g}× is ideal; {verdict}."
        )
    if note:
        lines.append(f"Outside load: {note}.")
    return "\n".join(lines)
