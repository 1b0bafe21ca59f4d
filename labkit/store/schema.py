"""What the store holds: the SQLite schema, the Trial record and its row, the default path, tidy frames.

What it must never hold (secrets) is :mod:`labkit.store.secrets`'s to take out.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError, ParameterTypeError

from .secrets import redact, redact_text

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


DEFAULT_PATH = "results/labkit.db"


STATUSES = ("ok", "error", "timeout", "degraded")  # degraded: a worker was lost mid-run

#: What became of a run: ``running`` while its process works (or until a later open of the
#: store finds that process gone), then ``finished``, ``failed`` (it raised) or ``interrupted``
#: (KeyboardInterrupt, or its process was killed). NULL in stores older than the column.
RUN_STATUSES = ("running", "finished", "failed", "interrupted")


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, workload TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, env_json TEXT NOT NULL, config_json TEXT NOT NULL,
    status TEXT, pid INTEGER, host TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(run_id),
    experiment TEXT NOT NULL, workload TEXT NOT NULL, point TEXT NOT NULL,
    params_json TEXT NOT NULL, repeat INTEGER NOT NULL, workers INTEGER, threads INTEGER,
    backend TEXT, status TEXT NOT NULL, error TEXT, wall_s REAL, amount REAL, unit TEXT,
    throughput REAL, started_at REAL, ended_at REAL, metrics_json TEXT NOT NULL DEFAULT '{}',
    fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS trials_by_point ON trials (experiment, point, repeat, status);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL, trial_id INTEGER, time REAL NOT NULL, worker TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL
);
CREATE INDEX IF NOT EXISTS samples_by_run ON samples (run_id, time);
CREATE TABLE IF NOT EXISTS alerts (
    run_id TEXT NOT NULL, trial_id INTEGER, time REAL NOT NULL, kind TEXT NOT NULL,
    worker TEXT, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, value_json TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT PRIMARY KEY, parts_json TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    trial_id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, trace BLOB NOT NULL
);
"""

#: Columns added since the first schema: a store without them gets them on open
#: (``ALTER TABLE ... ADD COLUMN``), its old rows NULL there. A column added here raises
#: :data:`SCHEMA_VERSION`, so that stores already opened take it too.
ADDED_COLUMNS = {
    "runs": (("status", "TEXT"), ("pid", "INTEGER"), ("host", "TEXT")),
    "trials": (("fingerprint", "TEXT"),),
}

#: Indexes on added columns, made once the columns exist, and for what the lab asks of a
#: store that has grown (a run's trials, an experiment's runs, a run's alerts).
INDEXES = """
CREATE INDEX IF NOT EXISTS trials_by_fingerprint ON trials (experiment, fingerprint);
CREATE INDEX IF NOT EXISTS trials_by_run ON trials (run_id, status);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment, started_at);
CREATE INDEX IF NOT EXISTS alerts_by_run ON alerts (run_id, time);
"""


#: The schema's version, kept in the file (``PRAGMA user_version``). 0: a store made before
#: it was kept; each open brings an older store up to this one (:data:`ADDED_COLUMNS`,
#: :data:`INDEXES`; to 3, the trials by columns of :mod:`labkit.store.sealing`) and records
#: it. A store a newer labkit made opens too: what it added is read where it is a table's
#: column, and left alone otherwise.
SCHEMA_VERSION = 3


@dataclass
class Trial:
    """One timed run of a workload at one point of a sweep's grid."""

    run_id: str
    experiment: str
    workload: str
    point: str  # canonical JSON of the grid point: the key a resumed sweep skips by
    params: dict[str, Any]
    repeat: int
    workers: int | None
    threads: int | None
    backend: str | None
    status: str
    error: str | None = None
    wall_s: float | None = None
    amount: float | None = None
    unit: str | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float = field(default_factory=time.time)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: What was measured: machine, versions, cluster shape and workload code, as a key of the
    #: store's ``fingerprints`` table (None: not recorded, as in stores older than the column).
    fingerprint: str | None = None
    trial_id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.error, str):  # an error's text may quote a URL with its token
            self.error = redact_text(self.error)

    @property
    def throughput(self) -> float | None:
        if self.status != "ok" or not self.wall_s or self.amount is None:
            return None
        return self.amount / self.wall_s


