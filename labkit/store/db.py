"""ResultStore: every run, trial, monitor sample and alert in one SQLite file.

>>> store = ResultStore(":memory:")
>>> run_id = store.start_run("demo", "array-sum", env={}, config={})
>>> _ = store.add_trial(Trial(run_id=run_id, experiment="demo", workload="array-sum",
...     point='{"workers": 1}', params={}, repeat=0, workers=1, threads=1, backend="numpy",
...     status="ok", wall_s=0.5, amount=1e6, unit="bytes"))
>>> store.trials_frame()["throughput"].tolist()
[2000000.0]
>>> store.end_run(run_id)
>>> store.runs_frame()["status"].tolist()
['finished']
>>> store.close()

SQLite through the standard library, in WAL mode, one transaction per trial: a process
killed mid-sweep loses at most the trial in flight, and the next open of the store marks
its run ``interrupted``. A run that ends (or is found interrupted) has its trials kept by
columns too, for bulk loads (:mod:`labkit.store.columnar`). A store written by an older labkit
opens: the columns added since (run status, pid and host; trial fingerprints) are added, NULL
for the old rows, and its ended runs are kept by columns. The default file is
``results/labkit.db`` (or ``$LABKIT_STORE``), relative to the working directory.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

from .columnar import fetch_trials
from .columnar import where_clause as _where
from .schema import (
    INDEXES,
    RUN_STATUSES,
    SCHEMA,
    SCHEMA_VERSION,
    STATUSES,
    TRIAL_COLUMNS,
    Trial,
    add_columns,
    check_store_path,
    default_path,
    json_number,
    trial_row,
)
from .sealing import FRAMES, TRIAL_COUNTS, drop_unmergeable_frames, seal_run
from .secrets import redact, redact_text

if TYPE_CHECKING:
    import pandas as pd


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
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if drop_unmergeable_frames(self._conn):
                version = min(version, 2)  # batches of the first layout: made again below
            self._conn.executescript(SCHEMA + FRAMES)
            if version < SCHEMA_VERSION:
                add_columns(self._conn)
                self._conn.executescript(INDEXES)
                if version < 3:  # the runs an older labkit stored, by columns (columnar.py)
                    self._conn.executescript(TRIAL_COUNTS)
                    ended = self._conn.execute("SELECT run_id FROM runs WHERE status IS NOT 'running'").fetchall()
                    self.seal([r for (r,) in ended])
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as e:
            raise ParameterError(
                "store", str(self.path), f"a path where a SQLite database can be written ({e})"
            ) from None
        self._closed = False
        self.mark_stale_runs()

    # -- writing -------------------------------------------------------------------------

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]] | tuple[Any, ...], many: bool = False) -> sqlite3.Cursor:
        with self._lock, self._conn:
            return self._conn.executemany(sql, rows) if many else self._conn.execute(sql, rows)

    def start_run(self, experiment: str, workload: str, *, env: dict[str, Any], config: dict[str, Any]) -> str:
        """Record the start of a run (status ``running``, this process's pid and host) with its
        environment snapshot; return its id."""
        import uuid

        run_id = uuid.uuid4().hex[:12]
        self._write(
            "INSERT INTO runs (run_id, experiment, workload, started_at, ended_at, env_json, config_json,"
            " status, pid, host) VALUES (?, ?, ?, ?, NULL, ?, ?, 'running', ?, ?)",
            (
                run_id,
                experiment,
                workload,
                time.time(),
                json.dumps(redact(env), default=str),
                json.dumps(redact(config), default=str),
                os.getpid(),
                platform.node(),
            ),
        )
        return run_id

    def end_run(self, run_id: str, status: str = "finished") -> None:
        """Record the end of a run and what became of it (one of :data:`RUN_STATUSES`)."""
        if status not in RUN_STATUSES:
            raise ParameterError("status", status, f"one of {RUN_STATUSES}")
        self._write("UPDATE runs SET ended_at = ?, status = ? WHERE run_id = ?", (time.time(), status, run_id))
        self.seal([run_id])

    def seal(self, run_ids: Iterable[str]) -> int:
        """Keep the trials of ended runs by columns too, for bulk reads (:mod:`labkit.store.columnar`),
        each run in its own transaction; return how many runs were kept so. A run that gets
        trials or changes later loses its columns at once (a trigger); a busy store is left as it is."""
        done = 0
        for run_id in run_ids:
            try:
                with self._lock:
                    done += seal_run(self._conn, run_id) > 0
            except sqlite3.OperationalError:  # busy: these runs are read from their rows
                break
            except Exception:  # noqa: BLE001 - what columns cannot hold is read from its rows
                continue
        return done

    def mark_stale_runs(self) -> list[str]:
        """Mark ``interrupted`` the runs still ``running`` whose process is gone; return their ids.

        A run's process is gone when it ran on this host and its pid no longer exists, or
        belongs to a process started after the run (the pid was reused). Runs of other
        hosts cannot be checked from here and stay ``running``; their end time stays
        unknown (NULL).
        """
        import psutil

        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id, pid, started_at FROM runs WHERE status = 'running' AND host = ?", (platform.node(),)
            ).fetchall()
        stale = []
        for run_id, pid, started in rows:
            try:
                alive = pid is not None and psutil.Process(pid).create_time() <= started + 1.0
            except psutil.NoSuchProcess:
                alive = False
            except psutil.Error:  # not ours to inspect: it exists
                alive = True
            if not alive:
                stale.append(run_id)
        if stale:
            try:
                self._write(
                    "UPDATE runs SET status = 'interrupted' WHERE run_id = ? AND status = 'running'",
                    [(r,) for r in stale],
                    many=True,
                )
            except sqlite3.OperationalError:  # busy or read-only: the next open will try again
                return []
            self.seal(stale)
        return stale

    def add_fingerprint(self, key: str, parts: dict[str, Any]) -> None:
        """Keep what a trial fingerprint stands for (machine, versions, shape, code), once per key."""
        self._write(
            "INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)",
            (key, json.dumps(redact(parts), sort_keys=True, default=str), time.time()),
        )

    def add_trial(self, trial: Trial) -> int:
        """Append one trial in its own transaction; return its id."""
        if trial.status not in STATUSES:
            raise ParameterError("status", trial.status, f"one of {STATUSES}")
        cur = self._write(f"INSERT INTO trials ({TRIAL_COLUMNS}) VALUES ({', '.join('?' * 19)})", trial_row(trial))
        trial.trial_id = int(cur.lastrowid)
        return trial.trial_id

    def add_trials(self, trials: Iterable[Trial]) -> None:
        """Append many trials in one transaction (an import, a benchmark's store); their
        ``trial_id`` is left unset. A sweep stores each trial alone, as it ends."""
        rows = []
        for trial in trials:
            if trial.status not in STATUSES:
                raise ParameterError("status", trial.status, f"one of {STATUSES}")
            rows.append(trial_row(trial))
        self._write(f"INSERT INTO trials ({TRIAL_COLUMNS}) VALUES ({', '.join('?' * 19)})", rows, many=True)

    def status_counts(self) -> pd.DataFrame:
        """Trials per run and status (``run_id``, ``status``, ``n``), counted by SQLite."""
        return self._query("SELECT run_id, status, COUNT(*) AS n FROM trials GROUP BY run_id, status")

    def update_metrics(self, trial_id: int, metrics: dict[str, Any]) -> None:
        """Merge ``metrics`` into a stored trial's metrics (for figures that settle later)."""
        with self._lock, self._conn:
            row = self._conn.execute("SELECT metrics_json FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
            merged = {**json.loads(row[0]), **metrics} if row else metrics
            self._conn.execute(
                "UPDATE trials SET metrics_json = ? WHERE trial_id = ?",
                (json.dumps(merged, default=json_number), trial_id),
            )

    def add_trace(self, trial_id: int, run_id: str, data: bytes) -> None:
        """Keep a trial's trace (``labkit.measure.trace.Trace.to_bytes``), replacing any earlier one."""
        self._write("INSERT OR REPLACE INTO traces VALUES (?, ?, ?)", (trial_id, run_id, sqlite3.Binary(data)))

    def traces_frame(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per traced trial: ``trial_id``, ``run_id`` and its compressed ``trace`` (bytes)."""
        where, args = _where(run_id=run_id)
        return self._query(f"SELECT * FROM traces{where} ORDER BY trial_id", args)

    def add_samples(self, rows: Iterable[tuple[str, int | None, float, str, str, float | None]]) -> None:
        """Append monitor samples ``(run_id, trial_id, time, worker, metric, value)``."""
        self._write("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)", list(rows), many=True)

    def drop_samples(self, before: float) -> int:
        """Delete the raw monitor samples of the runs that started before ``before`` (epoch
        seconds); return how many rows went. Runs, trials (with each trial's resource
        summary: mean CPU, peak memory, network, load), alerts and traces stay."""
        old = "SELECT run_id FROM runs WHERE started_at < ?"
        return self._write(f"DELETE FROM samples WHERE run_id IN ({old})", (float(before),)).rowcount

    def add_alert(
        self,
        run_id: str,
        trial_id: int | None,
        kind: str,
        message: str,
        worker: str | None = None,
        at: float | None = None,
    ) -> None:
        self._write(
            "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, trial_id, at or time.time(), kind, worker, redact_text(message)),
        )

    def cache_put(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, json.dumps(redact(value)), time.time()))

    def cache_get(self, key: str) -> Any | None:
        with self._lock:
            row = self._conn.execute("SELECT value_json FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def cache_items(self, prefix: str) -> list[tuple[str, Any]]:
        """Cached ``(key, value)`` pairs whose key starts with ``prefix``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, value_json FROM cache WHERE substr(key, 1, ?) = ? ORDER BY created_at",
                (len(prefix), prefix),
            ).fetchall()
        return [(k, json.loads(v)) for k, v in rows]

    # -- reading -------------------------------------------------------------------------

    def finished(self, experiment: str, *, fingerprints: Collection[str] | None = None) -> dict[str, dict[int, float]]:
        """Wall times of the trials of ``experiment`` that ended ok: ``{point: {repeat: wall_s}}``.

        With ``fingerprints``, only trials carrying one of them (a trial without a
        fingerprint matches none).
        """
        done: dict[str, dict[int, float]] = {}
        for point, repeat, wall, fp, *_ in self.ok_trials(experiment):
            if fingerprints is None or fp in fingerprints:
                done.setdefault(point, {})[repeat] = wall
        return done

    def ok_trials(self, experiment: str) -> list[tuple[str, int, float, str | None, str, float | None]]:
        """The trials of ``experiment`` that ended ok, oldest first:
        ``(point, repeat, wall_s, fingerprint, run_id, run started_at)``."""
        with self._lock:
            return self._conn.execute(
                "SELECT t.point, t.repeat, t.wall_s, t.fingerprint, t.run_id, r.started_at FROM trials t"
                " LEFT JOIN runs r ON r.run_id = t.run_id"
                " WHERE t.experiment = ? AND t.status = 'ok' ORDER BY t.trial_id",
                (experiment,),
            ).fetchall()

    def fingerprint_parts(self, keys: Iterable[str | None]) -> dict[str, dict[str, Any]]:
        """What each fingerprint key stands for (keys the store does not know are left out)."""
        wanted = sorted({k for k in keys if k is not None})
        if not wanted:
            return {}
        with self._lock:
            rows = self._conn.execute(
                f"SELECT fingerprint, parts_json FROM fingerprints WHERE fingerprint IN ({', '.join('?' * len(wanted))})",
                wanted,
            ).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> pd.DataFrame:
        import pandas as pd

        with self._lock:
            return pd.read_sql_query(sql, self._conn, params=args)

    def trials_frame(self, experiment: str | None = None, run_id: str | None = None) -> pd.DataFrame:
        """Trials as a tidy DataFrame: one row per trial, one column per parameter and metric.

        Ended runs are read by their columns (:mod:`labkit.store.columnar`), the rest row by
        row; the frame is the same either way."""
        with self._lock:
            fetched = fetch_trials(self._conn, experiment, run_id)
        return fetched.frame()

    def runs_frame(self) -> pd.DataFrame:
        """One row per run: experiment, workload, start and end, status, pid and host, snapshots."""
        return self._query("SELECT * FROM runs ORDER BY started_at")

    def fingerprints_frame(self) -> pd.DataFrame:
        """One row per trial fingerprint: its key and what it stands for (JSON)."""
        return self._query("SELECT * FROM fingerprints ORDER BY created_at")

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
        from .export import export_trials

        return export_trials(self, path, experiment=experiment)

    def export_bundle(
        self, folder: str | os.PathLike[str], *, experiment: str | None = None, run_id: str | None = None
    ) -> dict[str, Path]:
        """Write trials, monitor samples, time splits and alerts as Parquet files in ``folder``."""
        from .export import export_bundle

        return export_bundle(self, folder, experiment=experiment, run_id=run_id)

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
