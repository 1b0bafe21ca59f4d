"""Trials by columns: ended runs' trials kept once more in Arrow record batches, so that loads are bulk reads.

Why this form. At 100,000 trials of one experiment (quickstart-shaped: 19 stored columns
and a metrics JSON object of about 1.1 kB, 44 keys, per trial; this project's 2-core
machine) the row read took 1.8 s quiet: 0.9 s for SQLite and Python's sqlite3 to hand over
the rows (110 MB of JSON whose keys repeat in every row, one Python object per value) and
0.6 s for Arrow's JSON reader. Measured on the same store:

- the ADBC SQLite driver (adbc-driver-sqlite 1.13), straight into Arrow: 0.59 s to fetch
  the rows, their JSON still to parse (0.6 s): over a second, for a new dependency;
- the metrics as typed columns of ``trials`` (one per key, 64 columns in all): SQLite still
  decodes and hands over each value: 0.52-0.66 s through ADBC, 1.06 s through sqlite3, for
  the fetch alone;
- Arrow record batches, one per run, merged as runs add up (these; written by
  :mod:`labkit.store.sealing`): the whole load (``Results.load``) in 0.10 s at 100,000
  trials (``benchmarks/scale.py``, quiet, median of 3). Unmerged, one batch a run, it took
  0.23-0.26 s there and 2.4-2.8 s at a million (one round each, load average 1.6-2.6):
  Arrow's work per batch grew faster than the trials. Merged, a million took 3.9 s (3.3 s
  of CPU; one round, quiet): merging has not made that size faster. A batch is a
  schema-less IPC message (the
  schema is kept once per layout: a stream per batch, schema included, decodes 50 times
  slower), compressed whole.

A read (:func:`read_table`) unions merged batches, run batches and the rows of runs that have
neither, in one read transaction, and gives the frame the row read gives: the metrics as
Arrow's JSON reader types them over all the rows at once (per-run types combine as it
combines them: a missing value with any kind, integers with floats; the order of the
columns is the order in which their keys first appear). Any other mix, nested values,
fewer than :data:`labkit.store.schema.BULK_ROWS` trials, or a layout made for other
``trials`` columns: the row read, as before.

>>> from labkit.store import ResultStore, Trial
>>> store = ResultStore(":memory:")
>>> run = store.start_run("demo", "w", env={}, config={})
>>> store.add_trials(Trial(run_id=run, experiment="demo", workload="w", point="p", params={}, repeat=i,
...     workers=1, threads=1, backend=None, status="ok", wall_s=1.0, metrics={"i": i}) for i in range(1500))
>>> store.end_run(run)  # its trials are now kept by columns too
>>> later = store.start_run("demo", "w", env={}, config={})  # running: read from its rows
>>> store.add_trials([Trial(run_id=later, experiment="demo", workload="w", point="p", params={}, repeat=0,
...     workers=1, threads=1, backend=None, status="ok", wall_s=1.0, metrics={"i": 1500, "j": True})])
>>> frame = store.trials_frame("demo")
>>> len(frame), int(frame["i"].sum()), frame["j"].tolist()[-2:]
(1501, 1125750, [None, True])
>>> store.close()
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import schema

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: The prefix of the metrics' fields in a part's record batch (the stored columns keep their names).
METRIC = "metric:"
#: The Arrow types of stored columns a part can hold: what pandas infers from the same Python values.
CORE_TYPES = ("null", "int64", "double", "string")
#: Runs without a batch are read by their ids, this many a query.
LIVE_RUNS_PER_QUERY = 500


@dataclass
class Part:
    """Trials of one experiment (a run's batch, a merged batch, or the rows of runs without
    either), ordered by trial id: the stored columns, then the metrics' (named ``METRIC + key``)."""

    key: Any  #: what parts of one schema share (their layout id)
    batch: pa.RecordBatch
    #: Per metric field: the row of the part where its key first appears and its position in that row.
    firsts: list[tuple[int, int]]
    first: int  #: the part's first and last trial id
    last: int


def core_names(conn: sqlite3.Connection) -> list[str]:
    """The columns of ``trials``, but the metrics' JSON."""
    return [r[1] for r in conn.execute("PRAGMA table_info(trials)") if r[1] != "metrics_json"]


def select_columns(core: list[str]) -> str:
    """The ``core`` columns, then the metrics' JSON as bytes (for Arrow's JSON reader)."""
    return ", ".join([*core, "CAST(metrics_json AS BLOB)"])