def default_path() -> str:
    """``$LABKIT_STORE`` if set, else ``results/labkit.db``."""
    return os.environ.get("LABKIT_STORE") or DEFAULT_PATH


PROJECT_MARKERS = ("pyproject.toml", ".git")


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding a
    ``pyproject.toml`` or ``.git``; the working directory itself when there is none.

    A notebook's kernel runs in the notebook's folder (``notebooks/``), a script or
    ``labkit run`` in the folder they were started from: relative store paths are taken
    from here, so all of them mean the same file.
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in PROJECT_MARKERS):
            return folder
    return here


def resolve_store_path(path: str | os.PathLike[str]) -> Path:
    """An absolute store path: a relative one is taken from :func:`project_root`.

    >>> resolve_store_path("/tmp/x.db")
    PosixPath('/tmp/x.db')
    >>> resolve_store_path("results/labkit.db") == project_root() / "results" / "labkit.db"
    True
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    return p if p.is_absolute() else project_root() / p


def check_path_text(path: Any, name: str = "store") -> str:
    """``path`` as text, if it can name a file: a str or path, not empty, without NUL."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ParameterTypeError(name, path, "str or pathlib.Path, the path of a .db file")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise ParameterTypeError(name, path, "str or pathlib.Path, the path of a .db file")
    if "\x00" in text:
        raise ParameterError(name, text, "a path without NUL characters")
    if not text.strip():
        raise ParameterError(name, text, "the path of a database file")
    return text


