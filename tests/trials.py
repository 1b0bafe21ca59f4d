"""Trials frames built through the real store, for tests of the analysis: one row per run."""

from __future__ import annotations

import json
import math
from typing import Any

from labkit.store import ResultStore, Trial


def trials_frame(rows: list[dict[str, Any]], workload: str = "synthetic") -> Any:
    """Trials from ``{"workers", "wall_s": [...], "amount", "unit", **params}`` dicts."""
    with ResultStore(":memory:") as store:
        run_id = store.start_run("test", workload, env={}, config={})
        for row in rows:
            row = dict(row)
            walls, workers = row.pop("wall_s"), row.pop("workers")
            amount, unit = row.pop("amount"), row.pop("unit")
            name = row.pop("workload", workload)
            point = json.dumps({"workload": name, "workers": workers, **row}, sort_keys=True)
            for r, wall in enumerate(walls):
                ok = wall is not None and not (isinstance(wall, float) and math.isnan(wall))
                store.add_trial(
                    Trial(
                        run_id=run_id,
                        experiment="test",
                        workload=name,
                        point=point,
                        params=row,
                        repeat=r,
                        workers=workers,
                        threads=workers,
                        backend=None,
                        status="ok",
                        wall_s=wall if ok else None,
                        amount=amount,
                        unit=unit,
                    )
                )
        return store.trials_frame("test")
