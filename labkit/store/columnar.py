"""Trials by columns: each ended run's trials kept once more as one Arrow record batch, so that loads are bulk reads.

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
- one Arrow record batch per run, these: the whole load (``Results.load``) in 0.21-0.27 s
  of CPU (0.43-0.58 s wall while other work kept the load average at 4-8; the row read
  took 2.2 s wall then). A batch is a schema-less IPC message (the schema is kept once per
  layout: a stream per batch, schema included, decodes 50 times slower), compressed whole
  with :data:`CODEC`.

What it costs: writing a run's batch when it ends (about 2.4 ms of CPU for a run of 68
such trials), a file 10% larger (batches and an index), and once, on the first open of a
store an older labkit wrote, the batches of its ended runs (about 35 µs of CPU a trial).

How it stays true. The ``trials`` table stays the record, written one trial per
transaction as before; a run's batch (``run_frames``, one per run and experiment) is
written when the run ends (``ResultStore.end_run``), when a later open marks it
interrupted, and for every ended run when an older store is migrated. Triggers on
``trials`` (:data:`labkit.store.schema.SCHEMA`) drop a run's batch in the same transaction
as any insert, update or delete of its trials, whoever writes (an older labkit, a SQLite
shell): a batch is never stale, a run without one is read from its rows. A read
(:func:`read_table`) unions the batches with the rows of runs that have none, in one read
transaction, and gives the frame the row read gives: the metrics as Arrow's JSON reader
types them over all the rows at once (per-run types combine as it combines them: a missing
value with any kind, integers with floats; the order of the columns is the order in which
their keys first appear). Any other mix, nested values, fewer than
:data:`labkit.store.schema.BULK_ROWS` trials, or a layout made for other ``trials`` columns:
the row read, as before.

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
#: The codec of a stored batch (``pyarrow.compress``; without it in this pyarrow, none): lz4
#: decompresses 14,706 batches (a million trials) in 0.3 s, zstd in 0.9 s, for 92 bytes a
#: trial against 74 (590 uncompressed).
CODEC = "lz4"
#: The Arrow types of stored columns a part can hold: what pandas infers from the same Python values.
CORE_TYPES = ("null", "int64", "double", "string")
#: Runs without a batch are read by their ids, this many a query.
LIVE_RUNS_PER_QUERY = 500


@dataclass
class Part:
    """Trials of one run and experiment (or the rows of runs without a batch), ordered by trial id:
    the stored columns, then the metrics' (named ``METRIC + key``)."""

    key: Any  #: what parts of one schema share (their layout id)
    batch: pa.RecordBatch
    #: Per metric field: the row of the part where its key first appears and its position in that row.
    firsts: list[tuple[int, int]]
    first: int  #: the part's first and last trial id
    last: int


def core_names(conn: sqlite3.Connection) -> list[str]:
    """The columns of ``trials``, but the metrics' JSON."""
    return [r[1] for r in conn.execute("PRAGMA table_info(trials)") if r[1] != "metrics_json"]


def _select(core: list[str]) -> str:
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


