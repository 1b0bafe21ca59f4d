"""The replay's error against real Dask runs, beside a USL fit's, each from small runs only.

    .venv/bin/python benchmarks/replay.py [--rounds 3] [--tasks 64] [--task-ms 40] [--skip-compute]

**Sleeping-task graphs** (``sleep-graph``: map, tree, layers; 256 kB results), one Lab of
2-thread workers. One Sweep with ``trace=True`` per shape over 1, 2, 4 and 8 workers: its
timed runs go in interleaved, shuffled rounds, so drift lands on every size alike; the
measured time at a size is the median of its runs. Before it, on the same 1-worker cluster,
``whatif.measure_network`` takes what a 1-worker trace cannot hold, in about a second: a
worker fetching a result of its own over loopback at 1 kB and 16 MiB (transfer latency and
bandwidth), a traced chain of 30 no-op tasks (the round trip through the scheduler) and the
scheduler thread's CPU time over 200 no-op tasks.

- *The replay saw*: the trace of the median timed run at 1 worker × 2 threads, of all its
  runs, as the measured medians are (every task's duration, result size, dependencies and
  priority, the gaps between tasks), and that probe. Nothing measured at 2, 4 or 8 workers.
  It predicts 2, 4 and 8 workers × 2 threads.
- *The USL saw*: every timed run of a second Sweep, on a Lab of 1-thread workers, at 1, 2, 3
  and 4 workers: throughput (tasks per second) at 1, 2, 3 and 4 threads in all (its
  "workers" axis is threads in all). ``fit_usl`` needs 4 sizes; these are the smallest that
  give them. It predicts 8 and 16 threads, that is 4 and 8 workers × 2 threads, out of
  sample; at 2 workers × 2 threads (4 threads) it is within the sizes it saw, and its figure
  there is marked ``(seen)``. Both see only runs of at most 4 threads in all; the replay one
  run, the USL four sizes of runs.

The error is predicted / measured − 1 for both (the USL's: measured throughput / predicted
throughput − 1, the same ratio of times). Targets for the replay on the sleeping graphs:
median |error| <= 10%, worst <= 20%.

**Compute workloads** (array-sum, matmul, dataframe-groupby), a Lab of 1-thread workers:
traced at 1 worker and predicted for 2, measured at both. The USL has no out-of-sample
figure here (4 sizes below 2 workers do not exist) and prints "n/a".

Trials under outside load are kept (a benchmark prints figures, it claims nothing) and
counted in the last column; read the load averages printed around it.

Two diagnostics, not predictions, say where an error comes from. "task time": how long the
same tasks took at that size against the trace (``whatif.task_time_ratio``; the replay keeps
the traced durations, so where this moves from 1 the error follows it: on 2 cores, 2 compute
workers share them with the scheduler, the client and each other). "hops there": the
replay's error when it is given the time between tasks measured in the run at that size
(``whatif.hops_of``: a thread's gap between two tasks, a dependent task's wait after its
input, one transfer; and that run's fixed part) instead of the 1-worker trace's and the
probe's: where it lands near the measured time and the prediction does not, the schedule is
right and the error is in those times, which on a machine with fewer cores than processes
grow with the cluster as its own processes wait for a core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import labkit
from labkit.analysis.claims import ratio_words
from labkit.analysis.fits import fit_usl, predict_throughput
from labkit.studies import whatif

COMPUTE = {
    "array-sum": {"size_mb": 256.0, "chunk_mb": 8.0},
    "matmul": {"n": 1536, "chunk": 256},
    "dataframe-groupby": {"rows": 2_000_000, "partitions": 16},
}
SLEEP_COUNTS = [1, 2, 4, 8]
USL_COUNTS = [1, 2, 3, 4]


def sweep(lab, store, workload, counts, params, rounds, exp, trace):
    s = labkit.Sweep(
        workload, grid={"workers": counts}, params=params, repeats=rounds, warmup=1, store=store, experiment=exp,
        trace=trace, reuse="none", timeout_s=120,
    )  # fmt: skip
    return s.run(lab, live=False)


def replayed(results, network, counts):
    """The replay's predictions from the median traced run at ``counts[0]`` workers, beside the
    runs; and per count, how long the same tasks took there against the trace (the median run's
    trace at that count; a check of the replay's one assumption, not an input to it)."""
    frame = results.frame[results.frame["status"] == "ok"]
    trace = whatif.trace_of(results, workers=counts[0], keep_loaded=True)
    table = whatif.what_if(trace, {f"{w} workers": {"workers": w} for w in counts}, samples=20, network=network)
    there = {w: whatif.trace_of(results, workers=w, keep_loaded=True) for w in counts}
    checks = {w: (whatif.task_time_ratio(trace, t), with_hops_there(trace, network, t, w)) for w, t in there.items()}
    return whatif.against_measured(table, frame), checks


def with_hops_there(trace, network, there, workers):
    """A diagnostic, not a prediction: the replay of ``trace`` on ``workers`` given the time between
    tasks measured in ``there`` (a run at that size: its busy gap, dispatch gap, transfer time
    and fixed part) in place of the trace's and the probe's."""
    hops, cluster = whatif.hops_of(there), whatif.cluster_of(trace, network, workers=workers)
    busy = hops["busy_gap_s"] if hops["busy_gap_s"] == hops["busy_gap_s"] else cluster.overhead_s
    changes = {"overhead_s": busy}
    if hops["dispatch_gap_s"] == hops["dispatch_gap_s"]:
        changes["dispatch_s"] = max(0.0, hops["dispatch_gap_s"] - busy - cluster.scheduler_s)
    if hops["transfer_s"] == hops["transfer_s"]:
        typical = statistics.median(trace.nbytes) / cluster.bandwidth
        changes["latency_s"] = max(0.0, hops["transfer_s"] - typical)
    fixed = max(0.0, there.wall_s - there.span_s)
    return whatif.simulate(whatif.graph_of(trace), replace(cluster, **changes)).makespan + fixed


def usl_errors(small, measured, threads):
    """The USL fitted to ``small``'s runs (threads in all against throughput), its error at
    each worker count of ``measured`` (``threads`` per worker)."""
    ok = small.frame[small.frame["status"] == "ok"]
    fit = fit_usl(ok["workers"].to_numpy(float) * threads_of(ok), ok["throughput"].to_numpy(float), unit="tasks")
    seen = set(fit.workers)
    big = measured.frame[measured.frame["status"] == "ok"]
    out = {}
    for w in sorted(set(big["workers"])):
        slots = int(w) * threads
        p = predict_throughput(fit, [slots])["throughput"].iloc[0]
        got = statistics.median(big.loc[big["workers"] == w, "throughput"])
        out[int(w)] = (got / p - 1, slots in seen)
    return out


def threads_of(frame):
    """Threads per worker of each trial (the frame's ``threads`` is threads in all)."""
    return (frame["threads"] / frame["workers"]).to_numpy(float)


def sleeping(args, store):
    rows = []
    shapes = ("map", "tree", "layers")
    with labkit.Lab(workers=1, threads_per_worker=2) as lab:
        for shape in shapes:
            params = {"shape": shape, "tasks": args.tasks, "task_ms": args.task_ms, "result_kb": 256.0}
            lab.scale(1)
            network = whatif.measure_network(lab)
            results = sweep(lab, store, whatif.SleepGraph(), SLEEP_COUNTS, params, args.rounds, f"replay-{shape}", True)
            rows.append((shape, params, results, *replayed(results, network, SLEEP_COUNTS)))
    out = []
    with labkit.Lab(workers=1, threads_per_worker=1) as lab:
        for shape, params, results, table, checks in rows:
            small = sweep(lab, store, whatif.SleepGraph(), USL_COUNTS, params, args.rounds, f"usl-{shape}", False)
            usl = usl_errors(small, results, threads=2)
            for row in table.itertuples():
                u = usl.get(row.workers) if row.workers > 1 else None
                out.append(_row(f"sleep {shape}", row, u, checks[row.workers]))
    return out


def _row(name, row, usl, checks):
    said = "n/a" if usl is None else f"{usl[0]:+.1%}" + (" (seen)" if usl[1] else "")
    ratio, hops_there = checks
    return (name, row.workers, row.predicted_s, row.lo, row.hi, row.measured_s, row.error, said, row.under_load, usl,
            ratio, hops_there / row.measured_s - 1)  # fmt: skip


def compute(args, store):
    out = []
    with labkit.Lab(workers=1, threads_per_worker=1) as lab:
        for name, params in COMPUTE.items():
            lab.scale(1)
            network = whatif.measure_network(lab)
            results = sweep(lab, store, name, [1, 2], params, args.rounds, f"replay-{name}", True)
            table, checks = replayed(results, network, [1, 2])
            out += [_row(name, row, None, checks[row.workers]) for row in table.itertuples()]
    return out


def summary(rows):
    print(f"{'graph':20}{'workers':>8}{'predicted s':>13}{'replays 95%':>17}{'measured s':>12}{'replay':>9}"
          f"{'USL':>15}{'task time':>11}{'hops there':>12}{'loaded':>8}")  # fmt: skip
    for name, w, p, lo, hi, m, e, u, loaded, _, ratio, there in rows:
        span = "—" if lo != lo else f"{lo:.3f}–{hi:.3f}"
        print(f"{name:20}{w:8d}{p:13.3f}{span:>17}{m:12.3f}{e:+9.1%}{u:>15}{ratio.value:10.2f}×{there:+12.1%}"
              f"{loaded:8d}")  # fmt: skip
    sleep = [r for r in rows if r[0].startswith("sleep") and r[1] > 1 and r[6] == r[6]]
    for label, keep in (
        ("sleeping graphs", sleep),
        ("compute workloads", [r for r in rows if r[1] > 1 and r not in sleep]),
    ):
        errs = [abs(r[6]) for r in keep if r[6] == r[6]]
        if errs:
            print(f"{label}, replay: median |error| {statistics.median(errs):.1%}, worst {max(errs):.1%} "
                  f"over {len(errs)} predictions")  # fmt: skip
    there = [abs(r[11]) for r in sleep if r[11] == r[11]]
    if there:
        print(f"sleeping graphs, replay given the time between tasks measured at each size (a diagnostic): median "
              f"|error| {statistics.median(there):.1%}, worst {max(there):.1%}")  # fmt: skip
    both = [r for r in sleep if r[9] is not None and not r[9][1]]
    if both:
        rep, usl = [abs(r[6]) for r in both], [abs(r[9][0]) for r in both]
        print(f"out of sample, the same {len(both)} predictions (4 and 8 workers): replay median |error| "
              f"{statistics.median(rep):.1%}, worst {max(rep):.1%}; USL median |error| {statistics.median(usl):.1%}, "
              f"worst {max(usl):.1%}")  # fmt: skip
    for r in rows:
        if r[1] > 1 and not r[0].startswith("sleep"):
            words = ratio_words(r[10], "the traced task time", ("longer", "shorter"), narrow="more tasks")
            print(f"{r[0]}: its tasks at {r[1]} workers took {words}")
    own = [abs(r[6]) for r in rows if r[1] == 1 and r[6] == r[6]]
    print(f"traced size itself (replay on the trace's own cluster): worst |error| {max(own):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--task-ms", type=float, default=40.0)
    parser.add_argument("--skip-compute", action="store_true")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp()) / "replay.db"
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    rows = sleeping(args, store)
    if not args.skip_compute:
        rows += compute(args, store)
    summary(rows)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
