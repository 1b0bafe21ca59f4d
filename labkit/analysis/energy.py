"""Energy per unit of work, said with how it was obtained: measured, estimated, or not known.

Each trial's ``energy_method`` (see :mod:`labkit.measure.energy`) says where its
``energy_j`` came from. Here:

- :func:`estimate_energy` fills the trials no sensor measured with an estimate: the workers'
  measured CPU-seconds × a watts-per-core the user declares, the assumption stored beside it
  (``energy_assumption``). A measured value is never replaced.
- :func:`energy_per_unit` gives joules per unit of work (the workload's ``amount``) per
  grid point: the median over repeats with its interval (:func:`median_estimate`), from the
  measured trials where there are any, else from estimates; never the two mixed.
- :func:`energy_words` and :func:`energy_cell` say it in words, the method always named.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.common.format import format_number
from labkit.measure.energy import BELOW_RESOLUTION, ESTIMATE, NOT_MEASURED, is_measured

from .frames import point_params, require, varying
from .intervals import CONFIDENCE, median_estimate

if TYPE_CHECKING:
    import pandas as pd

UNRECORDED = "measured, method not recorded"
"""The method of a stored trial with a measured energy from before methods were recorded."""


def energy_methods(frame: pd.DataFrame) -> pd.Series:
    """Each trial's energy method; trials stored before methods were recorded get
    :data:`UNRECORDED` where they hold a value, ``"not measured"`` where not."""
    import pandas as pd

    joules = _column(frame, "energy_j")
    legacy = pd.Series(np.where(joules.notna(), UNRECORDED, NOT_MEASURED), index=frame.index)
    if "energy_method" not in frame:
        return legacy
    return frame["energy_method"].where(frame["energy_method"].notna(), legacy).astype(str)


def measured(frame: pd.DataFrame) -> pd.Series:
    """True where a trial's energy was read from a sensor (never for an estimate)."""
    methods = energy_methods(frame)
    return methods.map(lambda m: is_measured(m) or m == UNRECORDED) & _column(frame, "energy_j").notna()


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    import pandas as pd

    if name in frame:
        return pd.to_numeric(frame[name], errors="coerce")
    return pd.Series(np.nan, index=frame.index, dtype=float)


def cpu_seconds(frame: pd.DataFrame) -> pd.Series:
    """The workers' measured CPU-seconds per trial: ``cpu_seconds`` where the Monitor stored it,
    else mean CPU % / 100 × workers × ``wall_s``; NaN where CPU was not measured."""
    stored = _column(frame, "cpu_seconds")
    derived = _column(frame, "cpu_percent_mean") / 100 * _column(frame, "workers") * _column(frame, "wall_s")
    return stored.where(stored.notna(), derived)


def _check_watts(watts_per_core: Any) -> float:
    allowed = (
        "the watts one busy core draws, a number > 0 you declare (e.g. 10); it is an assumption, not a measurement"
    )
    if watts_per_core is None or isinstance(watts_per_core, bool) or not isinstance(watts_per_core, numbers.Real):
        raise ParameterError("watts_per_core", watts_per_core, allowed)
    if not (math.isfinite(watts_per_core) and watts_per_core > 0):
        raise ParameterError("watts_per_core", watts_per_core, allowed)
    return float(watts_per_core)


def assumption_words(watts_per_core: float) -> str:
    """The assumption behind an estimate, in words.

    >>> assumption_words(10)
    '10 W per busy core × measured CPU-seconds of the workers (declared, not measured)'
    """
    return f"{format_number(watts_per_core)} W per busy core × measured CPU-seconds of the workers (declared, not measured)"


