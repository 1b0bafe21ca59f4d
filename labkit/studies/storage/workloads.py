"""Storage workload: a generated table written as partitioned Parquet or CSV, and read back.

The table (the records of :mod:`labkit.workloads.tables`) is generated on the workers and persisted in
``setup``. With ``op="write"`` one timed run writes it, one file per partition, to a fresh
folder on local disk (removing the previous run's folder first, inside the timing); with
``op="read"`` ``setup`` writes it once (untimed) and a timed run reads every column back
with ``dask.dataframe`` and checks the row count and the column sums against the table in
memory. Throughput is in rows; the bytes the files take on disk are measured after each
write and reported by :meth:`TableStorage.metrics` (``bytes_on_disk``, ``files``, and
``bytes_per_row``), also kept on the state as ``state.bytes_on_disk``.

The folder is a temporary one under the system's temp directory unless ``path`` names
another; with workers on several hosts it must be a folder every worker sees.

>>> sorted(TableStorage.choices["format"])
['csv', 'parquet']
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit.workloads.disk import bytes_on_disk, check_work_path, work_folder
from labkit.workloads.registry import BaseWorkload, Work
from labkit.workloads.tables import generated_records

FORMATS = ("parquet", "csv")
OPS = ("read", "write")
COLUMNS = ("customer", "quantity", "price", "discount")


def write_table(table: Any, fmt: str, folder: Path) -> None:
    """Write ``table`` under ``folder``, one file per partition, and return when all are written."""
    if fmt == "parquet":
        table.to_parquet(str(folder), write_index=False, compression="snappy")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(str(folder / "part-*.csv"), index=False)


def read_table(fmt: str, folder: Path) -> Any:
    """The table stored under ``folder``, as a lazy Dask DataFrame."""
    import dask.dataframe as dd

    if fmt == "parquet":
        return dd.read_parquet(str(folder))
    dtypes = {"customer": "int64", "quantity": "int64", "price": "float64", "discount": "float64"}
    return dd.read_csv(str(folder / "part-*.csv"), dtype=dtypes)


@dataclass
class StorageState:
    client: Any
    table: Any
    folder: Path
    params: dict[str, Any]
    expected: dict[str, float]
    runs: int = 0
    bytes_on_disk: int | None = None
    files: int | None = None
    last: dict[str, Any] = field(default_factory=dict)


class TableStorage(BaseWorkload):
    """A table of ``rows`` records written to, or read from, Parquet or CSV files on local disk."""

    name = "table-storage"
    description = "write or read a generated table as partitioned Parquet or CSV"
    defaults = {"rows": 2_000_000, "partitions": 16, "format": "parquet", "op": "read", "path": ""}
    choices = {"format": FORMATS, "op": OPS}
    minimum = {"rows": 1, "partitions": 1}

    def check_params(self, params: dict[str, Any]) -> None:
        """The folder must be one this machine can write in (see :func:`check_work_path`)."""
        check_work_path(params["path"])

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Files per run: one task per partition."""
        return min(params["partitions"], params["rows"])

    def setup(self, lab: Any, **params: Any) -> StorageState:
        import dask
        from distributed import wait

        table = generated_records(params["rows"], params["partitions"], customers=10_000)
        table = lab.client.persist(table)
        wait(table)
        sums, rows = dask.compute(table.sum(), table.shape[0])
        expected = {"rows": float(rows), **{c: float(sums[c]) for c in COLUMNS}}
        state = StorageState(lab.client, table, work_folder(params["path"], "labkit-storage-"), params, expected)
        if params["op"] == "read":
            write_table(table, params["format"], state.folder / "table")
            self._measure(state, state.folder / "table")
        return state

    def run(self, state: StorageState) -> Work:
        fmt = state.params["format"]
        if state.params["op"] == "write":
            shutil.rmtree(state.folder / f"run-{state.runs}", ignore_errors=True)
            state.runs += 1
            target = state.folder / f"run-{state.runs}"
            write_table(state.table, fmt, target)
            self._measure(state, target)
        else:
            import dask

            table = read_table(fmt, state.folder / "table")
            sums, rows = dask.compute(table.sum(), table.shape[0])
            check_sums(state.expected, {"rows": float(rows), **{c: float(sums[c]) for c in COLUMNS}})
        return Work(float(state.params["rows"]), "rows")

    def _measure(self, state: StorageState, folder: Path) -> None:
        state.bytes_on_disk, state.files = bytes_on_disk(folder)
        state.last = {
            "bytes_on_disk": state.bytes_on_disk,
            "files": state.files,
            "bytes_per_row": state.bytes_on_disk / state.params["rows"],
        }

    def metrics(self, state: StorageState) -> dict[str, Any]:
        """Bytes and files on disk of the table as last written, and bytes per row."""
        return dict(state.last)

    def teardown(self, state: StorageState) -> None:
        state.table = None
        shutil.rmtree(state.folder, ignore_errors=True)


def check_sums(expected: dict[str, float], got: dict[str, float]) -> None:
    """Raise unless the row count matches exactly and every column sum to 1e-9 (relative).

    Sums of the same numbers in another order may differ in their last bits; CSV stores
    each float as its shortest round-trip text, so the numbers themselves are the same.
    """
    if got["rows"] != expected["rows"]:
        raise RuntimeError(f"read back {got['rows']:.0f} rows, wrote {expected['rows']:.0f}")
    for col, want in expected.items():
        if not np.isclose(got[col], want, rtol=1e-9, atol=0.0):
            raise RuntimeError(f"column {col!r} sums to {got[col]!r} after the round trip, {want!r} before")
