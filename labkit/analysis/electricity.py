"""Electricity per unit of work: energy × a declared price per kWh, apart from the cloud price, with its method.

Electricity is never added to a cloud price (an instance's price already pays for its
power): it answers a different question, what the work costs on a machine you run
yourself. Each row says how its energy was obtained (``energy_method``: ``nvml-energy``,
``nvml-power``, ``rapl``, ``estimate``, ``below-resolution`` or ``not measured``) and its
``basis``: ``"measured"``, ``"estimate"`` (any trial's energy estimated: the row is an
estimate, with its assumption) or ``"not measured"`` (no figure: NaN, never 0). The price
per kWh is part of the :class:`~labkit.analysis.prices.PriceSnapshot`, declared by the user.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from labkit.common.errors import DataError

from .cost import PER, device_of, point_labels
from .intervals import Estimate, median_estimate, show
from .prices import PriceSnapshot, require_snapshot

if TYPE_CHECKING:
    import pandas as pd

#: Joules in a kWh.
J_PER_KWH = 3.6e6


def _energy_basis(methods: list[str]) -> str:
    """``"measured"``, ``"estimate"`` (any trial's energy estimated) or ``"not measured"``."""
    measured = [m for m in methods if m not in ("estimate", "not measured", "below-resolution")]
    if "estimate" in methods:
        return "estimate"
    return "measured" if measured else "not measured"


def electricity_table(frame: pd.DataFrame, prices: PriceSnapshot, *, per: float = PER) -> pd.DataFrame:
    """Energy per ``per`` units of work and its electricity cost, per grid point: apart from the cloud price.

    Reads each ok trial's ``energy_j`` and ``energy_method`` (and ``energy_assumption``, for
    estimates). ``basis`` is ``"measured"``, ``"estimate"`` (a trial's energy was estimated:
    the row is an estimate) or ``"not measured"`` (no figures: NaN, never 0). The interval is
    the median's over the trials that have a figure.
    """
    import pandas as pd

    prices = require_snapshot(prices, "an electricity table")
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", "an electricity cost needs at least one successful trial")
    rows = []
    for point, g in ok.groupby("point", sort=True):
        methods = sorted(set(g.get("energy_method", pd.Series(["not measured"] * len(g))).fillna("not measured")))
        energy = pd.to_numeric(g.get("energy_j", pd.Series(math.nan, index=g.index)), errors="coerce")
        have = energy.notna() & (energy > 0)
        basis = _energy_basis(methods) if have.any() else "not measured"
        j = median_estimate((energy[have] / g.loc[have, "amount"] * per).to_numpy(float)) if have.any() else None
        j = j or Estimate(math.nan, math.nan, math.nan, "not measured")
        price = prices.electricity_per_kwh
        kwh = Estimate(*(v / J_PER_KWH for v in j[:3]), j.note)
        money = Estimate(*(v * price for v in kwh[:3]), kwh.note) if price else Estimate(math.nan, math.nan, math.nan)
        assumption = g.get("energy_assumption", pd.Series(dtype=object)).dropna().astype(str)
        rows.append(
            {
                "workload": g["workload"].iloc[0],
                "point": point,
                "device": device_of(g["backend"].iloc[0]),
                "workers": int(g["workers"].iloc[0]),
                "runs": len(g),
                "with_energy": int(have.sum()),
                "energy_method": ", ".join(methods),
                "basis": basis,
                "energy_assumption": "; ".join(sorted(set(assumption))),
                "j_per": j.value,
                "j_lo": j.lo,
                "j_hi": j.hi,
                "kwh_per": kwh.value,
                "electricity": money.value,
                "electricity_lo": money.lo,
                "electricity_hi": money.hi,
                "electricity_note": "not priced (no price per kWh declared)" if not price else j.note,
                "unit": f"per {per:.0e} {g['unit'].iloc[0]}".replace("e+0", "e"),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["prices"] = prices
    return table


def describe_electricity(table: pd.DataFrame, names: dict[str, str] | None = None) -> str:
    """Each point's energy and electricity per unit of work in words: how the energy was obtained,
    an estimate labelled as one, "not measured" where there is no figure; never added to a cloud price.

    ``names`` gives each point's words (default: :func:`~labkit.analysis.cost.point_labels`).
    """
    prices = require_snapshot(table.attrs.get("prices"), "an electricity answer")
    power = (
        f"{prices.electricity_per_kwh:g} {prices.electricity_currency}/kWh ({prices.electricity_source})"
        if prices.electricity_per_kwh
        else "no price per kWh declared"
    )
    names = names or point_labels(table)
    lines = [f"Electricity, apart from the cloud price and never added to it, at {power}:"]
    for r in table.itertuples():
        who = names[r.point]
        if r.basis == "not measured":
            lines.append(f"{who}: energy not measured ({r.energy_method}).")
            continue
        energy = f"{show(r.j_per, r.j_lo, r.j_hi)} J {r.unit}"
        money = (
            f"electricity {show(r.electricity, r.electricity_lo, r.electricity_hi)} {prices.electricity_currency} {r.unit}"
            if not math.isnan(r.electricity)
            else "electricity not priced"
        )
        if r.basis == "estimate":
            why = f": {r.energy_assumption}" if r.energy_assumption else ""
            lines.append(f"{who}: an estimate, not a measurement ({r.energy_method}{why}): {energy}; {money}.")
        else:
            lines.append(f"{who}: measured ({r.energy_method}, {r.with_energy} of {r.runs} trials): {energy}; {money}.")
    return "\n".join(lines)
