"""Which trials may carry a direction: the one filter every claim in labkit goes through.

A sentence that says faster, slower, sooner, more or less rests on trials. Not every trial
may carry that weight:

- a trial that did not finish ``ok`` (failed, timed out, or ``degraded``: a worker left
  mid-run, so its lost work was recomputed inside the timed region) carries nothing;
- a trial flagged ``under_load`` (other processes on the machine used more than
  :class:`~labkit.measure.alerts.AlertRules` allows while it ran) measured that load as much
  as the work: it is left out of every claim, and the sentence says how many were;
- a trial whose load was **not measured** (``under_load`` is None: the cluster's processes
  changed while it ran, or an adopted cluster did not answer) may carry a direction, and
  the sentence says the load was not measured for it — never "no load".

:func:`admit` applies the rule to a trials frame; :attr:`Admitted.note` words what it left
out, :func:`load_words` the load column of a table ("no", "yes (k of n trials)", "not
measured"). Where every trial of a comparison ran under load nothing is left to claim from,
and :attr:`Admitted.empty` says so: the caller states its estimate and claims no direction.
A study's ``describe_*`` functions take the rule with the :func:`trusted` decorator: they see
only the admitted trials, and their answer ends with what was left out (:func:`footer`) and,
where it gives several 95% intervals, that they are not adjusted for their number.

>>> import pandas as pd
>>> f = pd.DataFrame({"status": ["ok", "ok", "ok", "degraded"], "under_load": [False, True, None, None]})
>>> a = admit(f)
>>> len(a.frame), a.loaded, a.unknown, a.degraded
(2, 1, 1, 1)
>>> a.note
'left out 1 of 3 trials that ran under outside load; outside load not measured for 1; 1 degraded trial (a worker lost mid-run) left out'
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.common.conclusion import Conclusion
from labkit.common.errors import DataError, ParameterError

if TYPE_CHECKING:
    import pandas as pd


def _flag(value: Any) -> bool | None:
    """A stored ``under_load`` as True, False or None (not measured)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return bool(value)


def load_flags(frame: pd.DataFrame) -> list[bool | None]:
    """Each trial's ``under_load`` as True, False or None (not measured; also where the column is missing)."""
    if "under_load" not in frame:
        return [None] * len(frame)
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(frame["under_load"], use_na_sentinel=True)  # a flag read once per value
    return np.array([*(_flag(u) for u in uniques), None], dtype=object)[codes].tolist()


@dataclass(frozen=True)
class Admitted:
    """The trials that may carry a direction, and what was left out and why."""

    frame: pd.DataFrame
    total: int
    loaded: int
    unknown: int
    degraded: int

    @property
    def empty(self) -> bool:
        """Nothing left to claim from."""
        return self.frame.empty

    @property
    def note(self) -> str:
        """What was left out, or kept with a caveat, in words ("" when nothing was)."""
        parts = []
        if self.loaded:
            parts.append(f"left out {self.loaded} of {self.total} trials that ran under outside load")
        if self.unknown:
            parts.append(f"outside load not measured for {self.unknown}")
        if self.degraded:
            trials = "trial" if self.degraded == 1 else "trials"
            parts.append(f"{self.degraded} degraded {trials} (a worker lost mid-run) left out")
        return "; ".join(parts)


def admit(frame: pd.DataFrame) -> Admitted:
    """The ok trials that may carry a direction: not degraded, not under outside load.

    Parameters
    ----------
    frame : DataFrame
        Trials (``Results.frame``): ``status`` and, where measured, ``under_load``.

    Returns
    -------
    Admitted
        ``frame`` the admitted trials; ``total`` the ok trials; ``loaded`` those left out
        for outside load; ``unknown`` admitted ones whose load was not measured;
        ``degraded`` trials that lost a worker.
    """
    status = frame["status"] if "status" in frame else None
    degraded = int(status.eq("degraded").sum()) if status is not None else 0
    ok = frame[status.eq("ok")] if status is not None else frame
    flags = load_flags(ok)
    keep = [f is not True for f in flags]
    return Admitted(
        frame=ok[keep],
        total=len(ok),
        loaded=sum(f is True for f in flags),
        unknown=sum(f is None for f in flags),
        degraded=degraded,
    )


