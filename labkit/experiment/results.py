"""Results of a sweep: the trials as a DataFrame, what follows from them, and where they come from.

Besides the trials, a :class:`Results` says how many were measured now and how many reused
from earlier runs (``reuse_note``), why stored trials were set aside (``set_aside_note``)
and, under a time budget, which points stopped short of their interval target
(``short_of_target``, ``budget_note``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from labkit.common.conclusion import Conclusion
    from labkit.store import ResultStore

    from .timing import BudgetReport


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
    params as columns, ``status`` ok | error | timeout, ``wall_s``, ``amount``/``unit``,
    ``throughput`` (amount per second) and ``fingerprint`` (what it measured on).

    ``measured_now`` and ``reused`` count the trials of this run and those taken from
    earlier runs; ``reuse_note``, ``set_aside_note`` and ``budget_note`` say it in words
    (``notes()`` gives those that apply).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        experiment: str,
        run_id: str | None = None,
        points: list[str] | None = None,
        store_path: str | None = None,
        fingerprint: str | None = None,
        run_starts: dict[str, float] | None = None,
        set_aside: str = "",
        budget: BudgetReport | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_id = run_id
        self.store_path = store_path
        self.fingerprint = fingerprint
        self.frame = latest_trials(frame, points)
        # Trials that lost a worker mid-run; the repeat's rerun replaces them in ``frame``.
        lost = frame["status"].eq("degraded") & (frame["point"].isin(points) if points is not None else True)
        self.degraded = frame[lost].reset_index(drop=True)
        self.set_aside_note = set_aside
        self.budget = budget
        now = self.frame["run_id"].eq(run_id)
        self.measured_now = int(now.sum())
        self.reused = len(self.frame) - self.measured_now
        self._run_starts = run_starts or {}

    @classmethod
    def load(
        cls, store: str | os.PathLike[str] | ResultStore, experiment: str, *, fingerprint: str = "latest"
    ) -> Results:
        """The stored trials of ``experiment``, one setup's or all.

        Parameters
        ----------
        store : path or ResultStore
        experiment : str
        fingerprint : str, default "latest"
            ``"latest"``: the trials measured under the fingerprint of the experiment's
            most recent trial; ``"any"``: all trials, whatever they were measured on; or a
            fingerprint key (the ``fingerprint`` column of a frame).
        """
        from labkit.store import ResultStore

        own = not isinstance(store, ResultStore)
        db = ResultStore(store) if own else store
        try:
            frame = db.trials_frame(experiment)
            runs = db.runs_frame()
        finally:
            if own:
                db.close()
        if frame.empty:
            raise ParameterError(
                "experiment",
                experiment,
                f"an experiment of this store: {', '.join(sorted(set(runs['experiment']))) or 'none'}",
            )
        key = frame["fingerprint"].iloc[-1] if fingerprint == "latest" else fingerprint
        if fingerprint != "any":
            if key is None or key != key:  # the latest trials carry none: those without one
                frame = frame[frame["fingerprint"].isna()]
            else:
                frame = frame[frame["fingerprint"].eq(key)]
            if frame.empty:
                raise ParameterError("fingerprint", fingerprint, "'latest', 'any' or a fingerprint of these trials")
        return cls(
            frame,
            experiment=experiment,
            store_path=str(db.path),
            fingerprint=None if fingerprint == "any" or key != key else key,
            run_starts=dict(zip(runs["run_id"], runs["started_at"])),
        )

    # -- where the trials come from ------------------------------------------------------

    @property
    def reuse_note(self) -> str:
        """``"7 of 10 trials reused from a run on 2026-11-25 12:31 UTC; 3 measured now."``"""
        from .provenance import reuse_sentence

        old = self.frame[~self.frame["run_id"].eq(self.run_id)]
        reused = {run_id: [len(g), self._run_starts.get(run_id)] for run_id, g in old.groupby("run_id", sort=False)}
        other = 0
        if self.fingerprint is not None:
            other = int((~old["fingerprint"].eq(self.fingerprint)).sum())
        return reuse_sentence(self.measured_now, reused, other)

    @property
    def short_of_target(self) -> pd.DataFrame:
        """The points a time budget stopped before their interval target: the point, its
        runs, median time, and the relative half-width of its median's 95% interval."""
        import pandas as pd

        from labkit.analysis import point_params, varying

        from .timing import spread

        columns = ["point", "workers", "runs", "median_s", "ci_rel", "target"]
        cut = [] if self.budget is None else self.budget.cut
        rows = []
        names = varying(self.frame) if len(self.frame) else []
        for key in cut:
            g = self.frame[self.frame["point"].eq(key) & self.frame["status"].eq("ok")]
            if g.empty:
                continue
            s = spread(g["wall_s"].tolist())
            first = point_params(g.iloc[:1]).iloc[0]
            rows.append(
                {
                    "point": key,
                    "workers": int(first["workers"]),
                    **{n: first[n] for n in names},
                    "runs": s["n"],
                    "median_s": s["median"],
                    "ci_rel": s["ci_rel"],
                    "target": self.budget.target if self.budget else None,
                }
            )
        return pd.DataFrame(rows, columns=columns if not rows else None)

    @property
    def budget_note(self) -> str:
        """What the time budget did, in words ("" without a budget)."""
        b = self.budget
        if b is None or b.seconds is None:
            return ""
        if b.spent_after is None:
            return f"The time budget of {b.seconds:g} s was not spent ({b.elapsed:.1f} s used)."
        text = f"The time budget of {b.seconds:g} s ran out {b.spent_after:.1f} s into the sweep ({b.elapsed:.1f} s in all)"
        short = self.short_of_target
        if short.empty:
            return text + "; " + self._none_cut_short(b.target)
        names = [c for c in short.columns if c not in ("point", "workers", "runs", "median_s", "ci_rel", "target")]
        described = []
        for _, row in short.iterrows():
            where = ", ".join([f"workers={row['workers']}", *(f"{n}={row[n]}" for n in names)])
            width = (
                "an interval not measured"
                if row["ci_rel"] is None or row["ci_rel"] != row["ci_rel"]
                else f"±{row['ci_rel']:.1%}"
            )
            described.append(f"{where} ({width} after {row['runs']} runs)")
        target = f"±{b.target * 100:g}%" if b.target else "their target"
        return (
            f"{text}: {len(short)} of {self.frame['point'].nunique()} points stopped short of {target}: "
            + "; ".join(described)
            + "."
        )

    def _none_cut_short(self, target: float | None) -> str:
        """The budget cut no point short: said with the points that still ended above the target."""
        ok = self.ok
        above = 0
        if target and "point_ci_rel" in ok:
            last = ok.dropna(subset=["point_ci_rel"]).groupby("point")["point_ci_rel"].last()
            above = int((last > target).sum())
        if not above:
            return "no point was cut short of its interval target."
        return (
            f"it cut no point short, but {above} point{'s' if above > 1 else ''} ended above ±{target:.0%} after "
            "the most runs max_repeats allows (see the caveats)."
        )

    def notes(self) -> list[str]:
        """The sentences that apply: what was reused, what was set aside, what the budget did."""
        return [t for t in (self.reuse_note, self.set_aside_note, self.degraded_note, self.budget_note) if t]

    @property
    def degraded_note(self) -> str:
        """How many trials lost a worker mid-run and are left out of the analysis ("" if none)."""
        n = len(self.degraded)
        if not n:
            return ""
        return (
            f"{n} trial{'s' if n > 1 else ''} lost a worker mid-run (status 'degraded': the lost work was "
            "recomputed inside the timed region) and are left out of the analysis; their repeats ran again. "
            "Results.degraded lists them with the workers lost."
        )

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
        The frame is a DataFrame (a :class:`~labkit.experiment.table.ReadingTable`) whose text
        shows every column: ``print(results.table())`` in a terminal wraps the columns to its
        width instead of hiding the middle ones behind "..."; Jupyter renders its HTML as it
        renders any DataFrame's.
        """
        from .table import reading_table

        return reading_table(self.frame)

    def scaling(self) -> pd.DataFrame:
        """Speedup and efficiency against the smallest worker count, with 95% intervals."""
        from labkit.analysis import strong_scaling

        return strong_scaling(self.frame)

    def scaling_table(self) -> pd.DataFrame:
        """:meth:`scaling` for reading: each figure with its interval, in words where there is none."""
        from .readable import scaling_table

        return scaling_table(self.scaling())

    def conclusion(self) -> Conclusion:
        """The answer in words, computed from the data (a sentence per configuration, and how
        much of the cores' own ceiling it reached), with the caveats that apply to it, each
        once: points whose runs spread, trials under outside load, worker counts beyond the
        machine's cores. A ``str``, shown formatted in Jupyter (see :mod:`labkit.common.conclusion`)."""
        from labkit.analysis import describe_scaling
        from labkit.common.conclusion import Conclusion

        from .readable import caveats, ceiling_sentences

        env = self._read_env()
        answers = [*describe_scaling(self.frame).split("\n"), *ceiling_sentences(self.frame, env)]
        return Conclusion(answers, caveats(self.frame, env))

    def _read_env(self) -> dict[str, Any]:
        if self.store_path is None or self.run_id is None:
            return {}
        from labkit.store import ResultStore

        with ResultStore(self.store_path) as store:
            return store.run_env(self.run_id)

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
        import html

        notes = "".join(f"<p>{html.escape(t)}</p>" for t in self.notes())
        return f"<p>{html.escape(repr(self))}</p>" + notes + self.summary().to_html(index=False)
