"""Trials by columns, written: a run's Arrow batch when it ends, batches of many runs merged, and the tables that hold them.

Why batches is :mod:`labkit.store.columnar`'s docstring; this is how they stay true. The
``trials`` table stays the record, written one trial per transaction as before. A run's
batch (``run_frames``, one per run and experiment) is written when the run ends
(``ResultStore.end_run``), when a later open marks it interrupted, and for every ended run
when an older store is migrated, each in a write transaction of its own after the trials it
copies were committed: what a process killed meanwhile loses is a copy, never a trial. Once
an experiment's unmerged run batches hold :data:`MERGE_ROWS` trials they are merged
(``merged_frames``); the run batches stay, for reads of one run. Triggers (:data:`FRAMES`)
drop a run's batch in the same transaction as any insert, update or delete of its trials,
whoever writes (an older labkit, a SQLite shell), and with it the merged batch that holds
it: no batch is ever stale, and a run without one is read from its rows.

What it costs: a run's batch written when the run ends, a merge once its experiment's loose
batches hold :data:`MERGE_ROWS` trials, a larger file, two triggers more on each write of a
trial (:data:`TRIAL_COUNTS`), and once, on the first open of a store an older labkit wrote,
the batches of all its ended runs. ``benchmarks/scale.py`` builds its stores through these
(100,000 quickstart-shaped trials a side, one run of 68 after another); it does not time the
writes apart.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:")
>>> from labkit.store.schema import SCHEMA
>>> conn.executescript(SCHEMA + FRAMES + TRIAL_COUNTS) and None
>>> seal_run(conn, "no-such-run")  # no trials, no batch
0
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .columnar import Part, core_names, part_from_rows, select_columns

#: The tables of batches, run by run and merged, and the triggers that keep them true: a
#: write to a run's trials, whoever makes it (an older labkit, a SQLite shell), drops the
#: run's batch in its own transaction, and with it any merged batch holding that run.
FRAMES = """
CREATE TABLE IF NOT EXISTS frame_layouts (
    layout_id INTEGER PRIMARY KEY, schema BLOB NOT NULL, firsts TEXT NOT NULL, UNIQUE (schema, firsts)
);
CREATE TABLE IF NOT EXISTS run_frames (
    run_id TEXT NOT NULL, experiment TEXT NOT NULL, layout_id INTEGER NOT NULL, first_trial INTEGER NOT NULL,
    last_trial INTEGER NOT NULL, n INTEGER NOT NULL, codec TEXT NOT NULL, size INTEGER NOT NULL,
    data BLOB NOT NULL, frame_id INTEGER, PRIMARY KEY (run_id, experiment)
);
CREATE INDEX IF NOT EXISTS run_frames_by_experiment ON run_frames (experiment, frame_id);
CREATE INDEX IF NOT EXISTS run_frames_by_frame ON run_frames (frame_id);
CREATE TABLE IF NOT EXISTS merged_frames (
    frame_id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, layout_id INTEGER NOT NULL,
    first_trial INTEGER NOT NULL, last_trial INTEGER NOT NULL, n INTEGER NOT NULL, codec TEXT NOT NULL,
    size INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS merged_frames_by_experiment ON merged_frames (experiment);
CREATE TRIGGER IF NOT EXISTS trials_insert_unseals AFTER INSERT ON trials
BEGIN DELETE FROM run_frames WHERE run_id = NEW.run_id; END;
CREATE TRIGGER IF NOT EXISTS trials_update_unseals AFTER UPDATE ON trials
BEGIN DELETE FROM run_frames WHERE run_id IN (OLD.run_id, NEW.run_id); END;
CREATE TRIGGER IF NOT EXISTS trials_delete_unseals AFTER DELETE ON trials
BEGIN DELETE FROM run_frames WHERE run_id = OLD.run_id; END;
CREATE TRIGGER IF NOT EXISTS run_frames_unmerge AFTER DELETE ON run_frames WHEN OLD.frame_id IS NOT NULL
BEGIN DELETE FROM merged_frames WHERE frame_id = OLD.frame_id; END;
CREATE TRIGGER IF NOT EXISTS merged_frames_release AFTER DELETE ON merged_frames
BEGIN UPDATE run_frames SET frame_id = NULL WHERE frame_id = OLD.frame_id; END;
"""

#: How many trials each run holds per experiment, kept by triggers whoever writes, so that a
#: read learns which runs it covers without scanning an index of every trial (that scan read
#: 3.5 s from disk at a million trials). Made, and counted, in one write transaction.
TRIAL_COUNTS = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS trial_counts (
    run_id TEXT NOT NULL, experiment TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (run_id, experiment)
);
CREATE INDEX IF NOT EXISTS trial_counts_by_experiment ON trial_counts (experiment);
CREATE TRIGGER IF NOT EXISTS trials_insert_counts AFTER INSERT ON trials BEGIN
    INSERT OR IGNORE INTO trial_counts VALUES (NEW.run_id, NEW.experiment, 0);
    UPDATE trial_counts SET n = n + 1 WHERE run_id = NEW.run_id AND experiment = NEW.experiment;
END;
CREATE TRIGGER IF NOT EXISTS trials_delete_counts AFTER DELETE ON trials BEGIN
    UPDATE trial_counts SET n = n - 1 WHERE run_id = OLD.run_id AND experiment = OLD.experiment;
    DELETE FROM trial_counts WHERE run_id = OLD.run_id AND experiment = OLD.experiment AND n <= 0;
END;
CREATE TRIGGER IF NOT EXISTS trials_move_counts AFTER UPDATE OF run_id, experiment ON trials BEGIN
    UPDATE trial_counts SET n = n - 1 WHERE run_id = OLD.run_id AND experiment = OLD.experiment;
    DELETE FROM trial_counts WHERE run_id = OLD.run_id AND experiment = OLD.experiment AND n <= 0;
    INSERT OR IGNORE INTO trial_counts VALUES (NEW.run_id, NEW.experiment, 0);
    UPDATE trial_counts SET n = n + 1 WHERE run_id = NEW.run_id AND experiment = NEW.experiment;
END;
DELETE FROM trial_counts;
INSERT INTO trial_counts SELECT run_id, experiment, COUNT(*) FROM trials GROUP BY run_id, experiment;
COMMIT;
"""

#: The codec of a stored batch (``pyarrow.compress``; without it in this pyarrow, none): lz4
#: decompresses 14,706 run batches (a million trials) in 0.3 s, zstd in 0.9 s, for 92 bytes
#: a trial against 74 (590 uncompressed).
CODEC = "lz4"
#: Once an experiment's run batches in no merged batch hold this many trials, they are merged
#: (those of one schema, in trial order): a million trials are then read from about 250
#: batches instead of 14,706 (the Arrow work per batch made that read grow faster than the trials).
MERGE_ROWS = 8192
#: Rows named in one ``IN (...)`` (older SQLite takes at most 999 parameters).
CHUNK = 500


def seal_run(conn: sqlite3.Connection, run_id: str) -> int:
    """Write the batches of ``run_id``'s trials (one per experiment, replacing any) and merge
    each experiment's unmerged batches where they come to :data:`MERGE_ROWS`, in one write
    transaction; return how many run batches were written (none for trials the row read must
    type)."""
    core = core_names(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(f"SELECT {select_columns(core)} FROM trials WHERE run_id = ? ORDER BY trial_id", (run_id,))
        by_experiment: dict[str, list[tuple[Any, ...]]] = {}
        e = core.index("experiment")
        for row in rows.fetchall():
            by_experiment.setdefault(row[e], []).append(row)
        written = 0
        for experiment, group in by_experiment.items():
            conn.execute("DELETE FROM run_frames WHERE run_id = ? AND experiment = ?", (run_id, experiment))
            part = part_from_rows(None, core, group)
            if part is not None:
                _store(conn, run_id, experiment, part)
                merge_loose(conn, experiment)
                written += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return written


def drop_unmergeable_frames(conn: sqlite3.Connection) -> bool:
    """Drop the run batches of a store made before batches were merged (``run_frames`` without
    ``frame_id``): they are copies of its trials, written again when the store is brought up to date."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(run_frames)")}
    if not have or "frame_id" in have:
        return False
    with conn:
        conn.execute("DROP TABLE run_frames")
    return True


def _pack(batch: Any) -> tuple[bytes, str, int]:
    """A batch as an IPC message compressed with :data:`CODEC`: (bytes, codec, raw size)."""
    import pyarrow as pa

    raw = batch.serialize()
    if pa.Codec.is_available(CODEC):
        return pa.Codec(CODEC).compress(raw, asbytes=True), CODEC, raw.size
    return raw.to_pybytes(), "", raw.size


def _store(conn: sqlite3.Connection, run_id: str, experiment: str, part: Part) -> None:
    layout = (part.batch.schema.serialize().to_pybytes(), json.dumps(part.firsts, separators=(",", ":")))
    conn.execute("INSERT OR IGNORE INTO frame_layouts (schema, firsts) VALUES (?, ?)", layout)
    (layout_id,) = conn.execute(
        "SELECT layout_id FROM frame_layouts WHERE schema = ? AND firsts = ?", layout
    ).fetchone()
    data, codec, size = _pack(part.batch)
    conn.execute(
        "INSERT INTO run_frames (run_id, experiment, layout_id, first_trial, last_trial, n, codec, size, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, experiment, layout_id, part.first, part.last, part.batch.num_rows, codec, size, data),
    )


def merge_loose(conn: sqlite3.Connection, experiment: str) -> int:
    """Where ``experiment``'s run batches in no merged batch hold :data:`MERGE_ROWS` trials, merge
    them: each stretch of runs of one schema that follow one another in trial ids becomes one
    batch (the layout of its first run: its keys appear there first). Return how many merged."""
    loose = conn.execute(
        "SELECT rowid, layout_id, first_trial, last_trial, n, codec, size FROM run_frames"
        " WHERE experiment = ? AND frame_id IS NULL ORDER BY first_trial",
        (experiment,),
    ).fetchall()
    if sum(row[4] for row in loose) < MERGE_ROWS:
        return 0
    ids = sorted({row[1] for row in loose})
    schemas = dict(conn.execute(f"SELECT layout_id, schema FROM frame_layouts WHERE layout_id IN ({_marks(ids)})", ids))
    stretches: list[list[tuple[Any, ...]]] = []
    for row in loose:
        last = stretches[-1][-1] if stretches else None
        if last is not None and schemas[row[1]] == schemas[last[1]] and row[2] > last[3]:
            stretches[-1].append(row)
        else:
            stretches.append([row])
    merged = [s for s in stretches if len(s) > 1]
    for stretch in merged:
        _merge(conn, experiment, stretch, schemas[stretch[0][1]])
    return len(merged)


def _merge(conn: sqlite3.Connection, experiment: str, stretch: list[tuple[Any, ...]], schema: bytes) -> None:
    import pyarrow as pa
    import pyarrow.ipc

    arrow_schema = pyarrow.ipc.read_schema(pa.py_buffer(schema))
    rowids = [row[0] for row in stretch]
    data = {}
    for i in range(0, len(rowids), CHUNK):
        chunk = rowids[i : i + CHUNK]
        data.update(conn.execute(f"SELECT rowid, data FROM run_frames WHERE rowid IN ({_marks(chunk)})", chunk))
    batches = []
    for rowid, _, _, _, _, codec, size in stretch:
        buf = pa.Codec(codec).decompress(data[rowid], size) if codec else pa.py_buffer(data[rowid])
        batches.append(pyarrow.ipc.read_record_batch(buf, arrow_schema))
    batch = pa.Table.from_batches(batches, arrow_schema).combine_chunks().to_batches()[0]
    blob, codec, size = _pack(batch)
    first, last = stretch[0], stretch[-1]
    frame = conn.execute(
        "INSERT INTO merged_frames (experiment, layout_id, first_trial, last_trial, n, codec, size, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (experiment, first[1], first[2], last[3], batch.num_rows, codec, size, blob),
    ).lastrowid
    for i in range(0, len(rowids), CHUNK):
        chunk = rowids[i : i + CHUNK]
        conn.execute(f"UPDATE run_frames SET frame_id = ? WHERE rowid IN ({_marks(chunk)})", (frame, *chunk))


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))
