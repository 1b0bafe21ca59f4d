"""What an engines study leaves: every timed step, each session's first answers, the data, and views of them.

:class:`EngineResult` holds the records (one per timed step, as stored), the first answer of
every engine in every session, the data sets, and which engines ran or were skipped; its
methods are the tables, figures and answer the notebook shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import analysis as an
from . import figures as plots
from .answers import ATOL, agreement_words, compare
from .data import Dataset
from .sessions import ENGINES


def _order(label: str) -> tuple[int, str]:
    engine = label.split(" ")[0]
    return (ENGINES.index(engine) if engine in ENGINES else len(ENGINES), label)


@dataclass
class EngineResult:
    """The timed steps, the answers, the data sets and the engines of one study run."""

    records: list[dict[str, Any]]
    answers: dict[tuple[str, float], dict[str, pd.DataFrame]]
    datasets: list[Dataset]
    engines: list[str]
    skipped: dict[str, str]
    cores: int
    rtol: float

    @property
    def frame(self) -> pd.DataFrame:
        """One row per timed step (start, cold query, warm query), with its load."""
        return pd.DataFrame(self.records)

    def data_table(self) -> pd.DataFrame:
        """One row per scale factor: files per table, MB of Parquet, made or reused, where."""
        return pd.DataFrame([d.row() for d in self.datasets])

    def differences(self) -> pd.DataFrame:
        """Every place an answer differs from the reference's (the first engine's, in Spark, Dask, DuckDB order)."""
        found = []
        for (query, sf), answers in sorted(self.answers.items()):
            ordered = {label: answers[label] for label in sorted(answers, key=_order)}
            found += [{"scale_factor": sf, **d} for d in compare(ordered, query, rtol=self.rtol, atol=ATOL)]
        columns = ["query", "scale_factor", "engine", "reference", "row", "column", "value", "expected"]
        return pd.DataFrame(found, columns=columns)

    def agreement(self) -> str:
        """The correctness check in words."""
        compared = [f"{q.upper()} at SF {sf:g}" for q, sf in sorted(self.answers)]
        ran = sorted({label.split(" ")[0] for answers in self.answers.values() for label in answers}, key=_order)
        return agreement_words(self.differences().to_dict("records"), compared, ran, self.rtol)

    def timings(self) -> pd.DataFrame:
        """Median time and 95% interval per engine, phase, query, scale factor and N (:func:`~.analysis.timings_table`)."""
        return an.timings_table(self.frame)

    def comparisons(self) -> pd.DataFrame:
        """Each pair of engines' warm times at each query, scale factor and N (:func:`~.analysis.comparison_table`)."""
        return an.comparison_table(self.frame)

    def scaling(self) -> pd.DataFrame:
        """Each engine from the fewest N to the most (:func:`~.analysis.scaling_table`)."""
        return an.scaling_table(self.frame)

    def describe(self) -> Any:
        """The answer in words (:func:`~.analysis.describe_engines`)."""
        sizes = {d.scale_factor: d.bytes / 1e6 for d in self.datasets}
        return an.describe_engines(self.frame, self.agreement(), self.skipped, self.cores, sizes)

    def phases_figure(self) -> Any:
        return plots.phases_figure(self.timings())

    def scale_figure(self) -> Any:
        return plots.scale_figure(self.timings())

    def workers_figure(self) -> Any:
        return plots.workers_figure(self.timings(), self.cores)
