"""TPC-H Q1 and Q3: the SQL that Spark and DuckDB run, the same queries in dask.dataframe, and their answers.

The SQL is TPC-H's text with its standard substitution parameters (Q1: DELTA = 90 days;
Q3: SEGMENT = BUILDING, DATE = 1995-03-15); each table is named by a placeholder that an
engine fills with its way of reading a folder of Parquet files, so every run of a query
reads the files again (nothing is registered or cached between runs). Q1 is a scan, filter
and group-by aggregate of ``lineitem``; Q3 joins ``customer``, ``orders`` and ``lineitem``,
aggregates and keeps the 10 orders of highest revenue.

The Dask versions read the money columns (Parquet decimals) as float64: pandas has no fast
decimal arithmetic. Spark and DuckDB compute in decimals, and Spark keeps 6 decimal places
of an average, so the answers agree to a tolerance, not to the last digit
(:mod:`.answers`).

>>> sorted(QUERIES), KEYS["q3"]
(['q1', 'q3'], ('l_orderkey',))
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Q1 = """
select
    l_returnflag,
    l_linestatus,
    sum(l_quantity) as sum_qty,
    sum(l_extendedprice) as sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
    avg(l_quantity) as avg_qty,
    avg(l_extendedprice) as avg_price,
    avg(l_discount) as avg_disc,
    count(*) as count_order
from
    {lineitem}
where
    l_shipdate <= date '1998-12-01' - interval '90' day
group by
    l_returnflag,
    l_linestatus
order by
    l_returnflag,
    l_linestatus
"""

Q3 = """
select
    l_orderkey,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    o_orderdate,
    o_shippriority
from
    {customer},
    {orders},
    {lineitem}
where
    c_mktsegment = 'BUILDING'
    and c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate < date '1995-03-15'
    and l_shipdate > date '1995-03-15'
group by
    l_orderkey,
    o_orderdate,
    o_shippriority
order by
    revenue desc,
    o_orderdate
limit 10
"""

QUERIES = {"q1": Q1, "q3": Q3}
"""The SQL text of each query, tables as ``{lineitem}``, ``{orders}``, ``{customer}``."""
KEYS = {"q1": ("l_returnflag", "l_linestatus"), "q3": ("l_orderkey",)}
"""The columns that name a row of each query's answer."""
COLUMNS = {
    "q1": (
        "l_returnflag",
        "l_linestatus",
        "sum_qty",
        "sum_base_price",
        "sum_disc_price",
        "sum_charge",
        "avg_qty",
        "avg_price",
        "avg_disc",
        "count_order",
    ),
    "q3": ("l_orderkey", "revenue", "o_orderdate", "o_shippriority"),
}
"""Each query's answer columns, in TPC-H's order."""
_MONEY = ("l_quantity", "l_extendedprice", "l_discount", "l_tax")


def sql(query: str, table: Any) -> str:
    """The SQL of ``query`` with each table as ``table(name)`` gives it (an engine's way to read a folder)."""
    return QUERIES[query].format(**{name: table(name) for name in ("lineitem", "orders", "customer")})


def _read(dd: Any, tables: dict[str, str], name: str, columns: list[str]) -> Any:
    frame = dd.read_parquet(tables[name], columns=columns)
    money = {c: "float64" for c in columns if c in _MONEY}
    return frame.astype(money) if money else frame


def dask_q1(tables: dict[str, str]) -> Any:
    """Q1 as a dask.dataframe (not computed): filter, two derived columns, a group-by aggregate."""
    import dask.dataframe as dd

    li = _read(dd, tables, "lineitem", ["l_returnflag", "l_linestatus", *_MONEY, "l_shipdate"])
    li = li[li.l_shipdate <= dt.date(1998, 12, 1) - dt.timedelta(days=90)]
    li = li.assign(disc_price=li.l_extendedprice * (1 - li.l_discount))
    li = li.assign(charge=li.disc_price * (1 + li.l_tax))
    return li.groupby(["l_returnflag", "l_linestatus"]).agg(
        sum_qty=("l_quantity", "sum"),
        sum_base_price=("l_extendedprice", "sum"),
        sum_disc_price=("disc_price", "sum"),
        sum_charge=("charge", "sum"),
        avg_qty=("l_quantity", "mean"),
        avg_price=("l_extendedprice", "mean"),
        avg_disc=("l_discount", "mean"),
        count_order=("l_quantity", "size"),
    )


def dask_q3(tables: dict[str, str]) -> Any:
    """Q3 as a dask.dataframe (not computed): three filtered tables joined, aggregated, the 10 largest."""
    import dask.dataframe as dd

    day = dt.date(1995, 3, 15)
    c = _read(dd, tables, "customer", ["c_custkey", "c_mktsegment"])
    o = _read(dd, tables, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"])
    li = _read(dd, tables, "lineitem", ["l_orderkey", "l_extendedprice", "l_discount", "l_shipdate"])
    c = c[c.c_mktsegment == "BUILDING"]
    o = o[o.o_orderdate < day]
    li = li[li.l_shipdate > day]
    joined = c.merge(o, left_on="c_custkey", right_on="o_custkey").merge(
        li, left_on="o_orderkey", right_on="l_orderkey"
    )
    joined = joined.assign(revenue=joined.l_extendedprice * (1 - joined.l_discount))
    revenue = joined.groupby(["l_orderkey", "o_orderdate", "o_shippriority"]).revenue.sum().reset_index()
    return revenue.nlargest(10, "revenue")


DASK = {"q1": dask_q1, "q3": dask_q3}
"""Each query as a function of the tables' folders that returns a dask.dataframe."""


def dask_answer(query: str, computed: Any) -> tuple[list[tuple[Any, ...]], list[str]]:
    """A computed Dask answer as rows and column names, in the SQL's order (Q1 by its keys; Q3 by
    revenue, highest first, then order date)."""
    frame = computed.reset_index() if query == "q1" else computed
    if query == "q1":
        frame = frame.sort_values(list(KEYS["q1"]))
    else:
        frame = frame.sort_values(["revenue", "o_orderdate"], ascending=[False, True])
    frame = frame[list(COLUMNS[query])]
    return list(frame.itertuples(index=False, name=None)), list(frame.columns)