#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_file(p: Path, name: str = "store") -> None:
    """Refuse an existing file that is something other than a SQLite database (an empty
    file is fine: it becomes one). Only regular files are opened (never a FIFO or device)."""
    if not p.is_file():
        raise ParameterError(name, str(p), "the path of a database file (a regular file, not a folder or device)")
    with open(p, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise ParameterError(name, str(p), "a SQLite database file; this file is something else")


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """Make sure a store can be written at ``path`` and return its absolute path.

    A relative path is taken from the project root (:func:`resolve_store_path`). The
    store's folder is created when its own parent exists (``results/`` in a project); a
    deeper missing tree is refused, as is a place where a file cannot really be created,
    and an existing file that is not a SQLite database.
    """
    if isinstance(path, str) and path == ":memory:":
        return Path(path)
    text = check_path_text(path)
    try:
        return _check_writable(text, resolve_store_path(text))
    except OSError as e:  # e.g. a name too long for the file system
        raise ParameterError("store", text, f"a usable path ({e.strerror or e})") from None


def _check_writable(text: str, p: Path) -> Path:
    if p.exists() and p.is_dir():
        raise ParameterError("store", text, "the path of a database file, not a folder")
    if p.exists():
        check_sqlite_file(p)
    if not p.parent.exists():
        if not p.parent.parent.is_dir():
            raise ParameterError("store", text, f"a path in an existing folder ({p.parent.parent} does not exist)")
        try:
            p.parent.mkdir()
        except OSError as e:
            raise ParameterError("store", text, f"a path whose folder can be created ({e.strerror})") from None
    try:  # os.access says yes to root in /proc and on read-only mounts: try for real
        if p.exists():
            with open(p, "ab"):
                pass
        else:
            import tempfile

            with tempfile.NamedTemporaryFile(dir=p.parent, prefix=".labkit-write-test-"):
                pass
    except OSError as e:
        raise ParameterError("store", text, f"a writable path ({p.parent}: {e.strerror})") from None
    return p


CORE_COLUMNS = [f.name for f in fields(Trial) if f.name not in ("params", "metrics")] + ["throughput"]


def expand_trials(df: pd.DataFrame) -> pd.DataFrame:
    """Turn the stored JSON columns into one column per parameter and per metric."""
    return join_trials(df, json_rows(df.pop("metrics_json")))


def join_trials(df: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The trials' columns ``df`` (``params_json`` among them) with one column per parameter, then
    the ``metrics`` (one column per metric, the same rows), the times as UTC datetimes."""
    import pandas as pd

    codes, uniques = pd.factorize(df.pop("params_json"))  # a point's parameters, parsed once
    params = pd.DataFrame([json.loads(s) for s in uniques]).take(codes).set_axis(df.index)
    taken = set(df.columns)
    same = [c for c in params.columns if c in taken and params[c].astype(str).equals(df[c].astype(str))]
    params = params.drop(columns=same)  # e.g. backend: a core column already
    params = params.rename(columns=lambda c: f"param_{c}" if c in taken else c)
    taken |= set(params.columns)
    metrics = metrics.rename(columns=lambda c: f"metric_{c}" if c in taken else c)
    out = pd.concat([df, params, metrics], axis=1)
    for col in ("started_at", "ended_at"):
        out[col] = pd.to_datetime(out[col], unit="s", utc=True)
    return out


#: From this many rows, :func:`json_rows` parses in bulk.
BULK_ROWS = 1000


def json_rows(texts: pd.Series) -> pd.DataFrame:
    """One row per JSON object of ``texts`` (str or UTF-8 bytes), one column per key (a key a row lacks reads missing).

    From :data:`BULK_ROWS` rows, Arrow's JSON reader parses them all in one call, in C++, as
    long as every key holds plain values of one kind (numbers, booleans or text); a nested
    value (a list, an object) or a key whose kind changes between rows is read by the
    :mod:`json` module row by row, as fewer rows always are.
    """
    import pandas as pd

    if len(texts) >= BULK_ROWS and (table := arrow_json(texts)) is not None:
        return table.to_pandas().set_axis(texts.index)
    return pd.DataFrame([json.loads(s) for s in texts], index=texts.index)


def arrow_json(texts: Iterable[str | bytes]) -> pa.Table | None:
    """JSON objects (str or UTF-8 bytes) parsed by Arrow's JSON reader in one call, one column per key in
    the order the keys first appear; None where it refuses them (a key whose kind changes, a key twice
    in an object) or a value is nested (a list, an object)."""
    import pyarrow as pa
    import pyarrow.json as pj

    data = b"\n".join(t if isinstance(t, bytes) else t.encode() for t in texts)
    try:
        table = pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(block_size=max(1 << 20, len(data) + 1)))
    except pa.ArrowInvalid:
        return None
    return None if any(pa.types.is_nested(t) for t in table.schema.types) else table


def trial_record(trial: Trial) -> dict[str, Any]:
    """A trial as a flat dict, for tables shown while a sweep runs."""
    d = asdict(trial)
    d.update(d.pop("params"))
    d.update(d.pop("metrics"))
    d["throughput"] = trial.throughput
    return d


TRIAL_COLUMNS = (
    "run_id, experiment, workload, point, params_json, repeat, workers, threads, backend, status, error,"
    " wall_s, amount, unit, throughput, started_at, ended_at, metrics_json, fingerprint"
)


def trial_row(trial: Trial) -> tuple[Any, ...]:
    """A trial as the values of :data:`TRIAL_COLUMNS`, secrets redacted."""
    return (
        trial.run_id,
        trial.experiment,
        trial.workload,
        trial.point,
        json.dumps(redact(trial.params), sort_keys=True, default=str),
        trial.repeat,
        trial.workers,
        trial.threads,
        trial.backend,
        trial.status,
        trial.error,
        trial.wall_s,
        trial.amount,
        trial.unit,
        trial.throughput,
        trial.started_at,
        trial.ended_at,
        json.dumps(trial.metrics, default=json_number),
        trial.fingerprint,
    )


def json_number(value: Any) -> Any:
    """NumPy scalars and other numbers as plain JSON numbers (anything else as text)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def add_columns(conn: sqlite3.Connection) -> None:
    """Add the columns (:data:`ADDED_COLUMNS`) a store made by an older labkit lacks; its old rows read NULL there."""
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name in have:
                continue
            try:
                with conn:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as e:  # another process added it meanwhile
                if "duplicate column" not in str(e):
                    raise
