"""Cost and energy: what a unit of work costs on cloud instances and in electricity (notebook 12).

Cloud cost is a labelled estimate from list prices (:mod:`labkit.analysis.prices`: the shipped
table, or the user's own) and the time the cluster was held, start-up and idle time included
(:mod:`labkit.analysis.cost`); electricity is energy × a declared price per kWh, shown apart
(:mod:`labkit.analysis.electricity`); where no sensor read the energy, an estimate from
measured CPU-seconds × a declared power per core (:func:`labkit.analysis.energy.estimate_energy`).

>>> from labkit.studies import cost
"""

from __future__ import annotations

from labkit.analysis.energy import estimate_energy
from labkit.analysis.prices import load_prices

from .analysis import cost_table, describe_cost, describe_energy, energy_table, trials
from .figures import cost_figure, energy_figure
from .plan import run_all, sweeps
from .startup import measure_startup, stored_runs

__all__ = [
    "cost_figure",
    "cost_table",
    "describe_cost",
    "describe_energy",
    "energy_figure",
    "energy_table",
    "estimate_energy",
    "load_prices",
    "measure_startup",
    "run_all",
    "stored_runs",
    "sweeps",
    "trials",
]