def seal_run(conn: sqlite3.Connection, run_id: str) -> int:
    """Write the batches of ``run_id``'s trials (one per experiment) in one write transaction,
    replacing any; return how many were written (none for trials the row read must type)."""
    core = core_names(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(f"SELECT {_select(core)} FROM trials WHERE run_id = ? ORDER BY trial_id", (run_id,))
        by_experiment: dict[str, list[tuple[Any, ...]]] = {}
        e = core.index("experiment")
        for row in rows.fetchall():
            by_experiment.setdefault(row[e], []).append(row)
        written = 0
        for experiment, group in by_experiment.items():
            part = part_from_rows(None, core, group)
            if part is not None:
                _store(conn, run_id, experiment, part)
                written += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return written


def _store(conn: sqlite3.Connection, run_id: str, experiment: str, part: Part) -> None:
    import pyarrow as pa

    layout = (part.batch.schema.serialize().to_pybytes(), json.dumps(part.firsts, separators=(",", ":")))
    conn.execute("INSERT OR IGNORE INTO frame_layouts (schema, firsts) VALUES (?, ?)", layout)
    (layout_id,) = conn.execute(
        "SELECT layout_id FROM frame_layouts WHERE schema = ? AND firsts = ?", layout
    ).fetchone()
    raw = part.batch.serialize()
    codec = CODEC if pa.Codec.is_available(CODEC) else ""
    data = pa.compress(raw, codec=codec, asbytes=True) if codec else raw.to_pybytes()
    conn.execute(
        "INSERT OR REPLACE INTO run_frames VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, experiment, layout_id, part.first, part.last, part.batch.num_rows, codec, raw.size, data),
    )


def read_table(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> tuple[pa.Table, int] | None:
    """The trials ``where`` selects as one Arrow table ordered by trial id and the number of its stored
    columns (the metrics' fields follow), from the runs' batches and the rows of runs without one;
    None where the row read must give the frame. Call inside a read transaction."""
    import pyarrow as pa
    import pyarrow.ipc

    counts = {
        (r, e): n
        for r, e, n in conn.execute(f"SELECT run_id, experiment, COUNT(*) FROM trials{where} GROUP BY 1, 2", args)
    }
    if sum(counts.values()) < schema.BULK_ROWS:
        return None
    core = core_names(conn)
    stored = conn.execute(
        f"SELECT run_id, experiment, layout_id, first_trial, last_trial, n, codec, size, data FROM run_frames{where}",
        args,
    ).fetchall()
    layouts = _layouts(conn, {row[2] for row in stored}, core)
    codecs = {c: codec for c in {row[6] for row in stored} if c and (codec := _codec(c)) is not None}
    parts, sealed = [], set()
    for run, experiment, layout, first, last, n, codec, size, data in stored:
        if counts.get((run, experiment)) != n or layout not in layouts or (codec and codec not in codecs):
            continue
        try:
            buf = codecs[codec].decompress(data, size) if codec else pa.py_buffer(data)
            batch = pyarrow.ipc.read_record_batch(buf, layouts[layout][0])
        except (pa.ArrowException, OSError, ValueError):  # not this pyarrow's to read: the run's rows are
            continue
        if batch.num_rows != n:
            continue
        parts.append(Part(layout, batch, layouts[layout][1], first, last))
        sealed.add((run, experiment))
    live = [k for k in counts if k not in sealed]
    if not sealed:
        return None
    if live:
        rest = _live_part(conn, core, where, args, live)
        if rest is None:
            return None
        parts.append(rest)
    table = combine(parts, core)
    return None if table is None else (table, len(core))


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


def _live_part(
    conn: sqlite3.Connection, core: list[str], where: str, args: tuple[Any, ...], live: list[tuple[str, str]]
) -> Part | None:
    """The rows of the runs (and experiments) ``live``, which have no batch, as one part."""
    runs, rows = sorted({r for r, _ in live}), []
    for i in range(0, len(runs), LIVE_RUNS_PER_QUERY):
        chunk = runs[i : i + LIVE_RUNS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        clause = f"{where} AND run_id IN ({marks})" if where else f" WHERE run_id IN ({marks})"
        rows += conn.execute(
            f"SELECT {_select(core)} FROM trials{clause} ORDER BY trial_id", (*args, *chunk)
        ).fetchall()
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
    # every later operation on the column slower; numbers are copied into one array anyway)
    for i, column in enumerate(out.columns):
        if pa.types.is_string(column.type):
            out = out.set_column(i, out.schema.field(i), pa.chunked_array([column.combine_chunks()]))
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


def fetch_trials(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> Fetched:
    """The trials ``where`` selects, in one read transaction (a consistent read): by columns
    (:func:`read_table`) where that gives the frame the rows give, else the rows (the metrics as
    bytes, for Arrow's JSON reader)."""
    conn.execute("BEGIN")
    try:
        columns = read_table(conn, where, args)
        if columns is not None:
            return Fetched(*columns)
        names = [r[1] for r in conn.execute("PRAGMA table_info(trials)")]
        wanted = ", ".join("CAST(metrics_json AS BLOB)" if n == "metrics_json" else n for n in names)
        return Fetched(
            names=names, rows=conn.execute(f"SELECT {wanted} FROM trials{where} ORDER BY trial_id", args).fetchall()
        )
    finally:
        conn.execute("COMMIT")
