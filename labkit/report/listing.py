"""What a store holds, as a table: experiments and runs with date, status, environment, trial counts.

>>> from labkit.store import ResultStore
>>> with ResultStore(":memory:") as store:
...     runs_table(store).empty
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError
from labkit.store import default_path, resolve_store_path
from labkit.store.schema import check_path_text, check_sqlite_file

if TYPE_CHECKING:
    import pandas as pd

    from labkit.store import ResultStore


def existing_store(path: str | os.PathLike[str] | None) -> Path:
    """The path of a store that exists (default: ``results/labkit.db`` or ``$LABKIT_STORE``);
    reading commands never create one."""
    text = check_path_text(default_path() if path is None else path)
    try:
        p = resolve_store_path(text)
        if not p.is_file():
            raise ParameterError("store", str(p), "the path of an existing labkit store (a .db file a sweep wrote)")
        check_sqlite_file(p)
    except OSError as e:  # e.g. a name too long for the file system, or no permission to read it
        raise ParameterError("store", text, f"a readable labkit store ({e.strerror or e})") from None
    return p


def _environment(env_json: str) -> str:
    env: dict[str, Any] = json.loads(env_json or "{}")
    cluster = env.get("cluster") or {}
    versions = env.get("versions") or {}
    parts = [env.get("hostname"), f"{env.get('cpu_count')} cpus" if env.get("cpu_count") else None]
    if cluster:
        parts.append(f"{cluster.get('workers')}w×{cluster.get('threads')}t {cluster.get('kind', '')}".strip())
    if versions.get("dask"):
        parts.append(f"dask {versions['dask']}")
    return ", ".join(p for p in parts if p)


def runs_table(store: ResultStore) -> pd.DataFrame:
    """One row per run: experiment, workload, start (UTC), status, trials ok/failed, environment."""
    import pandas as pd

    runs = store.runs_frame()
    columns = ["experiment", "run_id", "started", "status", "ok", "failed", "workload", "environment"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    per_status = store.status_counts()  # counted by SQLite: no trial is read
    ok = per_status["status"].eq("ok")
    counts = pd.DataFrame(
        {
            "ok": per_status[ok].groupby("run_id")["n"].sum(),
            "failed": per_status[~ok].groupby("run_id")["n"].sum(),
        }
    )
    out = pd.DataFrame(
        {
            "experiment": runs["experiment"],
            "run_id": runs["run_id"],
            "started": pd.to_datetime(runs["started_at"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "status": runs["status"]
            if "status" in runs
            else ["finished" if e == e else "not recorded" for e in runs["ended_at"]],
            "workload": runs["workload"],
            "environment": [_environment(e) for e in runs["env_json"]],
        }
    )
    out = out.join(counts, on="run_id").fillna({"ok": 0, "failed": 0})
    out[["ok", "failed"]] = out[["ok", "failed"]].astype(int)
    return out[columns].sort_values(["experiment", "started"]).reset_index(drop=True)
