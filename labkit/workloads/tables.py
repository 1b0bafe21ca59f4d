"""Table workload: a dask.dataframe feature pipeline on generated records, counted in rows.

The records (one row per sale: customer, quantity, price, discount) and the dimension table
of customers (region, tier) are generated on the workers, partition by partition, and
persisted in ``setup``. One timed run filters the records, derives columns, joins them with
the customers, aggregates per region and standardises the feature columns (z-scores), then
checks what it computed: the per-region counts add up to the rows kept, and each
standardised column has mean 0 and standard deviation 1.

:func:`features` is the pipeline itself and works on pandas or Dask frames alike, so a
small table can be checked against pandas.

>>> regions, z = features(records_partition(0, 100, 10), customers_partition(10))
>>> int(regions["rows"].sum()) == len(z)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import BaseWorkload, Work

REGIONS = ("north", "south", "east", "west", "centre", "islands", "coast", "mountains")
FEATURES = ("revenue", "log_revenue", "net", "units")


def records_partition(index: int, rows: int, customers: int) -> Any:
    """One partition of records, seeded by its position (the same table every time)."""
    import pandas as pd

    rng = np.random.default_rng([11, index])
    return pd.DataFrame(
        {
            "customer": rng.integers(0, customers, rows, dtype=np.int64),
            "quantity": rng.integers(0, 10, rows, dtype=np.int64),
            "price": rng.lognormal(3.0, 1.0, rows),
            "discount": rng.uniform(0.0, 0.3, rows),
        }
    )


def customers_partition(customers: int) -> Any:
    """The dimension table: one row per customer, with a region and a price tier."""
    import pandas as pd

    rng = np.random.default_rng(12)
    return pd.DataFrame(
        {
            "customer": np.arange(customers, dtype=np.int64),
            "region": np.asarray(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), customers)],
            "tier": rng.integers(1, 4, customers, dtype=np.int64).astype(np.float64),
        }
    )


def features(records: Any, customers: Any) -> tuple[Any, Any]:
    """The pipeline, on pandas or Dask frames: ``(per-region aggregate, standardised features)``.

    Records with no quantity are dropped; ``revenue``, ``log_revenue``, ``net`` (revenue
    after discount, times the customer's tier) and ``units`` are derived; each region gets
    its row count, revenue sum and mean; each feature column is standardised with the
    mean and sample standard deviation of the kept rows.
    """
    kept = records[records["quantity"] > 0]
    kept = kept.assign(revenue=kept["quantity"] * kept["price"], units=kept["quantity"].astype("float64"))
    kept = kept.assign(log_revenue=np.log1p(kept["revenue"]))
    joined = kept.merge(customers, on="customer", how="inner")
    joined = joined.assign(net=joined["revenue"] * (1.0 - joined["discount"]) * joined["tier"])
    # a handful of regions: one output partition, a tree reduction (Dask would otherwise
    # choose a shuffle for a table of many partitions)
    one = {"split_out": 1} if hasattr(joined, "npartitions") else {}
    regions = joined.groupby("region").agg(
        rows=("net", "count"), revenue=("revenue", "sum"), mean_net=("net", "mean"), **one
    )
    cols = joined[list(FEATURES)]
    z = (cols - cols.mean()) / cols.std()
    return regions, z


def partition_rows(rows: int, partitions: int) -> list[int]:
    """Rows of each partition: as equal as they can be."""
    base, extra = divmod(rows, partitions)
    return [base + (i < extra) for i in range(partitions)]


def generated_records(rows: int, partitions: int, customers: int) -> Any:
    """The records as a lazy Dask DataFrame, each partition made on a worker."""
    import dask.dataframe as dd

    parts = min(partitions, rows)
    return dd.from_map(
        records_partition, range(parts), partition_rows(rows, parts), customers=customers, enforce_metadata=False
    )


@dataclass
class PipelineState:
    client: Any
    records: Any
    customers: Any
    params: dict[str, Any]
    last: dict[str, Any] = field(default_factory=dict)


class TablePipeline(BaseWorkload):
    """Filter, derive, join, aggregate and standardise a generated table of ``rows`` records."""

    name = "table-pipeline"
    description = "feature pipeline (filter, derived columns, join, groupby, z-scores) on generated records"
    defaults = {"rows": 2_000_000, "partitions": 16, "customers": 10_000}
    minimum = {"rows": 10, "partitions": 1, "customers": 1}

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Partitions of the records: each step runs once per partition."""
        return min(params["partitions"], params["rows"])

    def setup(self, lab: Any, **params: Any) -> PipelineState:
        import dask.dataframe as dd
        from distributed import wait

        records = generated_records(params["rows"], params["partitions"], params["customers"])
        customers = dd.from_map(customers_partition, [params["customers"]], enforce_metadata=False)
        records, customers = lab.client.persist([records, customers])
        wait([records, customers])
        return PipelineState(lab.client, records, customers, params)

    def run(self, state: PipelineState) -> Work:
        import dask

        regions, z = features(state.records, state.customers)
        regions, means, stds, kept = dask.compute(regions, z.mean(), z.std(), z.shape[0])
        counted = int(regions["rows"].sum())
        if counted != kept or kept == 0:
            raise RuntimeError(f"per-region counts add up to {counted} rows, but {kept} rows were kept")
        worst_mean = float(np.abs(means).max())
        worst_std = float(np.abs(stds - 1.0).max())
        if not (worst_mean < 1e-6 and worst_std < 1e-6):
            raise RuntimeError(f"standardised features are off: |mean| {worst_mean:.3g}, |std - 1| {worst_std:.3g}")
        state.last = {"rows_kept": kept, "regions": len(regions)}
        return Work(float(state.params["rows"]), "rows")

    def metrics(self, state: PipelineState) -> dict[str, Any]:
        """Rows kept by the filter and regions found in the last run."""
        return dict(state.last)

    def teardown(self, state: PipelineState) -> None:
        state.records = state.customers = None
