"""What the store holds: the SQLite schema, the Trial record, the default path, tidy frames."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd


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
"""

#: Columns added since the first schema: a store without them gets them on open
#: (``ALTER TABLE ... ADD COLUMN``), its old rows NULL there.
ADDED_COLUMNS = {
    "runs": (("status", "TEXT"), ("pid", "INTEGER"), ("host", "TEXT")),
    "trials": (("fingerprint", "TEXT"),),
}

#: Indexes on added columns, made once the columns exist.
INDEXES = """
CREATE INDEX IF NOT EXISTS trials_by_fingerprint ON trials (experiment, fingerprint);
"""


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


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """Make sure a store can be written at ``path`` and return its absolute path.

    A relative path is taken from the project root (:func:`resolve_store_path`). The
    store's folder is created when its own parent exists (``results/`` in a project); a
    deeper missing tree is refused, as is a place where a file cannot really be created.
    """
    if str(path) == ":memory:":
        return Path(path)
    p = resolve_store_path(path)
    if p.exists() and p.is_dir():
        raise ParameterError("store", str(path), "the path of a database file, not a folder")
    if not p.parent.exists():
        if not p.parent.parent.is_dir():
            raise ParameterError("store", str(path), f"a path in an existing folder ({p.parent.parent} does not exist)")
        try:
            p.parent.mkdir()
        except OSError as e:
            raise ParameterError("store", str(path), f"a path whose folder can be created ({e.strerror})") from None
    try:  # os.access says yes to root in /proc and on read-only mounts: try for real
        if p.exists():
            with open(p, "ab"):
                pass
        else:
            import tempfile

            with tempfile.NamedTemporaryFile(dir=p.parent, prefix=".labkit-write-test-"):
                pass
    except OSError as e:
        raise ParameterError("store", str(path), f"a writable path ({p.parent}: {e.strerror})") from None
    return p


CORE_COLUMNS = [f.name for f in fields(Trial) if f.name not in ("params", "metrics")] + ["throughput"]


def expand_trials(df: pd.DataFrame) -> pd.DataFrame:
    """Turn the stored JSON columns into one column per parameter and per metric."""
    import pandas as pd

    params = pd.DataFrame([json.loads(s) for s in df.pop("params_json")], index=df.index)
    metrics = pd.DataFrame([json.loads(s) for s in df.pop("metrics_json")], index=df.index)
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


def trial_record(trial: Trial) -> dict[str, Any]:
    """A trial as a flat dict, for tables shown while a sweep runs."""
    d = asdict(trial)
    d.update(d.pop("params"))
    d.update(d.pop("metrics"))
    d["throughput"] = trial.throughput
    return d
