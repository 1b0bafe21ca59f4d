"""The engines' answers side by side: each as a small table, and where two differ.

:func:`answer_frame` turns what an engine returned (rows of decimals, dates, NumPy or Python
numbers) into one plain table per answer: numbers as float (counts and keys as int), dates as
ISO text, rows named by the query's keys (:data:`~.queries.KEYS`). :func:`compare` sets every
answer beside a reference (the first one given) and lists each difference: a row one has and
the other lacks, or a value that differs (text exactly; numbers beyond ``rtol`` of the
reference, with ``atol`` as a floor for values near 0).

>>> a = answer_frame("q3", [(1, 10.0, "1995-03-01", 0)], ["l_orderkey", "revenue", "o_orderdate", "o_shippriority"])
>>> b = a.assign(revenue=[10.5])
>>> [d["column"] for d in compare({"spark": a, "dask": b}, "q3")]
['revenue']
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
from typing import Any

import pandas as pd

from .queries import COLUMNS, KEYS

RTOL = 1e-6
"""Relative tolerance between engines' numbers: decimals against float64 sums, and Spark's averages to 6 places."""
ATOL = 1e-6
"""Absolute floor of the tolerance, for values near 0 (an average discount of 0.05)."""


def _cell(value: Any) -> Any:
    """One value as the comparison reads it: float, int, ISO date text or text."""
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value if isinstance(value, str) else str(value)


def answer_frame(query: str, rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """An engine's answer to ``query`` as a plain table indexed by the query's keys, columns in TPC-H's order."""
    names = [c.lower() for c in columns]
    frame = pd.DataFrame([[_cell(v) for v in row] for row in rows], columns=names, dtype=object)
    return frame[list(COLUMNS[query])].set_index(list(KEYS[query]))


def _differ(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return not math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)
        except (TypeError, ValueError):
            return True
    return a != b


def compare(
    answers: dict[str, pd.DataFrame], query: str, *, rtol: float = RTOL, atol: float = ATOL
) -> list[dict[str, Any]]:
    """Each difference of the answers from the first one (the reference): one record per missing or
    extra row and per differing value, with the engine, the reference, the row's key and the column."""
    if len(answers) < 2:
        return []
    (ref, expected), *others = answers.items()
    out: list[dict[str, Any]] = []
    for engine, got in others:
        base = {"query": query, "engine": engine, "reference": ref}
        for key in expected.index.difference(got.index):
            out.append({**base, "row": key, "column": "(row)", "value": "missing", "expected": "present"})
        for key in got.index.difference(expected.index):
            out.append({**base, "row": key, "column": "(row)", "value": "present", "expected": "missing"})
        for key in expected.index.intersection(got.index):
            for column in expected.columns:
                a, b = got.at[key, column], expected.at[key, column]
                if _differ(a, b, rtol, atol):
                    out.append({**base, "row": key, "column": column, "value": a, "expected": b})
    return out


def agreement_words(differences: list[dict[str, Any]], compared: list[str], engines: list[str], rtol: float) -> str:
    """The correctness check in words: every answer compared agreed, or where they differed (at most 8 named)."""
    what = ", ".join(compared) or "nothing"
    if len(engines) < 2:
        return f"Answers: only {', '.join(engines) or 'no engine'} ran, so nothing was compared."
    if not differences:
        return (
            f"Answers: {', '.join(engines)} returned the same answer for {what} "
            f"(numbers within a relative {rtol:g} of each other)."
        )
    shown = [
        f"{d['engine']} against {d['reference']} in {d['query'].upper()} at SF {d['scale_factor']:g}, "
        f"row {d['row']}, {d['column']}: {d['value']} where {d['reference']} gave {d['expected']}"
        for d in differences[:8]
    ]
    more = f" (and {len(differences) - 8} more)" if len(differences) > 8 else ""
    return f"Answers differ in {len(differences)} place(s) of {what}{more}: " + "; ".join(shown) + "."
