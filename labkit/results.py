"""Results of a sweep: the trials as a DataFrame and what follows from them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

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

    def __init__(self, frame: pd.DataFrame, *, experiment: str, run_id: str | None = None, points: list[str] | None = None, store_path: str | None = None) -> None:
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
        from .analysis import summarize

        return summarize(self.frame)

    def table(self) -> pd.DataFrame:
        """:meth:`summary` for reading: rates in their units, times in ms."""
        from .analysis import format_rate

        s = self.summary()
        out = s.drop(columns=["wall_s_median", "throughput_median", "throughput_min", "throughput_max", "unit"])
        out["median time"] = [f"{v * 1e3:.1f} ms" if v == v else "n/a" for v in s["wall_s_median"]]
        for col, name in (("throughput_median", "throughput"), ("throughput_min", "slowest run"), ("throughput_max", "fastest run")):
            out[name] = [format_rate(v, u) if u else "n/a" for v, u in zip(s[col], s["unit"])]
        return out

    def scaling(self) -> pd.DataFrame:
        """Speedup and efficiency against the smallest worker count, with 95% intervals."""
        from .analysis import scaling

        return scaling(self.frame)

    def conclusion(self) -> str:
        """The answer in words, computed from the data."""
        from .analysis import describe_scaling

        return describe_scaling(self.frame)

    def plot(self) -> Figure:
        """Throughput, speedup and efficiency against workers."""
        from .plots import scaling_figure

        return scaling_figure(self.frame, title=self.experiment)

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
        return f"<p>{self!r}</p>".replace("<Results", "&lt;Results").replace("}>", "}&gt;") + self.summary().to_html(index=False)
