"""Is `labkit compare` a usable regression gate? False alarms on A/A, and a 10% slowdown caught.

    .venv/bin/python benchmarks/regression.py [--pairs 20] [--slow 10] [--repeats 10]

On one real 2-worker cluster (``labkit.Lab(workers=2, threads_per_worker=1)``), small sweeps
of the ``synthetic`` workload (sleeping tasks, ``work_s`` 0.2, two serial fractions: two
points a sweep, no rescaling between them) run into one store, each set of trials as its own
experiment:

- ``--pairs`` A/A pairs: two sweeps of the same code, ``a{i}`` and ``b{i}``;
- ``--slow`` slowdowns: beside the first ``--slow`` pairs, a sweep ``s{i}`` whose tasks sleep
  10% longer (``work_s`` 0.22), compared with ``a{i}`` as ``--ignore work_s`` matches them.

The sweeps of a pair run interleaved: in two rounds (half the repeats, then the rest, each
round resuming its experiment), their order rotated, so that a change of load on this shared
machine falls on both sides. Each comparison is :func:`labkit.report.compare.compare`, what
``labkit compare STORE::a{i} STORE::b{i}`` computes. Printed: the load average at the start,
one row per comparison (the verdicts, ratios and intervals of its points, how many trials ran
under outside load, and what the verdicts would have been had those trials been kept), the
load average at the end, then

- ``aa_flagged N of 20``: A/A comparisons with any point flagged (a false alarm; target <= 1);
- ``slowdown_caught N of 10``: slowdowns flagged slower at some point (target >= 9).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

import labkit
from labkit.analysis.compare import Comparison, compare_trials
from labkit.report.compare import compare

GRID = {"serial_fraction": [0.0, 0.3]}
WORK_S = 0.2
SLOWER = 1.1


def load_average() -> str:
    """The 1, 5 and 15-minute load averages and the core count, as one line."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def sweep(lab: labkit.Lab, store: Path, experiment: str, work_s: float, repeats: int) -> None:
    """One round of ``experiment``: its sweep, resumed up to ``repeats`` runs a point."""
    labkit.Sweep(
        "synthetic", GRID, params={"work_s": work_s}, repeats=repeats, warmup=1, experiment=experiment, store=store
    ).run(lab, live=False)


def run_sets(lab: labkit.Lab, store: Path, pairs: int, slow: int, repeats: int) -> None:
    """Every pair's sweeps (and its slowdown's), interleaved in two rounds, their order rotated."""
    for i in range(pairs):
        sets = [(f"a{i}", WORK_S), (f"b{i}", WORK_S)] + ([(f"s{i}", WORK_S * SLOWER)] if i < slow else [])
        sets = sets[i % len(sets) :] + sets[: i % len(sets)]
        for count in (repeats // 2, repeats):
            for experiment, work_s in sets:
                sweep(lab, store, experiment, work_s, count)


def _unloaded(frame: pd.DataFrame) -> pd.DataFrame:
    """The same trials with their load forgotten: what a comparison blind to outside load would use."""
    return frame.drop(columns=["under_load"], errors="ignore")


def row(kind: str, store: Path, a: str, b: str) -> dict[str, object]:
    """One comparison, through the report's own path, and the same without the load filter."""
    ignore = ["work_s"] if kind == "slow" else []
    c: Comparison = compare(f"{store}::{a}", f"{store}::{b}", ignore=ignore).comparison
    blind = compare_trials(_unloaded(c_trials(store, a)), _unloaded(c_trials(store, b)), ignore=ignore)
    pts = c.points
    return {
        "kind": kind,
        "B vs A": f"{b} vs {a}",
        "verdicts": "; ".join(pts["verdict"]),
        "B/A (interval)": "; ".join(
            f"{r:.3f}" + ("" if lo != lo else f" ({lo:.3f}-{hi:.3f})")
            for r, lo, hi in zip(pts["ratio"], pts["lo"], pts["hi"])
        ),
        "loaded A/B": f"{c.admitted['A'].loaded}/{c.admitted['B'].loaded} of {c.admitted['A'].total}",
        "flagged": c.flagged("any"),
        "slower": c.flagged("slower"),
        "blind verdicts": "; ".join(blind.points["verdict"]),
        "blind slower": blind.flagged("slower"),
        "blind flagged": blind.flagged("any"),
    }


def c_trials(store: Path, experiment: str) -> pd.DataFrame:
    """An experiment's trials."""
    from labkit.store import ResultStore

    with ResultStore(store) as db:
        return db.trials_frame(experiment)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20, help="A/A comparisons (default 20)")
    parser.add_argument("--slow", type=int, default=10, help="10%% slowdowns (default 10)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs a point (default 10)")
    args = parser.parse_args()
    print(f"start: {load_average()}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "regression.db"
        with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
            run_sets(lab, store, args.pairs, args.slow, args.repeats)
        swept = time.perf_counter() - start
        rows = [row("A/A", store, f"a{i}", f"b{i}") for i in range(args.pairs)]
        rows += [row("slow", store, f"a{i}", f"s{i}") for i in range(args.slow)]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    aa, slow = table[table["kind"] == "A/A"], table[table["kind"] == "slow"]
    print(f"sweeps {swept:.0f} s, total {time.perf_counter() - start:.0f} s")
    print(
        f"without the outside-load filter: aa_flagged {(aa['blind flagged'] > 0).sum()} of {len(aa)}, "
        f"slowdown_caught {(slow['blind slower'] > 0).sum()} of {len(slow)}"
    )
    print(f"end: {load_average()}")
    print(f"aa_flagged {(aa['flagged'] > 0).sum()} of {len(aa)}")
    print(f"slowdown_caught {(slow['slower'] > 0).sum()} of {len(slow)}")


if __name__ == "__main__":
    main()
