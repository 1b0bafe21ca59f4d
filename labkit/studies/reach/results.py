"""What reaching a cluster cost, per manager: the rows measured, a summary table, the figures in words.

>>> r = Reach.from_rows("m", [{"measure": "noop", "repeat": 0, "wall_s": 1.0, "tasks": 500, "per_task_s": 0.002}])
>>> round(float(r.summary()["noop_per_task_ms"].iloc[0]), 3)
2.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

COLUMNS = ["manager", "measure", "repeat", "wall_s", "tasks", "per_task_s", "workers", "under_load", "loadavg_1m"]
MEASURES = {
    "first-worker": "first_worker_s",
    "adapt-add": "adapt_add_s",
    "noop": "noop_per_task_ms",
    "shuffle": "shuffle_per_task_ms",
}


@dataclass
class Reach:
    """The measured rows of one or more managers (``frame``), and notes on what was not measured."""

    frame: pd.DataFrame
    run_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_rows(cls, manager: str, rows: list[dict[str, Any]], run_id: str | None = None) -> Reach:
        frame = pd.DataFrame([{"manager": manager, **r} for r in rows]).reindex(columns=COLUMNS)
        return cls(frame, [run_id] if run_id else [])

    @classmethod
    def combine(cls, parts: list[Reach], notes: list[str] | None = None) -> Reach:
        """Several managers' measurements as one."""
        frames = [p.frame for p in parts if len(p.frame)]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
        ids = [i for p in parts for i in p.run_ids]
        return cls(frame, ids, [n for p in parts for n in p.notes] + list(notes or []))

    def summary(self) -> pd.DataFrame:
        """One row per manager: median seconds to the first worker and for adapt to add one,
        median per-task overhead (ms) of the no-op tasks and of the shuffle."""
        out = pd.DataFrame(columns=["manager", *MEASURES.values()])
        if not len(self.frame):
            return out
        f = self.frame.copy()
        f["value"] = f["wall_s"].where(f["per_task_s"].isna(), f["per_task_s"] * 1e3)
        table = f.pivot_table(index="manager", columns="measure", values="value", aggfunc="median", sort=False)
        table = table.rename(columns=MEASURES).reindex(columns=list(MEASURES.values()))
        return table.reset_index().rename_axis(columns=None)

    def describe(self) -> str:
        """The figures in words, with what was not measured and the load they were measured under."""
        lines = []
        for _, r in self.summary().iterrows():
            parts = [
                f"first worker {r['first_worker_s']:.2f} s" if pd.notna(r["first_worker_s"]) else None,
                f"adapt added a worker in {r['adapt_add_s']:.2f} s" if pd.notna(r["adapt_add_s"]) else None,
                f"{r['noop_per_task_ms']:.2f} ms per no-op task" if pd.notna(r["noop_per_task_ms"]) else None,
                f"{r['shuffle_per_task_ms']:.2f} ms per shuffle task" if pd.notna(r["shuffle_per_task_ms"]) else None,
            ]
            lines.append(f"{r['manager']}: " + ", ".join(p for p in parts if p) + " (medians).")
        load = self.frame["loadavg_1m"].dropna() if len(self.frame) else pd.Series(dtype=float)
        if len(load):
            lines.append(f"Load average over the runs: {load.min():.1f} to {load.max():.1f}.")
        if self.frame["under_load"].eq(True).any():
            lines.append("Some runs ran under outside load (under_load): read them as upper bounds.")
        lines += self.notes
        return "\n".join(lines) if lines else "Nothing was measured."
