"""The cost of reaching a cluster, measured through each local stand-in of a cluster manager in turn.

:func:`compare_managers` is what notebook 13 calls: for each name it starts the stand-in
(:mod:`.standins`), adopts it with a Lab, measures it (:func:`~.run.measure_reach`) and closes
the Lab, the cluster and everything the stand-in started, whatever happened. A stand-in
whose packages are missing is skipped, and the result's notes say so and what to install.

>>> compare_managers(["slurm"])
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: managers=['slurm'] is not allowed: a list of names from 'gateway-local', 'jobqueue-local'
"""

from __future__ import annotations

from typing import Any

from labkit.cluster import Lab
from labkit.common.errors import ParameterError

from . import standins
from .results import Reach
from .run import check_inputs, measure_reach


def check_managers(names: Any) -> list[str]:
    """The stand-ins asked for, as a list; a ParameterError for anything else."""
    known = sorted(standins.MANAGERS)
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or any(n not in known for n in names):
        raise ParameterError("managers", names, f"a list of names from {', '.join(repr(k) for k in known)}")
    return list(dict.fromkeys(names))


def compare_managers(managers: Any, **params: Any) -> Reach:
    """:func:`measure_reach` through each stand-in in ``managers``; ``params`` go to it.

    Every argument is checked before the first stand-in starts.
    """
    names = check_managers(managers)
    defaults = {k: v.default for k, v in _signature().parameters.items() if k not in ("lab",)}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ParameterError(unknown[0], params[unknown[0]], f"a keyword of measure_reach: {', '.join(defaults)}")
    check_inputs({**defaults, **params})
    parts, notes = [], []
    if not names:
        notes.append("No cluster manager was measured (managers is empty).")
    for name in names:
        gone = standins.missing(name)
        if gone:
            notes.append(f"Skipped {name}: {', '.join(gone)} not installed ({standins.INSTALL}).")
            continue
        with standins.stand_in(name) as cluster, Lab(cluster=cluster, dashboard=False) as lab:
            parts.append(measure_reach(lab, **{"manager": name, **params}))
    return Reach.combine(parts, notes)


def _signature() -> Any:
    import inspect

    return inspect.signature(measure_reach)
