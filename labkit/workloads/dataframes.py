"""Table workloads: a groupby-aggregate over generated data, counted in rows.

The table is generated on the workers, partition by partition (``dask.dataframe.from_map``),
so setting up a large table does not pass through the client; ``setup`` persists it (not
timed) and ``run`` computes the aggregate, a shuffle-free tree reduction whose result has
one row per group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .registry import BaseWorkload, Work

# Each timed run happens inside a Dask span, which Dask records as an annotation; dask's
# query planner drops annotations of DataFrame graphs and warns on every compute. The span's
# figures are still collected, so the warning says nothing to a reader of a report.


def _partition(index: int, rows: int, groups: int) -> Any:
    """One partition: an integer ``key`` in ``[0, groups)`` and two float columns."""
    import pandas as pd

    rng = np.random.default_rng(index)  # seeded by position: the same table every time
    return pd.DataFrame(
        {
            "key": rng.integers(0, groups, rows, dtype=np.int64),
            "x": rng.random(rows),
            "y": rng.standard_normal(rows),
        }
    )


def _partition_rows(rows: int, partitions: int) -> list[int]:
    base, extra = divmod(rows, partitions)
    return [base + (i < extra) for i in range(partitions)]


@dataclass
class TableState:
    client: Any
    table: Any
    params: dict[str, Any]


class DataFrameGroupby(BaseWorkload):
    """``df.groupby("key").agg(...)`` on a generated table of ``rows`` rows."""

    name = "dataframe-groupby"
    description = "groupby-aggregate (sum, mean, max) of a generated table"
    defaults = {"rows": 2_000_000, "partitions": 16, "groups": 1000}
    minimum = {"rows": 1, "partitions": 1, "groups": 1}

    def setup(self, lab: Any, **params: Any) -> TableState:
        import dask.dataframe as dd
        from distributed import wait

        partitions = min(params["partitions"], params["rows"])
        sizes = _partition_rows(params["rows"], partitions)
        table = dd.from_map(_partition, range(partitions), sizes, groups=params["groups"], enforce_metadata=False)
        table = lab.client.persist(table)
        wait(table)
        return TableState(lab.client, table, params)

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Partitions of the table: one aggregation task per partition, then the tree."""
        return min(params["partitions"], params["rows"])

    def run(self, state: TableState) -> Work:
        out = state.table.groupby("key").agg({"x": ["sum", "mean"], "y": "max"}).compute()
        if len(out) == 0:  # the aggregate really arrived; an empty one means no rows ran
            raise RuntimeError("groupby-aggregate returned no groups")
        return Work(float(state.params["rows"]), "rows")

    def teardown(self, state: TableState) -> None:
        state.table = None