def load_words(frame: pd.DataFrame) -> str:
    """``"no"``, ``"yes (k of n trials)"`` or ``"not measured"`` (some or all trials' load unknown).

    >>> import pandas as pd
    >>> load_words(pd.DataFrame({"under_load": [False, None]}))
    'no (not measured for 1 of 2 trials)'
    >>> load_words(pd.DataFrame({"under_load": [None]})), load_words(pd.DataFrame({"under_load": [True, False]}))
    ('not measured', 'yes (1 of 2 trials)')
    """
    flags = load_flags(frame)
    if not flags or all(f is None for f in flags):
        return "not measured"
    k, unknown = sum(f is True for f in flags), sum(f is None for f in flags)
    said = "no" if k == 0 else f"yes ({k} of {len(flags)} trials)"
    if unknown and k == 0:
        said += f" (not measured for {unknown} of {len(flags)} trials)"
    elif unknown:
        said = said[:-1] + f"; not measured for {unknown})"
    return said


def admitted(frame: pd.DataFrame) -> tuple[pd.DataFrame, Admitted]:
    """``frame`` less the ok trials :func:`~labkit.analysis.trust.admit` leaves out (under outside load),
    and what it left out: every claimed direction comes from these trials."""
    a = admit(frame)
    ok = frame.index[frame["status"].eq("ok")] if "status" in frame else frame.index
    return frame.drop(ok.difference(a.frame.index)), a


def footer(text: str, a: Admitted) -> Conclusion:
    """``text``'s lines as the answers, and as caveats what the claims left out and, where it
    gives several intervals, that they are not adjusted (a :class:`~labkit.common.conclusion.Conclusion`,
    formatted in Jupyter)."""
    k = len(re.findall(r"95% interval(?!s)", text))
    unadjusted = f" Each interval is at 95%, not adjusted for the {k} comparisons in this answer." if k > 1 else ""
    return Conclusion(text.split("\n"), [f"Trials: {a.note or 'none ran under outside load'}.{unadjusted}"])


def _nothing_left(a: Admitted, why: str = "") -> Conclusion:
    return Conclusion([f"No trial is left to claim from: {a.note}; nothing is claimed{f' ({why})' if why else ''}."])


def _admit_all(args: tuple[Any, ...]) -> tuple[list[Any], Admitted | None]:
    """Each trials frame among ``args`` (or in a mapping of them) admitted, and the sum of what was left out."""
    import pandas as pd

    out, seen = [], []

    def one(x: Any) -> Any:
        if isinstance(x, pd.DataFrame) and "status" in x:
            kept, a = admitted(x)
            seen.append(a)
            return kept
        return x

    for arg in args:
        out.append({k: one(v) for k, v in arg.items()} if isinstance(arg, Mapping) else one(arg))
    if not seen:
        return out, None
    total = Admitted(
        pd.concat([a.frame for a in seen]),
        *(sum(getattr(a, f) for a in seen) for f in ("total", "loaded", "unknown", "degraded")),
    )
    return out, total


def trusted(describe: Callable[..., str]) -> Callable[..., Conclusion]:
    """``describe`` given only the admitted trials of each frame it takes, its answer ending with
    :func:`footer`: a :class:`~labkit.common.conclusion.Conclusion`, formatted in Jupyter."""

    @functools.wraps(describe)
    def wrapper(*args: Any, **kwargs: Any) -> Conclusion:
        args_, a = _admit_all(args)
        if a is None:
            return Conclusion.of(describe(*args, **kwargs))
        if a.empty and a.loaded:
            return _nothing_left(a)
        try:
            text = describe(*args_, **kwargs)
        except (DataError, ParameterError) as e:
            if not a.loaded:
                raise
            return _nothing_left(a, str(e))
        return footer(text, a)

    return wrapper
