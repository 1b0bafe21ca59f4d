"""The trials frame seen as grid points and configurations: the helpers every analysis uses.

The grid point of each trial is its ``point`` column (canonical JSON); a *configuration* is
a point without its worker count, so speedup compares the worker counts of one
configuration.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.common.errors import DataError, ParameterError

if TYPE_CHECKING:
    import pandas as pd


def require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"columns {list(frame.columns)[:8]}…", f"needs a trials frame with columns {', '.join(missing)}"
        )


def point_params(frame: pd.DataFrame) -> pd.DataFrame:
    """The grid point of each row as columns (workload, workers and every parameter)."""
    import pandas as pd

    # A point's JSON is parsed once, however many trials share it (a year of nightly repeats).
    codes, uniques = pd.factorize(frame["point"])
    table = pd.DataFrame([json.loads(p) for p in uniques])
    return table.iloc[codes].set_axis(frame.index) if len(table.columns) else pd.DataFrame(index=frame.index)


def varying(frame: pd.DataFrame) -> list[str]:
    """Parameters (other than workers) whose value differs between the frame's points."""
    params = point_params(frame).drop(columns=["workload", "workers"], errors="ignore")
    return [c for c in params.columns if params[c].astype(str).nunique() > 1]


def config_keys(frame: pd.DataFrame) -> pd.Series:
    """Each row's configuration: its point's parameters other than workers, as canonical JSON
    (worded once per point, not per trial)."""
    import pandas as pd

    codes, uniques = pd.factorize(frame["point"])
    keys = []
    for p in uniques:
        params = {k: v for k, v in json.loads(p).items() if k != "workers"}
        keys.append(json.dumps(params, sort_keys=True, default=str))
    return pd.Series(np.asarray(keys, dtype=object)[codes] if len(keys) else [], index=frame.index, dtype=object)


def describe_config(config: str, names: list[str]) -> str:
    """``'size_mb=64, dtype=float32'`` for the named parameters of a configuration key."""
    d = json.loads(config)
    return ", ".join(f"{k}={d[k]:g}" if isinstance(d[k], float) else f"{k}={d[k]}" for k in names if k in d)


def pick_configuration(
    frame: pd.DataFrame, where: dict[str, Any] | None = None, *, free: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, str]:
    """The ok trials of one configuration, and its description in words.

    ``where`` fixes parameters by value (``{"size_mb": 64.0}``, ``{"workload": "matmul"}``);
    every other parameter that varies is taken at its largest value (the biggest problem
    measured: the one whose scaling matters). Parameters named in ``free`` are left to vary,
    as are the worker counts.
    """
    require(frame, ("point", "status", "throughput", "workers"))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", "needs at least one successful trial")
    params = point_params(ok)
    for key, value in (where or {}).items():
        if key not in params.columns:
            raise ParameterError(f"where[{key!r}]", value, f"a parameter of these trials: {', '.join(params.columns)}")
        keep = params[key].astype(str) == str(value)
        if not keep.any():
            raise ParameterError(
                f"where[{key!r}]", value, f"a measured value: {sorted(params[key].astype(str).unique())}"
            )
        ok, params = ok[keep.to_numpy()], params[keep]
    if params["workload"].nunique() > 1:
        raise ParameterError(
            "where",
            where,
            f"a workload, e.g. {{'workload': {params['workload'].iloc[0]!r}}}: the frame holds {sorted(params['workload'].unique())}",
        )
    chosen = []
    for name in [n for n in varying(ok) if n not in free]:
        column = params[name]
        if not is_numeric(column):
            raise ParameterError("where", where, f"a value for {name!r}, one of {sorted(column.astype(str).unique())}")
        keep = column == column.max()
        ok, params = ok[keep.to_numpy()], params[keep]
        chosen.append(name)
    shown = [*[k for k in (where or {}) if k not in ("workload", "workers")], *chosen]
    first = params.iloc[0]
    label = ", ".join(
        [
            str(first["workload"]),
            *(f"{k}={first[k]:g}" if isinstance(first[k], float) else f"{k}={first[k]}" for k in shown),
        ]
    )
    return ok, label


def is_numeric(column: pd.Series) -> bool:
    from pandas.api.types import is_numeric_dtype

    return bool(is_numeric_dtype(column)) and not column.isna().any()


def ok_trials(frame: pd.DataFrame, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """The trials with status ``ok``, their point parameters as ``p_<name>`` columns; a data error when none is."""
    require(frame, ("point", "status", "throughput", "workers", *columns))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", "needs at least one successful trial")
    return ok.assign(**point_params(ok).drop(columns=["workers"], errors="ignore").add_prefix("p_"))
