"""Results of a sweep: the trials as a DataFrame and what follows from them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def latest_trials(frame: pd.DataFrame, points: list[str] | None = None) -> pd.DataFrame:
    """One row per (point, repeat): the ok trial if there is one, else the latest attempt."""
    if points is not None:
        frame = frame[frame["point"].isin(points)]
    ordered = frame.assign(_ok=frame["status"].eq("ok")).sort_values(["_ok", "trial_id"])
    kept = ordered.drop_duplicates(["point", "repeat"], keep="last").drop(columns="_ok")
    return kept.sort_values("trial_id").reset_index(drop=True)


class Results:
    """The trials of one experiment, as the sweep that made them left them.

    ``frame`` is a tidy DataFrame, one row per trial (a timed run of one grid point):
    params as columns, ``status`` ok | error | timeout, ``wall_s``, ``amount``/``unit``
    and ``throughput`` (amount per second).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        experiment: str,
        run_id: str | None = None,
        points: list[str] | None = None,
        store_path: str | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_id = run_id
        self.store_path = store_path
        self.frame = latest_trials(frame, points)

    @property
    def ok(self) -> pd.DataFrame:
        """Only the trials that ended ok."""
        return self.frame[self.frame["status"] == "ok"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] != "ok"]

    def summary(self) -> pd.DataFrame:
        """Per grid point: repeats, median wall time and throughput with their spread."""
        from labkit.analysis import summarize

        return summarize(self.frame)

    def table(self) -> pd.DataFrame:
        """One row per grid point, for reading: rates in their units, times in ms, resources.

        Figures no reading exists for (energy without RAPL or NVML, say) say "not measured".
        """
        import pandas as pd
        from dask.utils import format_bytes

        from labkit.analysis import point_params, varying
        from labkit.common.format import format_rate

        names, params = varying(self.frame), point_params(self.frame)
        rows = []
        for _, g in self.frame.groupby("point", sort=False):
            ok = g[g["status"] == "ok"]
            unit = ok["unit"].iloc[0] if len(ok) else ""

            def measured(column: str, how: str, fmt: Any, ok: pd.DataFrame = ok) -> str:
                values = ok[column].dropna() if column in ok else ok.iloc[:0, 0]
                return fmt(getattr(values, how)()) if len(values) else "not measured"

            first = params.loc[g.index[0]]
            rows.append(
                {
                    "workers": int(first["workers"]),
                    **{n: first[n] for n in names},
                    "ok": len(ok),
                    "failed": len(g) - len(ok),
                    "median time": measured("wall_s", "median", lambda v: f"{v * 1e3:.1f} ms"),
                    "throughput": measured("throughput", "median", lambda v, unit=unit: format_rate(v, unit)),
                    "range": f"{format_rate(ok['throughput'].min(), unit)} – {format_rate(ok['throughput'].max(), unit)}"
                    if len(ok)
                    else "n/a",
                    "peak memory": measured("peak_memory_bytes", "max", lambda v: format_bytes(int(v))),
                    "mean CPU": measured("cpu_percent_mean", "mean", lambda v: f"{v:.0f}%"),
                    "energy": measured("energy_j", "median", lambda v: f"{v:.3g} J"),
                }
            )
        return pd.DataFrame(rows).sort_values([*names, "workers"]).reset_index(drop=True)

    def scaling(self) -> pd.DataFrame:
        """Speedup and efficiency against the smallest worker count, with 95% intervals."""
        from labkit.analysis import scaling

        return scaling(self.frame)

    def conclusion(self) -> str:
        """The answer in words, computed from the data."""
        from labkit.analysis import describe_scaling

        return describe_scaling(self.frame)

    def samples(self) -> pd.DataFrame:
        """The monitor's samples of this sweep's run (time, worker, metric, value, trial_id)."""
        return self._read(lambda store: store.samples_frame(self.run_id))

    def alerts(self) -> pd.DataFrame:
        """Alerts raised during this sweep's run."""
        return self._read(lambda store: store.alerts_frame(self.run_id))

    def _read(self, query: Any) -> pd.DataFrame:
        import pandas as pd

        if self.store_path is None or self.run_id is None:
            return pd.DataFrame(columns=["time", "worker", "metric", "value"])
        from labkit.store import ResultStore

        with ResultStore(self.store_path) as store:
            return query(store)

    def plot(self) -> Figure:
        """Throughput, speedup, efficiency; worker CPU, memory and time split when monitored."""
        from labkit.plots.sweep import sweep_figure

        return sweep_figure(self.frame, self.samples(), title=self.experiment)

    def export(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """A time-aligned Parquet bundle: trials, samples, time splits, alerts (one file each)."""
        from labkit.store import ResultStore

        if self.store_path is None:
            raise ParameterError("store", None, "results read from a store file")
        with ResultStore(self.store_path) as store:
            return store.export_bundle(folder, experiment=self.experiment)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        self.frame.to_csv(path, index=False)
        return Path(path)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        self.frame.to_parquet(path, index=False)
        return Path(path)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        counts = self.frame["status"].value_counts().to_dict()
        return f"<Results {self.experiment!r}: {len(self.frame)} trials {counts}>"

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>".replace("<Results", "&lt;Results").replace("}>", "}&gt;") + self.summary().to_html(
            index=False
        )
