"""The reading table of a sweep: one row per grid point, a DataFrame that prints whole.

:class:`ReadingTable` is a plain DataFrame in all but its text: ``print(table)`` and ``str(table)``
show every column and row, wrapped to the terminal's width, where pandas would hide the middle
columns behind "...". Its HTML (Jupyter's rendering) is pandas' own.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


class ReadingTable(pd.DataFrame):
    """A DataFrame whose text shows every column and row; what is taken from it stays one."""

    @property
    def _constructor(self) -> type[ReadingTable]:
        return ReadingTable

    def __repr__(self) -> str:
        with pd.option_context("display.max_columns", None, "display.max_rows", None, "display.max_colwidth", None):
            return super().__repr__()


def reading_table(frame: pd.DataFrame) -> ReadingTable:
    """One row per grid point of ``frame`` (a sweep's trials): rates in their units, times in ms,
    resources; a figure no reading exists for says "not measured"; the energy names how it was
    obtained (see :func:`labkit.analysis.energy.energy_cell`)."""
    from dask.utils import format_bytes

    from labkit.analysis import point_params, varying
    from labkit.analysis.energy import energy_cell
    from labkit.analysis.trust import load_words
    from labkit.common.format import format_rate

    names, params = varying(frame), point_params(frame)
    rows = []
    for _, g in frame.groupby("point", sort=False):
        ok = g[g["status"] == "ok"]
        unit = ok["unit"].iloc[0] if len(ok) else ""

        def measured(column: str, how: str, fmt: Any, ok: pd.DataFrame = ok) -> str:
            values = ok[column].dropna() if column in ok else ok.iloc[:0, 0]
            return fmt(getattr(values, how)()) if len(values) else "not measured"

        first = params.loc[g.index[0]]
        rows.append(
            {
                "workers": int(first["workers"]),
                **{n: first[n] for n in names},
                "ok": len(ok),
                "failed": len(g) - len(ok),
                "median time": measured("wall_s", "median", lambda v: f"{v * 1e3:.1f} ms"),
                "throughput": measured("throughput", "median", lambda v, unit=unit: format_rate(v, unit)),
                "range": f"{format_rate(ok['throughput'].min(), unit)} – {format_rate(ok['throughput'].max(), unit)}"
                if len(ok)
                else "n/a",
                "peak memory": measured("peak_memory_bytes", "max", lambda v: format_bytes(int(v))),
                "mean worker CPU (100% = 1 core)": measured("cpu_percent_mean", "mean", lambda v: f"{v:.0f}%"),
                "energy": energy_cell(ok),  # "1.2 J (rapl)", "3.4 J (estimate)", "below resolution", "not measured"
                "outside load": load_words(ok),  # "no", "yes (k of n trials)" or "not measured"
            }
        )
    return ReadingTable(pd.DataFrame(rows).sort_values([*names, "workers"]).reset_index(drop=True))
