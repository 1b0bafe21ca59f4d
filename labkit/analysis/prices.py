"""Prices for cost estimates: the shipped table of instance list prices, a user's own, and the snapshot every cost keeps.

labkit ships a small table (``labkit/data/prices.csv``) of on-demand list prices for a few
CPU and GPU instance types of AWS, Google Cloud and Azure: price per instance-hour, region,
currency, the public price page it came from (``source``) and the date the figure was taken
(``date``). They are list prices to be edited: pass your own file or DataFrame with the same
columns. :func:`load_prices` checks the table (every column present, prices finite and > 0,
devices ``cpu`` or ``gpu``, one row per instance name, dates as ``YYYY-MM`` or
``YYYY-MM-DD``) and returns a :class:`PriceSnapshot`: the rows, where they came from, and the
electricity price per kWh the user declared (None: electricity is not priced). Every cost
table and figure keeps the snapshot it used (see :mod:`labkit.analysis.cost`), and one without
a snapshot is refused.

>>> p = load_prices(electricity_per_kwh=0.3)
>>> snap = p.select(["m7i.large"])
>>> snap.price("m7i.large"), snap.currency, snap.rows["source"].iloc[0]
(0.1008, 'USD', 'Amazon EC2 On-Demand Pricing')
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from labkit.common.errors import DataError, ParameterError

if TYPE_CHECKING:
    import pandas as pd

#: The columns a price table must have.
COLUMNS = (
    "provider",
    "instance",
    "device",
    "vcpus",
    "gpus",
    "gpu_model",
    "memory_gib",
    "price_per_hour",
    "currency",
    "region",
    "source",
    "date",
)
DEVICES = ("cpu", "gpu")
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
_TEXT = ("provider", "instance", "currency", "region", "source")


def shipped_path() -> Any:
    """The path of the table that ships with labkit (``labkit/data/prices.csv``)."""
    from importlib.resources import files

    return files("labkit") / "data" / "prices.csv"


@dataclass(frozen=True, eq=False)
class PriceSnapshot:
    """The prices a cost was computed with: the rows, their origin and the declared electricity price.

    Attributes
    ----------
    rows : DataFrame
        One row per instance type (the columns of :data:`COLUMNS`).
    origin : str
        Where the table came from: ``"labkit's shipped table"``, a file's path, or ``"a DataFrame"``.
    electricity_per_kwh : float or None
        The electricity price per kWh the user declared; None: electricity is not priced.
    electricity_currency : str
        Its currency.
    electricity_source : str
        Who declared it (by default: the user, in the parameters).
    """

    rows: pd.DataFrame
    origin: str
    electricity_per_kwh: float | None = None
    electricity_currency: str = "USD"
    electricity_source: str = "declared by the user"

    def select(self, instances: list[str] | tuple[str, ...]) -> PriceSnapshot:
        """The snapshot of only these instance types (the rows a cost uses), in this order;
        they must share one currency."""
        if isinstance(instances, str) or not isinstance(instances, (list, tuple)) or not instances:
            raise ParameterError("instances", instances, "a non-empty list of instance names from the price table")
        known = list(self.rows["instance"])
        for name in instances:
            if name not in known:
                from labkit.common.errors import did_you_mean

                raise ParameterError("instances", name, f"{did_you_mean(name, known)}one of {known}")
        rows = self.rows.set_index("instance", drop=False).loc[list(dict.fromkeys(instances))].reset_index(drop=True)
        if rows["currency"].nunique() > 1:
            raise ParameterError(
                "instances",
                list(instances),
                f"instance types priced in one currency (got {sorted(set(rows.currency))})",
            )
        return replace(self, rows=rows)

    def price(self, instance: str) -> float:
        """The price of one ``instance`` per hour."""
        hit = self.rows[self.rows["instance"] == instance]
        if hit.empty:
            raise ParameterError("instance", instance, f"one of {list(self.rows['instance'])}")
        return float(hit["price_per_hour"].iloc[0])

    @property
    def currency(self) -> str:
        """The rows' currency (one, or several joined by ``/`` before :meth:`select`)."""
        return "/".join(sorted(set(self.rows["currency"])))

    @property
    def dates(self) -> list[str]:
        """The dates the rows' prices were taken."""
        return sorted(set(self.rows["date"]))

    @property
    def sources(self) -> list[str]:
        """The price pages the rows came from."""
        return sorted(set(self.rows["source"]))

    def describe(self) -> str:
        """One line: where the prices came from, when they were taken, and the electricity price."""
        power = (
            "electricity not priced (no price per kWh declared)"
            if self.electricity_per_kwh is None
            else f"electricity {self.electricity_per_kwh:g} {self.electricity_currency}/kWh ({self.electricity_source})"
        )
        return (
            f"Prices: list prices per instance-hour from {self.origin} ({'; '.join(self.sources)}; taken "
            f"{', '.join(self.dates)}), in {self.currency}: an estimate, not a bill; {power}."
        )


