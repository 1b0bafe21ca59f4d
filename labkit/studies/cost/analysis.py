"""The cost study's answers: cloud cost per unit of work against workers and device, the cheapest
configuration that meets a time target, and electricity, each from the core's cost analysis.

The arithmetic and the words live in the core (:mod:`labkit.analysis.cost`,
:mod:`labkit.analysis.cheapest`, :mod:`labkit.analysis.electricity`); this module gathers
the notebook's trials and puts the answers together. Every answer goes through
:func:`~labkit.analysis.trust.trusted`: trials that ran under outside load are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.analysis import cost as costs
from labkit.analysis.cheapest import describe_cheapest
from labkit.analysis.electricity import describe_electricity, electricity_table
from labkit.analysis.trust import trusted
from labkit.common.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

    from labkit.analysis.prices import PriceSnapshot
    from labkit.common.conclusion import Conclusion


def trials(*results: Any) -> pd.DataFrame:
    """The trials of several sweeps (their ``Results`` or frames) as one frame."""
    import pandas as pd

    frames = [getattr(r, "frame", r) for r in results]
    if not frames or not all(isinstance(f, pd.DataFrame) for f in frames):
        raise ParameterError("results", results, "one or more sweeps' Results (or their trials frames)")
    return pd.concat(frames, ignore_index=True)


def cost_table(frame: pd.DataFrame, prices: PriceSnapshot, *, startup: Any, runs: Any = None) -> pd.DataFrame:
    """Cost per 10⁹ units of work per point and instance type (:func:`labkit.analysis.cost.cost_table`)."""
    return costs.cost_table(frame, prices, startup=startup, runs=runs)


def describe_cost(
    frame: pd.DataFrame, prices: PriceSnapshot, target_s: float, *, startup: Any, runs: Any = None
) -> Conclusion:
    """Where the prices came from, what was billed, each point's time against ``target_s``, and the
    cheapest configuration that meets it (or that none does, or which cannot be told apart).

    The whole run is billed first (:func:`labkit.analysis.cost.bill`), then the trials that
    may not carry a claim are left out: the time they took stays billed to their points.
    """
    return _describe_billed(costs.bill(frame, startup=startup, runs=runs), prices, target_s)


@trusted
def _describe_billed(billed: pd.DataFrame, prices: PriceSnapshot, target_s: float) -> str:
    table = costs.cost_table(billed, prices)
    snapshot = costs.snapshot_of(table, "a cost answer")
    lines = [
        snapshot.describe(),
        "Billed time: each point as its own job, its timed runs plus an equal share of the idle time the run "
        f"spent on it (median {table['idle_s'].median():.3g} s per run) and of one start-up of its cluster "
        f"(median {table['startup_s'].median():.3g} s per run); workers × price per worker-hour × billed time "
        "/ units of work.",
        describe_cheapest(table, target_s),
    ]
    missing = [d for d in ("cpu", "gpu") if d not in set(table["device"])]
    lines += [f"{d.upper()} workers: not measured (no {d} trials in this run)." for d in missing]
    return "\n".join(lines)


def energy_table(frame: pd.DataFrame, prices: PriceSnapshot) -> pd.DataFrame:
    """Energy and electricity per 10⁹ units of work per point (:func:`labkit.analysis.electricity.electricity_table`)."""
    return electricity_table(frame, prices)


@trusted
def describe_energy(frame: pd.DataFrame, prices: PriceSnapshot) -> str:
    """Each point's energy per unit of work and its electricity cost, with how the energy was obtained."""
    return describe_electricity(electricity_table(frame, prices))
