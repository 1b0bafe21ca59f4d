"""The replay's error against real Dask runs: trace at one size, predict the others, run them.

    .venv/bin/python benchmarks/replay.py [--rounds 3] [--tasks 64] [--task-ms 40] [--skip-compute]

Sleeping-task graphs (``sleep-graph``: map, tree, layers; 256 kB results) are traced at
1 worker × 2 threads and predicted for 2, 4 and 8 workers × 2 threads; the lab's compute
workloads (array-sum, matmul, dataframe-groupby) are traced at 1 worker × 1 thread and
predicted for 2 workers. Each part is one Sweep with ``trace=True`` over its worker counts:
its timed runs go in interleaved, shuffled rounds in one process, so drift lands on every
size alike. Each prediction replays the median traced run; the measured time is the median
of the runs at that size; error = predicted / measured − 1 (target for the sleeping graphs:
median |error| <= 10%, worst <= 20%).

Beside it, the USL: labkit's ``fit_usl`` needs 4 worker counts, which a trace at one size
does not give; the USL column is therefore its *in-sample* error when fitted to the measured
runs at all four sizes (its best case), and "n/a" for the compute workloads (2 sizes).
Trials under outside load are kept here (a benchmark prints figures, it claims nothing) and
counted in the last column.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import labkit
from labkit.analysis.fits import fit_usl
from labkit.studies import whatif

COMPUTE = {
    "array-sum": {"size_mb": 256.0, "chunk_mb": 8.0},
    "matmul": {"n": 1536, "chunk": 256},
    "dataframe-groupby": {"rows": 2_000_000, "partitions": 16},
}


def usl_errors(frame, counts):
    """In-sample error of a USL fit to the measured runs at each worker count, or None."""
    fit = fit_usl(frame)
    if not getattr(fit, "available", True):
        return None
    pred = whatif_throughput(fit, counts)
    out = {}
    for w in counts:
        measured = statistics.median(frame.loc[frame["workers"] == w, "throughput"])
        out[w] = measured / pred[w] - 1  # time error = measured/predicted throughput - 1
    return out


def whatif_throughput(fit, counts):
    from labkit.analysis.fits import predict_throughput

    p = predict_throughput(fit, counts)
    return dict(zip(p["workers"], p["throughput"]))


def part(lab, store, name, workload, grid, params, counts, rounds, exp):
    sweep = labkit.Sweep(
        workload, grid=grid, params=params, repeats=rounds, warmup=1, store=store, experiment=exp, trace=True,
        reuse="none", timeout_s=120,
    )  # fmt: skip
    results = sweep.run(lab, live=False)
    frame = results.frame[results.frame["status"] == "ok"]
    trace = whatif.trace_of(results, workers=counts[0])
    table = whatif.what_if(trace, {f"{w} workers": {"workers": w} for w in counts}, samples=20)
    rows = whatif.against_measured(table, frame)
    usl = usl_errors(frame, counts) if len(counts) >= 4 else None
    out = []
    for row in rows.itertuples():
        u = "n/a" if usl is None or row.workers == counts[0] else f"{usl[row.workers]:+.1%}"
        out.append((name, row.workers, row.predicted_s, row.lo, row.hi, row.measured_s, row.error, u, row.under_load))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--task-ms", type=float, default=40.0)
    parser.add_argument("--skip-compute", action="store_true")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp()) / "replay.db"
    rows = []
    with labkit.Lab(workers=1, threads_per_worker=2) as lab:
        for shape in ("map", "tree", "layers"):
            params = {"shape": shape, "tasks": args.tasks, "task_ms": args.task_ms, "result_kb": 256.0}
            rows += part(lab, store, f"sleep {shape}", whatif.SleepGraph(), {"workers": [1, 2, 4, 8]}, params,
                         [1, 2, 4, 8], args.rounds, f"replay-{shape}")  # fmt: skip
    if not args.skip_compute:
        with labkit.Lab(workers=1, threads_per_worker=1) as lab:
            for name, params in COMPUTE.items():
                rows += part(lab, store, name, name, {"workers": [1, 2]}, params, [1, 2], args.rounds, f"replay-{name}")
    print(f"{'graph':20}{'workers':>8}{'predicted s':>13}{'replays 95%':>17}{'measured s':>12}{'error':>8}"
          f"{'USL in-sample':>15}{'loaded':>8}")  # fmt: skip
    for name, w, p, lo, hi, m, e, u, loaded in rows:
        span = "—" if lo != lo else f"{lo:.3f}–{hi:.3f}"
        print(f"{name:20}{w:8d}{p:13.3f}{span:>17}{m:12.3f}{e:+8.1%}{u:>15}{loaded:8d}")
    for label, keep in (("sleeping graphs", lambda r: r[0].startswith("sleep") and r[1] > 1),
                        ("compute workloads", lambda r: not r[0].startswith("sleep") and r[1] > 1)):  # fmt: skip
        errs = [abs(r[6]) for r in rows if keep(r) and r[6] == r[6]]
        if errs:
            print(
                f"{label}: median |error| {statistics.median(errs):.1%}, worst {max(errs):.1%} over {len(errs)} predictions"
            )
    own = [abs(r[6]) for r in rows if r[1] == 1 and r[6] == r[6]]
    print(f"traced size itself (replay on the trace's own cluster): worst |error| {max(own):.1%}")


if __name__ == "__main__":
    main()