def estimate_energy(frame: pd.DataFrame, watts_per_core: float | None = None) -> pd.DataFrame:
    """A new trials frame where each trial without a measured energy gets an estimate.

    The estimate is the workers' measured CPU-seconds (:func:`cpu_seconds`) × ``watts_per_core``:
    it counts the CPU cores only, at a power the user declares. Those trials get
    ``energy_method="estimate"``, ``energy_j``, ``energy_watts_per_core`` and
    ``energy_assumption`` (the assumption in words). A measured value is never replaced;
    a trial whose CPU was not measured (or read 0) keeps its method, its energy unknown.
    The CPU figures come from the workers' heartbeats (every 0.5 s on small clusters), so a
    trial shorter than one is estimated from the CPU of the heartbeat around it.

    Parameters
    ----------
    frame : DataFrame
        Trials (``Results.frame``).
    watts_per_core : float
        Watts one busy core draws, declared by the user (e.g. a CPU's TDP / its cores).

    Returns
    -------
    DataFrame

    >>> import pandas as pd
    >>> f = pd.DataFrame({"energy_j": [None, 5.0], "energy_method": ["not measured", "rapl"],
    ...                   "cpu_seconds": [2.0, 3.0]})
    >>> estimate_energy(f, watts_per_core=10)[["energy_j", "energy_method"]].values.tolist()
    [[20.0, 'estimate'], [5.0, 'rapl']]
    """
    watts = _check_watts(watts_per_core)
    out = frame.copy()
    methods = energy_methods(out)
    seconds = cpu_seconds(out)
    todo = ~measured(out) & methods.ne(ESTIMATE) & seconds.gt(0)
    words = assumption_words(watts)
    below = f"{words}; the sensor's reading was below its resolution"
    out["energy_method"] = methods.where(~todo, ESTIMATE)
    out["energy_j"] = _column(out, "energy_j").where(~todo, seconds * watts)
    if "energy_assumption" not in out:
        out["energy_assumption"] = None
    out["energy_assumption"] = out["energy_assumption"].astype(object)
    out.loc[todo, "energy_assumption"] = np.where(methods[todo].eq(BELOW_RESOLUTION), below, words)
    out["energy_watts_per_core"] = _column(out, "energy_watts_per_core").where(~todo, watts)
    return out


def _pick(rows: pd.DataFrame) -> tuple[str, pd.DataFrame, str]:
    """The kind of energy a point's ok trials give: ``(method, rows used, note)``.

    Measured trials where there are any, else estimates, else the reason there is none;
    the note says how many of the trials were left out and why.
    """
    methods = energy_methods(rows)
    joules = _column(rows, "energy_j")
    usable = joules.gt(0) & _column(rows, "amount").gt(0)
    for keep in (measured(rows) & usable, methods.eq(ESTIMATE) & usable):
        if keep.any():
            used = rows[keep.to_numpy()]
            left = methods[~keep].value_counts()
            note = "; ".join(f"{n} of {len(rows)} trials {m.replace('-', ' ')}" for m, n in left.items())
            return ", ".join(sorted(methods[keep].unique())), used, note
    method = BELOW_RESOLUTION if methods.eq(BELOW_RESOLUTION).any() else NOT_MEASURED
    return method, rows.iloc[:0], ""


