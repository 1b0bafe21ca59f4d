"""Getting results out of the store: the trials as CSV or Parquet, or a bundle of Parquet tables.

One store holds many experiments, and their parameters share columns: ``seed`` may be an
integer in one experiment and text in another, and a parameter may hold a list. Parquet
needs one type per column, so a column whose values are of more than one type, or hold
lists or dicts, is written as JSON text (``json.loads`` reads each value back; missing
values stay missing). Columns of one plain type keep it. CSV is written the same way, so
such a column reads back the same from either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from labkit.common.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd


class TableSource(Protocol):
    """What the exports read: the store's tables as frames (``ResultStore`` is one)."""

    def trials_frame(self, experiment: str | None = None, run_id: str | None = None) -> pd.DataFrame: ...

    def runs_frame(self) -> pd.DataFrame: ...

    def samples_frame(self, run_id: str | None = None) -> pd.DataFrame: ...

    def alerts_frame(self, run_id: str | None = None) -> pd.DataFrame: ...

    def fingerprints_frame(self) -> pd.DataFrame: ...

    def traces_frame(self, run_id: str | None = None) -> pd.DataFrame: ...


def _plain(value: object) -> bool:
    return isinstance(value, (str, bytes, bool, int, float)) or value is None


def _as_is(column: pd.Series) -> bool:
    """Whether :func:`parquet_ready` leaves ``column`` as it is, told without a Python loop over
    its values: pandas' ``str`` (text, NaN where missing), or objects all None or text."""
    import pandas as pd

    if isinstance(column.dtype, pd.StringDtype) and isinstance(column.dtype.na_value, float):
        return True
    return set(map(type, column.to_numpy(dtype=object))) <= {type(None), str}


def parquet_ready(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each object column of mixed or nested values as JSON text (see the module's docstring).

    >>> import pandas as pd
    >>> seeds = parquet_ready(pd.DataFrame({"seed": [1, "a", None], "n": [1, 2, 3]}))["seed"]
    >>> seeds.tolist()[:2], bool(seeds.isna()[2])
    (['1', '"a"'], True)
    """
    import pandas as pd

    out = df.copy()
    for column in [c for c in out.columns if out[c].dtype.kind == "O" and not _as_is(out[c])]:
        values = [v for v in out[column] if v is not None and not (isinstance(v, float) and pd.isna(v))]
        kinds = {type(v) for v in values}
        if len(kinds) > 1 or not all(_plain(v) for v in values):
            out[column] = [
                None if v is None or (isinstance(v, float) and pd.isna(v)) else json.dumps(v, default=str)
                for v in out[column]
            ]
    return out


def export_trials(store: TableSource, path: str | os.PathLike[str], *, experiment: str | None = None) -> Path:
    """Write the trials to ``path`` as CSV (``.csv``) or Parquet (``.parquet``)."""
    out = Path(path)
    df = store.trials_frame(experiment)
    if out.suffix == ".csv":
        parquet_ready(df).to_csv(out, index=False)
    elif out.suffix == ".parquet":
        parquet_ready(df).to_parquet(out, index=False)
    else:
        raise ParameterError("path", str(path), "a file name ending in .csv or .parquet")
    return out


def export_bundle(
    store: TableSource, folder: str | os.PathLike[str], *, experiment: str | None = None, run_id: str | None = None
) -> dict[str, Path]:
    """Write trials, monitor samples, time splits and alerts as Parquet files in ``folder``,
    with the runs (status, environment), the fingerprints the trials carry and their traces
    (compressed, ``labkit.measure.trace.Trace.from_bytes`` reads one).

    Every table carries ``run_id``, ``trial_id`` where it has one, ``time`` (UTC) and
    ``elapsed_s`` since its run started, so the tables line up on one time axis;
    ``pandas.read_parquet(folder / "samples.parquet")`` reads each back.
    """
    import pandas as pd

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    trials = store.trials_frame(experiment, run_id)
    runs = store.runs_frame()
    runs = runs[runs["run_id"].isin(trials["run_id"].unique())] if experiment or run_id else runs
    start = dict(zip(runs["run_id"], runs["started_at"]))

    def aligned(df: pd.DataFrame, seconds: pd.Series) -> pd.DataFrame:
        df = df.copy()
        df["elapsed_s"] = seconds.to_numpy() - df["run_id"].map(start).to_numpy(dtype=float)
        df["time"] = pd.to_datetime(seconds.to_numpy(), unit="s", utc=True)
        return df

    fingerprints = store.fingerprints_frame()
    ids = set(runs["run_id"])
    samples = store.samples_frame()
    samples = samples[samples["run_id"].isin(ids)]
    alerts = store.alerts_frame()
    alerts = alerts[alerts["run_id"].isin(ids)]
    split_cols = [c for c in trials.columns if c.startswith("time_")]
    splits = trials[["run_id", "trial_id", "experiment", "point", "repeat", "workers", "started_at", *split_cols]]
    tables = {
        "trials": aligned(trials, trials["started_at"].astype("int64") / 1e9),
        "samples": aligned(samples, samples["time"]),
        "time_splits": aligned(splits, splits["started_at"].astype("int64") / 1e9),
        "alerts": aligned(alerts, alerts["time"]),
        "runs": runs,
        "fingerprints": fingerprints[fingerprints["fingerprint"].isin(trials["fingerprint"].dropna())],
    }
    traces = store.traces_frame()
    traces = traces[traces["trial_id"].isin(trials["trial_id"])]
    if len(traces):  # only where a sweep recorded traces (``Sweep(trace=True)``)
        tables["traces"] = traces
    paths = {}
    for name, df in tables.items():
        paths[name] = out / f"{name}.parquet"
        parquet_ready(df).to_parquet(paths[name], index=False)
    return paths