def load_prices(
    prices: Any = None,
    *,
    electricity_per_kwh: float | None = None,
    electricity_currency: str = "USD",
    electricity_source: str = "declared by the user",
) -> PriceSnapshot:
    """Read and check a price table; the snapshot costs are computed with.

    Parameters
    ----------
    prices : None, str, Path or DataFrame
        None: labkit's shipped table; a path to a CSV file (lines starting with ``#`` are
        comments) or a DataFrame with the columns of :data:`COLUMNS`.
    electricity_per_kwh : float, optional
        The price of a kWh of electricity, declared by the user (> 0); None leaves
        electricity unpriced.
    electricity_currency, electricity_source : str
        Its currency, and who declared it or where it came from.

    Raises
    ------
    ParameterError
        A missing column, or a row whose value is not allowed (the message names the column
        and the row).
    """
    import pandas as pd

    if prices is None:
        origin, frame = "labkit's shipped table", _read_csv(shipped_path())
    elif isinstance(prices, pd.DataFrame):
        origin, frame = "a DataFrame", prices.copy()
    elif isinstance(prices, (str, os.PathLike)):
        if not os.path.isfile(prices):
            raise ParameterError("prices", prices, "None (the shipped table), a CSV file that exists, or a DataFrame")
        origin, frame = str(prices), _read_csv(prices)
    else:
        raise ParameterError("prices", prices, "None (the shipped table), the path of a CSV file, or a DataFrame")
    if electricity_per_kwh is not None and not _positive(electricity_per_kwh):
        raise ParameterError("electricity_per_kwh", electricity_per_kwh, "a price per kWh > 0, or None (not priced)")
    rows = check_table(frame)
    return PriceSnapshot(rows, origin, electricity_per_kwh, str(electricity_currency), str(electricity_source))


def _read_csv(path: Any) -> pd.DataFrame:
    import pandas as pd

    with open(path, encoding="utf-8") as f:
        return pd.read_csv(f, comment="#", dtype={"date": str, "gpu_model": str}, keep_default_na=False, na_values=[""])


def _positive(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The price table, checked: see :func:`load_prices`. Rows are numbered from 1 in messages."""
    import pandas as pd

    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ParameterError("prices", f"columns {list(frame.columns)}", f"a table with the columns {missing} too")
    if frame.empty:
        raise ParameterError("prices", "an empty table", "at least one instance type")
    out = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
    for i, row in out.iterrows():
        where = f"prices (row {i + 1}, {row['instance']!s})"
        for col in _TEXT:
            if not isinstance(row[col], str) or not row[col].strip():
                raise ParameterError(f"{where}: {col}", row[col], "a non-empty text")
        if row["device"] not in DEVICES:
            raise ParameterError(f"{where}: device", row["device"], f"one of {list(DEVICES)}")
        if not _positive(_number(row["price_per_hour"])):
            raise ParameterError(f"{where}: price_per_hour", row["price_per_hour"], "a price per hour > 0")
        for col in ("vcpus", "gpus"):
            n = _number(row[col])
            if not (isinstance(n, (int, float)) and math.isfinite(n) and n >= 0 and n == int(n)):
                raise ParameterError(f"{where}: {col}", row[col], "a whole number >= 0")
        if row["device"] == "gpu" and _number(row["gpus"]) < 1:
            raise ParameterError(f"{where}: gpus", row["gpus"], "at least 1 on a gpu instance type")
        if not _DATE.match(str(row["date"])):
            raise ParameterError(f"{where}: date", row["date"], "the date the price was taken, YYYY-MM or YYYY-MM-DD")
    twice = out["instance"][out["instance"].duplicated()].tolist()
    if twice:
        raise ParameterError("prices: instance", twice, "one row per instance name")
    out["price_per_hour"] = out["price_per_hour"].astype(float)
    out[["vcpus", "gpus"]] = out[["vcpus", "gpus"]].astype(int)
    out["date"] = out["date"].astype(str)
    out["gpu_model"] = out["gpu_model"].where(pd.notna(out["gpu_model"]), "")
    return out


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def require_snapshot(prices: Any, what: str = "a cost") -> PriceSnapshot:
    """``prices`` if it is a :class:`PriceSnapshot`; else a :class:`DataError` saying that
    ``what`` without the prices it used is refused."""
    if not isinstance(prices, PriceSnapshot):
        raise DataError(
            f"{what} needs the price snapshot it is computed with (labkit.analysis.prices.load_prices(...)); "
            f"got {type(prices).__name__}: a cost without its prices' source and date is refused"
        )
    return prices