def part_from_rows(key: Any, core: list[str], rows: list[tuple[Any, ...]]) -> Part | None:
    """The part of ``rows`` (the ``core`` columns, then the metrics' JSON as bytes; ordered by trial
    id); None where a column holds what the row read types otherwise (text beside numbers, bytes) or
    Arrow's JSON reader does not take the metrics flat."""
    import pyarrow as pa

    columns = list(zip(*rows))
    arrays = []
    for values in columns[:-1]:
        try:
            array = pa.array(values)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            return None
        if str(array.type) not in CORE_TYPES:
            return None
        arrays.append(array)
    metrics = schema.arrow_json(columns[-1])
    firsts = None if metrics is None else first_appearances(columns[-1], metrics.column_names)
    if metrics is None or firsts is None:
        return None
    arrays += [c.combine_chunks() for c in metrics.columns]
    batch = pa.RecordBatch.from_arrays(arrays, names=core + [METRIC + k for k in metrics.column_names])
    ids = batch.column(core.index("trial_id"))
    return Part(key, batch, firsts, ids[0].as_py(), ids[-1].as_py())


def first_appearances(texts: tuple[bytes, ...], keys: list[str]) -> list[tuple[int, int]] | None:
    """Where each of ``keys`` (all the keys of the JSON objects ``texts``, in the order they first
    appear) first appears: the row and its position there. Rows are read until every key is
    seen (most often the first row holds them all); None where the keys are not these."""
    seen: dict[str, tuple[int, int]] = {}
    for row, text in enumerate(texts):
        if len(seen) >= len(keys):
            break
        obj = json.loads(text)
        if not isinstance(obj, dict):
            return None
        for pos, k in enumerate(obj):
            seen.setdefault(k, (row, pos))
    return [seen[k] for k in keys] if list(seen) == keys else None