def energy_per_unit(frame: pd.DataFrame, *, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Joules per unit of work per grid point, with its method and interval.

    One row per point of the ok trials: ``workers``, the parameters that vary, ``unit``
    (what the workload counts), ``energy_method``, ``j_per_unit`` (median over the repeats
    of ``energy_j / amount``) with ``lo``/``hi`` (NaN where repeats do not allow one, and
    ``note`` says why), ``trials`` used, ``energy_assumption`` for estimates. Where no
    method gave a value, ``j_per_unit`` is NaN and ``energy_method`` says
    ``below-resolution`` or ``not measured``.
    """
    import pandas as pd

    require(frame, ("point", "status", "amount", "unit", "workers"))
    ok = frame[frame["status"] == "ok"]
    names, params = varying(ok), point_params(ok)
    rows = []
    for point, g in ok.groupby("point", sort=False):
        method, used, note = _pick(g)
        per_unit = (used["energy_j"] / used["amount"]).to_numpy(float)
        value = median_estimate(per_unit, confidence=confidence) if len(used) else None
        assumption = used["energy_assumption"].dropna().unique() if "energy_assumption" in used else []
        first = params.loc[g.index[0]]
        rows.append(
            {
                "point": point,
                "workload": first["workload"],
                "workers": int(first["workers"]),
                **{n: first[n] for n in names},
                "unit": g["unit"].iloc[0],
                "energy_method": method,
                "j_per_unit": value.value if value else math.nan,
                "lo": value.lo if value else math.nan,
                "hi": value.hi if value else math.nan,
                "trials": len(used),
                "energy_assumption": "; ".join(assumption) or None,
                "note": "; ".join(n for n in (value.note if value else "", note) if n),
            }
        )
    return pd.DataFrame(rows)


_PREFIXES = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))
_SHORT = {"bytes": "B", "flops": "FLOP"}


def per_unit_scale(unit: str, values: Any) -> tuple[float, str]:
    """A multiplier for joules per ``unit`` and the amount it is then per, so the figures read
    in everyday numbers: ``(1e9, "GB")`` for joules per byte around 1e-9.

    >>> per_unit_scale("bytes", [2e-9, 3e-9]), per_unit_scale("rows", [0.5]), per_unit_scale("rows", [4e-6])
    ((1000000000.0, 'GB'), (1.0, 'row'), (1000000.0, 'M rows'))
    """
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    top = float(np.max(finite)) if finite.size else 1.0
    scale, prefix = next(((s, p) for s, p in _PREFIXES if top * s >= 0.1), _PREFIXES[-1])
    if unit in _SHORT:
        return scale, f"{prefix}{_SHORT[unit]}"
    return scale, f"{prefix} {unit}" if prefix else unit.removesuffix("s")


def energy_words(row: Any, scale: float = 1.0, per: str | None = None) -> str:
    """One point of :func:`energy_per_unit` in words, the method always named.

    ``scale`` multiplies the figure, then per ``per`` (see :func:`per_unit_scale`).

    >>> energy_words({"j_per_unit": 2.0, "lo": 1.5, "hi": 2.5, "unit": "items", "energy_method": "rapl"})
    '2 J per item (1.5–2.5 J per item), measured (rapl)'
    >>> energy_words({"j_per_unit": 2e-9, "lo": 1e-9, "hi": 3e-9, "unit": "bytes", "energy_method": "estimate",
    ...               "energy_assumption": "10 W per busy core"}, 1e9, "GB")
    '2 J per GB (1–3 J per GB), an estimate (10 W per busy core)'
    >>> energy_words({"j_per_unit": float("nan"), "unit": "items", "energy_method": "below-resolution"})
    'below resolution: the trials were shorter than the sensor can resolve'
    """
    from .intervals import show

    method = row["energy_method"]
    if not (row["j_per_unit"] == row["j_per_unit"]):  # NaN: no value
        if method == BELOW_RESOLUTION:
            return "below resolution: the trials were shorter than the sensor can resolve"
        return "not measured"
    unit = per or _SHORT.get(row["unit"]) or str(row["unit"]).removesuffix("s")
    figure = show(row["j_per_unit"], row["lo"], row["hi"], scale, f" J per {unit}")
    if method == ESTIMATE:
        return f"{figure}, an estimate ({row.get('energy_assumption') or 'assumption not recorded'})"
    return f"{figure}, measured ({method})"


def energy_cell(rows: pd.DataFrame) -> str:
    """A point's energy per trial for a table: ``'1.23 J (rapl)'``, ``'4.5 J (estimate)'``,
    ``'below resolution'`` or ``'not measured'``."""
    method, used, _ = _pick(rows.assign(amount=1.0) if "amount" not in rows else rows)
    if not len(used):
        return "below resolution" if method == BELOW_RESOLUTION else NOT_MEASURED
    return f"{float(used['energy_j'].median()):.3g} J ({method})"
