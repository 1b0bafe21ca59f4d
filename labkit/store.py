"""ResultStore: every run, trial, monitor sample and alert in one SQLite file.

>>> store = ResultStore(":memory:")
>>> run_id = store.start_run("demo", "array-sum", env={}, config={})
>>> _ = store.add_trial(Trial(run_id=run_id, experiment="demo", workload="array-sum",
...     point='{"workers": 1}', params={}, repeat=0, workers=1, threads=1, backend="numpy",
...     status="ok", wall_s=0.5, amount=1e6, unit="bytes"))
>>> store.trials_frame()["throughput"].tolist()
[2000000.0]
>>> store.close()

SQLite through the standard library, in WAL mode, one transaction per trial: a process
killed mid-sweep loses at most the trial in flight. The default file is
``results/labkit.db`` (or ``$LABKIT_STORE``), relative to the working directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PATH = "results/labkit.db"
STATUSES = ("ok", "error", "timeout")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, experiment TEXT NOT NULL, workload TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, env_json TEXT NOT NULL, config_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(run_id),
    experiment TEXT NOT NULL, workload TEXT NOT NULL, point TEXT NOT NULL,
    params_json TEXT NOT NULL, repeat INTEGER NOT NULL, workers INTEGER, threads INTEGER,
    backend TEXT, status TEXT NOT NULL, error TEXT, wall_s REAL, amount REAL, unit TEXT,
    throughput REAL, started_at REAL, ended_at REAL, metrics_json TEXT NOT NULL DEFAULT '{}'
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
    trial_id: int | None = None

    @property
    def throughput(self) -> float | None:
        if self.status != "ok" or not self.wall_s or self.amount is None:
            return None
        return self.amount / self.wall_s


def default_path() -> str:
    """``$LABKIT_STORE`` if set, else ``results/labkit.db``."""
    return os.environ.get("LABKIT_STORE") or DEFAULT_PATH


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """Make sure a store can be written at ``path`` (creating its folder); return it."""
    p = Path(path)
    if str(path) == ":memory:":
        return p
    if p.exists() and p.is_dir():
        raise ParameterError("store", str(path), "the path of a database file, not a folder")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParameterError("store", str(path), f"a path whose folder can be created ({e.strerror})") from None
    target = p if p.exists() else p.parent
    if not os.access(target, os.W_OK):
        raise ParameterError("store", str(path), f"a writable path ({target} is not writable)")
    return p


class ResultStore:
    """Runs, trials, monitor samples and alerts in a SQLite file.

    Parameters
    ----------
    path : str or Path, optional
        The database file (created with its folder). Default: :func:`default_path`.

    The store is safe to share between the sweep and the monitor's thread; closing it is
    idempotent.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = check_store_path(default_path() if path is None else path)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode keeps every committed trial across a process crash.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise ParameterError("store", str(self.path), f"a path where a SQLite database can be written ({e})") from None
        self._closed = False

    # -- writing -------------------------------------------------------------------------

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]] | tuple[Any, ...], many: bool = False) -> sqlite3.Cursor:
        with self._lock, self._conn:
            return self._conn.executemany(sql, rows) if many else self._conn.execute(sql, rows)

    def start_run(self, experiment: str, workload: str, *, env: dict[str, Any], config: dict[str, Any]) -> str:
        """Record the start of a run with its environment snapshot; return its id."""
        import uuid

        run_id = uuid.uuid4().hex[:12]
        self._write(
            "INSERT INTO runs VALUES (?, ?, ?, ?, NULL, ?, ?)",
            (run_id, experiment, workload, time.time(), json.dumps(env, default=str), json.dumps(config, default=str)),
        )
        return run_id

    def end_run(self, run_id: str) -> None:
        self._write("UPDATE runs SET ended_at = ? WHERE run_id = ?", (time.time(), run_id))

    def add_trial(self, trial: Trial) -> int:
        """Append one trial in its own transaction; return its id."""
        if trial.status not in STATUSES:
            raise ParameterError("status", trial.status, f"one of {STATUSES}")
        cur = self._write(
            "INSERT INTO trials (run_id, experiment, workload, point, params_json, repeat, workers,"
            " threads, backend, status, error, wall_s, amount, unit, throughput, started_at,"
            " ended_at, metrics_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trial.run_id, trial.experiment, trial.workload, trial.point,
                json.dumps(trial.params, sort_keys=True, default=str), trial.repeat, trial.workers,
                trial.threads, trial.backend, trial.status, trial.error, trial.wall_s, trial.amount,
                trial.unit, trial.throughput, trial.started_at, trial.ended_at,
                json.dumps(trial.metrics, default=_json_number),
            ),
        )
        trial.trial_id = int(cur.lastrowid)
        return trial.trial_id

    def update_metrics(self, trial_id: int, metrics: dict[str, Any]) -> None:
        """Merge ``metrics`` into a stored trial's metrics (for figures that settle later)."""
        with self._lock, self._conn:
            row = self._conn.execute("SELECT metrics_json FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
            merged = {**json.loads(row[0]), **metrics} if row else metrics
            self._conn.execute("UPDATE trials SET metrics_json = ? WHERE trial_id = ?", (json.dumps(merged, default=_json_number), trial_id))

    def add_samples(self, rows: Iterable[tuple[str, int | None, float, str, str, float | None]]) -> None:
        """Append monitor samples ``(run_id, trial_id, time, worker, metric, value)``."""
        self._write("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)", list(rows), many=True)

    def add_alert(self, run_id: str, trial_id: int | None, kind: str, message: str, worker: str | None = None, at: float | None = None) -> None:
        self._write("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)", (run_id, trial_id, at or time.time(), kind, worker, message))

    def cache_put(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, json.dumps(value), time.time()))

    def cache_get(self, key: str) -> Any | None:
        with self._lock:
            row = self._conn.execute("SELECT value_json FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- reading -------------------------------------------------------------------------

    def finished(self, experiment: str) -> dict[str, dict[int, float]]:
        """Wall times of the trials of ``experiment`` that ended ok: ``{point: {repeat: wall_s}}``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT point, repeat, wall_s FROM trials WHERE experiment = ? AND status = 'ok' ORDER BY trial_id", (experiment,)
            ).fetchall()
        done: dict[str, dict[int, float]] = {}
        for point, repeat, wall in rows:
            done.setdefault(point, {})[repeat] = wall
        return done

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> pd.DataFrame:
        import pandas as pd

        with self._lock:
            return pd.read_sql_query(sql, self._conn, params=args)

    def trials_frame(self, experiment: str | None = None, run_id: str | None = None) -> pd.DataFrame:
        """Trials as a tidy DataFrame: one row per trial, one column per parameter and metric."""
        where, args = _where(experiment=experiment, run_id=run_id)
        df = self._query(f"SELECT * FROM trials{where} ORDER BY trial_id", args)
        return expand_trials(df)

    def runs_frame(self) -> pd.DataFrame:
        return self._query("SELECT * FROM runs ORDER BY started_at")

    def samples_frame(self, run_id: str | None = None) -> pd.DataFrame:
        where, args = _where(run_id=run_id)
        return self._query(f"SELECT * FROM samples{where} ORDER BY time", args)

    def alerts_frame(self, run_id: str | None = None) -> pd.DataFrame:
        where, args = _where(run_id=run_id)
        return self._query(f"SELECT * FROM alerts{where} ORDER BY time", args)

    def run_env(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._conn.execute("SELECT env_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return {} if row is None else json.loads(row[0])

    def export(self, path: str | os.PathLike[str], *, experiment: str | None = None) -> Path:
        """Write the trials to ``path`` as CSV (``.csv``) or Parquet (``.parquet``)."""
        out = Path(path)
        df = self.trials_frame(experiment)
        if out.suffix == ".csv":
            df.to_csv(out, index=False)
        elif out.suffix == ".parquet":
            df.to_parquet(out, index=False)
        else:
            raise ParameterError("path", str(path), "a file name ending in .csv or .parquet")
        return out

    def export_bundle(self, folder: str | os.PathLike[str], *, experiment: str | None = None, run_id: str | None = None) -> dict[str, Path]:
        """Write trials, monitor samples, time splits and alerts as Parquet files in ``folder``.

        Every table carries ``run_id``, ``trial_id`` where it has one, ``time`` (UTC) and
        ``elapsed_s`` since its run started, so the tables line up on one time axis;
        ``pandas.read_parquet(folder / "samples.parquet")`` reads each back.
        """
        import pandas as pd

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        trials = self.trials_frame(experiment, run_id)
        runs = self.runs_frame()
        runs = runs[runs["run_id"].isin(trials["run_id"].unique())] if experiment or run_id else runs
        start = dict(zip(runs["run_id"], runs["started_at"]))

        def aligned(df: pd.DataFrame, seconds: pd.Series) -> pd.DataFrame:
            df = df.copy()
            df["elapsed_s"] = seconds.to_numpy() - df["run_id"].map(start).to_numpy(dtype=float)
            df["time"] = pd.to_datetime(seconds.to_numpy(), unit="s", utc=True)
            return df

        ids = set(runs["run_id"])
        samples = self.samples_frame()
        samples = samples[samples["run_id"].isin(ids)]
        alerts = self.alerts_frame()
        alerts = alerts[alerts["run_id"].isin(ids)]
        split_cols = [c for c in trials.columns if c.startswith("time_")]
        splits = trials[["run_id", "trial_id", "experiment", "point", "repeat", "workers", "started_at", *split_cols]]
        tables = {
            "trials": aligned(trials, trials["started_at"].astype("int64") / 1e9),
            "samples": aligned(samples, samples["time"]),
            "time_splits": aligned(splits, splits["started_at"].astype("int64") / 1e9),
            "alerts": aligned(alerts, alerts["time"]),
            "runs": runs,
        }
        paths = {}
        for name, df in tables.items():
            paths[name] = out / f"{name}.parquet"
            df.to_parquet(paths[name], index=False)
        return paths

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._lock:
                self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ResultStore {self.path}>"


def _json_number(value: Any) -> Any:
    """numpy scalars and other numbers as plain JSON numbers."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _where(**conditions: Any) -> tuple[str, tuple[Any, ...]]:
    used = {k: v for k, v in conditions.items() if v is not None}
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{k} = ?" for k in used), tuple(used.values())


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