def where_clause(**conditions: Any) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE a = ? AND b = ?`` for the conditions that are not None, and their values."""
    used = {k: v for k, v in conditions.items() if v is not None}
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{k} = ?" for k in used), tuple(used.values())


def read_table(
    conn: sqlite3.Connection, experiment: str | None = None, run_id: str | None = None
) -> tuple[pa.Table, int] | None:
    """The trials of ``experiment`` and ``run_id`` (None: any) as one Arrow table ordered by trial
    id and the number of its stored columns (the metrics' fields follow): from merged batches
    (for reads of whole experiments), run batches, and the rows of runs without either; None
    where the row read must give the frame. Call inside a read transaction."""
    where, args = where_clause(experiment=experiment, run_id=run_id)
    # how many trials each run holds (sealing.TRIAL_COUNTS): no scan of the trials
    counts = {(r, e): n for r, e, n in conn.execute(f"SELECT * FROM trial_counts{where}", args) if n}
    if sum(counts.values()) < schema.BULK_ROWS:
        return None
    core = core_names(conn)
    runs = conn.execute(
        f"SELECT rowid, run_id, experiment, layout_id, first_trial, last_trial, n, codec, size, frame_id"
        f" FROM run_frames{where}",
        args,
    ).fetchall()
    merged = [] if run_id is not None else conn.execute(f"SELECT * FROM merged_frames{where}", args).fetchall()
    layouts = _layouts(conn, {row[3] for row in runs} | {row[2] for row in merged}, core)
    parts, sealed = _merged_parts(merged, runs, counts, layouts)
    wanted = [row for row in runs if (row[1], row[2]) not in sealed and counts.get((row[1], row[2])) == row[6]]
    for i in range(0, len(wanted), LIVE_RUNS_PER_QUERY):
        chunk = {row[0]: row for row in wanted[i : i + LIVE_RUNS_PER_QUERY]}
        marks = ", ".join("?" * len(chunk))
        for rowid, data in conn.execute(f"SELECT rowid, data FROM run_frames WHERE rowid IN ({marks})", list(chunk)):
            _, run, exp, layout, first, last, n, codec, size, _ = chunk[rowid]
            part = _decode(layout, first, last, n, codec, size, data, layouts)
            if part is not None:
                parts.append(part)
                sealed.add((run, exp))
    live = [k for k in counts if k not in sealed]
    if not sealed:
        return None
    if live:
        rest = _live_part(conn, core, live)
        if rest is None:
            return None
        parts.append(rest)
    table = combine(parts, core)
    return None if table is None else (table, len(core))


def _merged_parts(
    merged: list[tuple[Any, ...]], runs: list[tuple[Any, ...]], counts: dict, layouts: dict
) -> tuple[list[Part], set[tuple[str, str]]]:
    """The parts of the merged batches whose runs still hold the trials they held, and those runs."""
    members: dict[int, list[tuple[str, str]]] = {}
    for row in runs:
        if row[9] is not None and counts.get((row[1], row[2])) == row[6]:
            members.setdefault(row[9], []).append((row[1], row[2]))
    parts, sealed = [], set()
    for frame, _, layout, first, last, n, codec, size, data in merged:
        if sum(counts[k] for k in members.get(frame, ())) != n:
            continue
        part = _decode(layout, first, last, n, codec, size, data, layouts)
        if part is not None:
            parts.append(part)
            sealed.update(members[frame])
    return parts, sealed


def _decode(
    layout: int, first: int, last: int, n: int, codec: str, size: int, data: bytes, layouts: dict
) -> Part | None:
    """A stored batch as a part; None where this pyarrow cannot read it (its trials' rows are read)."""
    import pyarrow as pa
    import pyarrow.ipc

    decompress = _codec(codec) if codec else None
    if layout not in layouts or (codec and decompress is None):
        return None
    try:
        buf = decompress.decompress(data, size) if decompress else pa.py_buffer(data)
        batch = pyarrow.ipc.read_record_batch(buf, layouts[layout][0])
    except (pa.ArrowException, OSError, ValueError):
        return None
    return Part(layout, batch, layouts[layout][1], first, last) if batch.num_rows == n else None


@functools.lru_cache(maxsize=8)
def _codec(name: str) -> pa.Codec | None:
    """The codec ``name`` of this pyarrow; None where it has none of that name."""
    import pyarrow as pa

    try:
        return pa.Codec(name) if pa.Codec.is_available(name) else None
    except ValueError:  # a name it does not know
        return None


def _layouts(conn: sqlite3.Connection, ids: set[int], core: list[str]) -> dict[int, tuple[pa.Schema, list]]:
    """Layouts ``ids`` whose stored columns are ``core``: their Arrow schema and first appearances."""
    import pyarrow as pa
    import pyarrow.ipc

    out: dict[int, tuple[pa.Schema, list]] = {}
    if not ids:
        return out
    marks = ", ".join("?" * len(ids))
    for layout_id, blob, text in conn.execute(f"SELECT * FROM frame_layouts WHERE layout_id IN ({marks})", list(ids)):
        try:
            s, firsts = pyarrow.ipc.read_schema(pa.py_buffer(blob)), [tuple(f) for f in json.loads(text)]
        except (pa.ArrowException, OSError, ValueError, TypeError):  # not this pyarrow's to read: its runs' rows are
            continue
        metrics = s.names[len(core) :]
        if s.names[: len(core)] == core and len(metrics) == len(firsts) and all(n.startswith(METRIC) for n in metrics):
            out[layout_id] = (s, firsts)
    return out


def _live_part(conn: sqlite3.Connection, core: list[str], live: list[tuple[str, str]]) -> Part | None:
    """The rows of the runs (and experiments) ``live``, which have no batch, as one part: read by
    run (an index lookup each), kept where their experiment is the one asked for."""
    runs, rows = sorted({r for r, _ in live}), []
    for i in range(0, len(runs), LIVE_RUNS_PER_QUERY):
        chunk = runs[i : i + LIVE_RUNS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        rows += conn.execute(
            f"SELECT {select_columns(core)} FROM trials WHERE run_id IN ({marks}) ORDER BY trial_id", chunk
        )
    wanted, r, e, t = set(live), core.index("run_id"), core.index("experiment"), core.index("trial_id")
    rows = [row for row in rows if (row[r], row[e]) in wanted]
    if len(runs) > LIVE_RUNS_PER_QUERY:
        rows.sort(key=lambda row: row[t])
    return part_from_rows("live", core, rows) if rows else None


def unify(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The type Arrow's JSON reader gives a column holding values of types ``a`` and ``b``; None
    where it refuses (booleans with numbers, text with numbers) or the row read is needed."""
    import pyarrow as pa

    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    if {str(a), str(b)} == {"int64", "double"}:
        return pa.float64()
    return None


def _metric_order(parts: list[Part]) -> tuple[list[str], bool]:
    """The metrics' keys in the order they first appear over all the trials of ``parts`` (ordered
    by their first trial), and whether parts overlap in trial ids (then the rows need sorting)."""
    seen: dict[str, tuple[int, int]] = {}
    done, last, overlap = set(), -1, False
    for part in parts:  # ordered by their first trial
        after = part.first > last  # every key seen so far appeared before this part
        overlap |= not after
        last = max(last, part.last)
        if after and part.key in done:
            continue
        done.add(part.key)
        names, ids = part.batch.schema.names, None
        for name, (row, pos) in zip(names[len(names) - len(part.firsts) :], part.firsts):
            if after and name in seen:
                continue
            ids = part.batch.column("trial_id") if ids is None else ids
            at = (ids[row].as_py(), pos)
            if name not in seen or at < seen[name]:
                seen[name] = at
    return sorted(seen, key=seen.__getitem__), overlap


def combine(parts: list[Part], core: list[str]) -> pa.Table | None:
    """One table of ``parts``, its metrics typed as Arrow's JSON reader types all their rows at
    once (:func:`unify`) and in the order their keys first appear; None where that reader would
    refuse them."""
    import numpy as np
    import pyarrow as pa

    parts = sorted(parts, key=lambda p: p.first)  # runs are not sealed in the order of their trials
    order, overlap = _metric_order(parts)
    groups: dict[Any, list[pa.RecordBatch]] = {}
    for part in parts:
        groups.setdefault(part.key, []).append(part.batch)
    tables = [pa.Table.from_batches(batches) for batches in groups.values()]
    names = core + order
    types: dict[str, pa.DataType] = {}
    for table in tables:
        for field in table.schema:
            kind = unify(types.get(field.name, pa.null()), field.type)
            if kind is None:
                return None
            types[field.name] = kind
    same = []
    for table in tables:
        if table.schema.names == names and all(f.type == types[f.name] for f in table.schema):
            same.append(table)  # as it is: a table's validation costs per piece (a run's)
            continue
        columns = []
        for name in names:
            i = table.schema.get_field_index(name)
            column = table.column(i) if i >= 0 else pa.nulls(table.num_rows, types[name])
            columns.append(column if column.type == types[name] else column.cast(types[name], safe=False))
        same.append(pa.Table.from_arrays(columns, names=names))
    out = pa.concat_tables(same)
    if len(same) > 1 or overlap:
        out = out.take(np.argsort(out.column("trial_id").to_numpy(), kind="stable"))
    # pandas keeps text in Arrow as it comes: one piece, not one per run (a run's piece each makes
    # every later operation on the column slower; numbers are copied into one array anyway), with
    # the 64-bit offsets pandas holds text with (the data is not copied again); the parameters'
    # JSON is only factorized
    for i, column in enumerate(out.columns):
        if pa.types.is_string(column.type) and out.schema.names[i] != "params_json":
            text = column.combine_chunks().cast(pa.large_string())
            out = out.set_column(i, pa.field(out.schema.names[i], pa.large_string()), pa.chunked_array([text]))
    return out


@dataclass
class Fetched:
    """What :func:`fetch_trials` read: a table by columns (and the number of its stored columns), or rows."""

    table: pa.Table | None = None
    ncore: int = 0
    names: list[str] | None = None
    rows: list[tuple[Any, ...]] | None = None

    def frame(self) -> pd.DataFrame:
        """The tidy frame: what :func:`labkit.store.schema.expand_trials` gives for the rows."""
        import pandas as pd

        if self.table is not None:
            core = self.table.select(list(range(self.ncore))).to_pandas()
            metrics = self.table.select(list(range(self.ncore, self.table.num_columns)))
            metrics = metrics.rename_columns([n[len(METRIC) :] for n in metrics.column_names]).to_pandas()
            return schema.join_trials(core, metrics)
        names, rows = self.names or [], self.rows or []
        columns, texts = list(zip(*rows)) or [()] * len(names), {"params_json", "metrics_json"}
        return schema.expand_trials(
            pd.DataFrame({n: pd.Series(c, dtype=object if n in texts else None) for n, c in zip(names, columns)})
        )


def fetch_trials(conn: sqlite3.Connection, experiment: str | None = None, run_id: str | None = None) -> Fetched:
    """The trials of ``experiment`` and ``run_id`` (None: any), in one read transaction (a
    consistent read): by columns (:func:`read_table`) where that gives the frame the rows give,
    else the rows (the metrics as bytes, for Arrow's JSON reader)."""
    conn.execute("BEGIN")
    try:
        try:
            columns = read_table(conn, experiment, run_id)
        except sqlite3.OperationalError:  # tables of batches not as this labkit made them: the rows
            columns = None
        if columns is not None:
            return Fetched(*columns)
        where, args = where_clause(experiment=experiment, run_id=run_id)
        names = [r[1] for r in conn.execute("PRAGMA table_info(trials)")]
        wanted = ", ".join("CAST(metrics_json AS BLOB)" if n == "metrics_json" else n for n in names)
        return Fetched(
            names=names, rows=conn.execute(f"SELECT {wanted} FROM trials{where} ORDER BY trial_id", args).fetchall()
        )
    finally:
        conn.execute("COMMIT")
