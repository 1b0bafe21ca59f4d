"""Benchmark: the lab on a big cluster and a big graph (issue 26, points 4 and 5).

    .venv/bin/python benchmarks/scale_cluster.py [--counts 8,16,32,64] [--rounds 3] [--tasks 200]
        [--idle-s 3] [--graph-tasks 10000] [--graph-workers 4] [--graph-rounds 3] [--big] [--skip-graph]

Workers run in this process (``Lab(workers=64, threads_per_worker=1, processes=False)``),
so 64 of them fit a small machine; the workload is labkit's own ``task-overhead`` (a graph
of independent tiny tasks, ``labkit.workloads.get("task-overhead")``). Everything is
measured in one process, interleaved, and reported as medians over rounds: the machine
this was written on is a shared 2-core box, so absolute figures are noisy (the load
average is printed at the start and the end); the ratios and medians are what to read.

**1. A big cluster.** One Lab of ``max(--counts)`` in-process workers. Each round visits
every count (the order rotates from round to round) and runs a whole sweep there:
``Sweep("task-overhead", grid={"workers": [N]}, params={"tasks": --tasks}, repeats=5,
warmup=1).run(lab, live=True, monitor=True)`` with the live view forced on (the Jupyter
widget view, its ``display`` replaced by a no-op: there is no kernel here). Measured
without changing labkit, by wrapping its parts:

- the monitor's sampler thread: its own CPU (``Monitor.thread_cpu_s``) per wall second
  (% of a core), per tick and per sample; and, at idle with N workers, the CPU the whole
  process spends with a Monitor (0.5 s) on beyond the same time with it off (that also
  holds the scheduler's side of each tick, which runs in this process's event loop);
- the lab's own CPU per trial: the sampler's, the live view's redraws' and the barriers'
  CPU over the sweep, divided by its trials; beside it, labkit's own recorded
  ``lab_cpu_percent`` (the lab's processes *besides* the cluster's: with in-process
  workers that is only the processes above this one);
- the live view: each ``LiveView.redraw`` (wall and CPU), redraws per second over the
  sweep and the most in any 1 s;
- the barrier: each ``lab.barrier()`` the sweep makes (two per timed run).

Targets: the sampler <= 1% of a core and a barrier (median) <= 50 ms at 64 workers;
<= 2 redraws per second at every count.

**2. A big graph.** A Lab of ``--graph-workers`` in-process workers; a trial of
``--graph-tasks`` tiny tasks (and 100,000 with ``--big``). Each round, in rotating order:
``plain`` (the workload's own ``client.map`` + ``wait``, no labkit, between barriers),
``span`` (the same inside labkit's ``TrialSpan``, then ``span.read()``: the time split
and stragglers' own cost) and ``labkit`` (a one-run Sweep with the monitor: the trial
time it records, its ``sweep.run()`` total, and whether its time split settled, its
stragglers were judged and its alerts stored). Printed: medians, labkit's cost per task
(recorded trial minus plain, over the tasks) and the time split's.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import labkit
from labkit import live
from labkit.measure import monitor as monitor_module

TARGET_MONITOR_PCT, TARGET_BARRIER_MS, TARGET_REDRAWS_PER_S = 1.0, 50.0, 2.0


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def process_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Probe:
    """Wraps labkit's monitor, live view and barrier to time them, without changing labkit."""

    def __init__(self) -> None:
        self.monitors: list[Any] = []
        self.redraws: list[tuple[float, float, float]] = []  # (start, wall s, CPU s)
        self.barriers: list[tuple[float, float]] = []  # (wall s, CPU s)
        probe = self

        class CountedMonitor(monitor_module.Monitor):
            def start(self) -> Any:
                self.started_at = time.perf_counter()
                probe.monitors.append(self)
                return super().start()

            def close(self) -> None:
                super().close()
                self.closed_at = getattr(self, "closed_at", None) or time.perf_counter()

        redraw = live.LiveView.redraw

        def timed_redraw(view: Any) -> None:
            t0, c0 = time.perf_counter(), time.thread_time()
            redraw(view)
            self.redraws.append((t0, time.perf_counter() - t0, time.thread_time() - c0))

        monitor_module.Monitor = CountedMonitor  # the Sweep imports it from the module when it runs
        live.LiveView.redraw = timed_redraw
        live.in_jupyter = lambda: True  # the widget view, as in JupyterLab
        import IPython.display

        IPython.display.display = lambda *a, **k: SimpleNamespace(update=lambda *a, **k: None)  # no kernel here

    def watch_barrier(self, lab: labkit.Lab) -> None:
        barrier = type(lab).barrier

        def timed(*args: Any, **kwargs: Any) -> None:
            t0, c0 = time.perf_counter(), time.thread_time()
            barrier(lab, *args, **kwargs)
            self.barriers.append((time.perf_counter() - t0, time.thread_time() - c0))

        lab.barrier = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.monitors.clear()
        self.redraws.clear()
        self.barriers.clear()


def most_in_a_second(starts: list[float]) -> int:
    starts, best, j = sorted(starts), 0, 0
    for i, t in enumerate(starts):
        while starts[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def cluster_sweep(lab: labkit.Lab, probe: Probe, n: int, tasks: int, store: str, name: str) -> dict[str, float]:
    """One live, monitored sweep at ``n`` workers; what its parts cost."""
    probe.reset()
    sweep = labkit.Sweep(
        "task-overhead",
        grid={"workers": [n]},
        params={"tasks": tasks},
        repeats=5,
        warmup=1,
        experiment=name,
        store=store,
    )
    t0 = time.perf_counter()
    results = sweep.run(lab, live=True, monitor=True)
    wall = time.perf_counter() - t0
    (mon,) = probe.monitors
    mon_wall = mon.closed_at - mon.started_at
    ok, draws = results.ok, probe.redraws
    own_cpu = mon.thread_cpu_s + sum(c for *_, c in draws) + sum(c for _, c in probe.barriers)
    recorded = ok["lab_cpu_percent"].dropna() if "lab_cpu_percent" in ok else []
    return {
        "trial_ms": 1e3 * float(ok["wall_s"].median()),
        "ticks_per_s": mon.ticks / mon_wall,
        "mon_pct": 100 * mon.thread_cpu_s / mon_wall,
        "ms_per_tick": 1e3 * mon.thread_cpu_s / max(mon.ticks, 1),
        "us_per_sample": 1e6 * mon.thread_cpu_s / max(len(mon.samples), 1),
        "samples_per_tick": len(mon.samples) / max(mon.ticks, 1),
        "lab_ms_per_trial": 1e3 * own_cpu / max(len(ok), 1),
        "lab_cpu_recorded": med([float(x) for x in recorded]),
        "redraw_ms": 1e3 * med([w for _, w, _ in draws]),
        "redraw_max_ms": 1e3 * max((w for _, w, _ in draws), default=float("nan")),
        "redraws_per_s": len(draws) / wall,
        "redraws_1s": most_in_a_second([t for t, _, _ in draws]),
        "barrier_ms": 1e3 * med([w for w, _ in probe.barriers]),
        "barrier_p90_ms": 1e3 * sorted(w for w, _ in probe.barriers)[int(0.9 * (len(probe.barriers) - 1))],
        "settled": float(ok["time_settled"].fillna(False).astype(bool).mean()) if "time_settled" in ok else 0.0,
        "sweep_s": wall,
    }


def idle_added(lab: labkit.Lab, seconds: float) -> float:
    """Process CPU (% of a core) with a Monitor (0.5 s) on, beyond the same idle time with it off."""
    c0, w0 = process_cpu(), time.perf_counter()
    time.sleep(seconds)
    off = (process_cpu() - c0) / (time.perf_counter() - w0)
    with monitor_module.Monitor(lab, interval=0.5):
        c0, w0 = process_cpu(), time.perf_counter()
        time.sleep(seconds)
        on = (process_cpu() - c0) / (time.perf_counter() - w0)
    return 100 * (on - off)


def tick_parts(lab: labkit.Lab, k: int = 30) -> dict[str, float]:
    """Thread CPU (ms) of the parts of one monitor tick, each alone, ``k`` times."""
    from labkit.common.scheduler import scheduler_workers
    from labkit.measure.host import _scanner
    from labkit.measure.resources import fresh_samples

    scan, workers = _scanner(), scheduler_workers(lab.client)
    parts = {
        "identity": lambda: scheduler_workers(lab.client),
        "fresh_samples": lambda: fresh_samples(workers, {}),
        "scan": lambda: scan((os.getpid(),), False),
        "scan_snapshot": lambda: scan((os.getpid(),), True),
    }
    out = {}
    for name, part in parts.items():
        c0 = time.thread_time()
        for _ in range(k):
            part()
        out[name] = 1e3 * (time.thread_time() - c0) / k
    return out


def big_cluster(args: argparse.Namespace, store: str) -> dict[int, dict[str, list[float]]]:
    counts = [int(c) for c in args.counts.split(",")]
    probe = Probe()
    out: dict[int, dict[str, list[float]]] = {n: {} for n in counts}
    kw = {"threads_per_worker": 1, "processes": False, "dashboard": False, "memory_limit": None}
    with labkit.Lab(workers=max(counts), **kw) as lab:
        probe.watch_barrier(lab)
        cluster_sweep(lab, probe, counts[0], args.tasks, store, "warm")  # imports, Matplotlib's first figure
        for r in range(args.rounds):
            for n in counts[r % len(counts) :] + counts[: r % len(counts)]:
                row = cluster_sweep(lab, probe, n, args.tasks, store, f"cluster-{n}-{r}")
                row["idle_added_pct"] = idle_added(lab, args.idle_s)
                for k, v in row.items():
                    out[n].setdefault(k, []).append(v)
                if n == max(counts):
                    for k, v in tick_parts(lab).items():
                        out[n].setdefault(f"part_{k}", []).append(v)
                print(f"  round {r + 1} workers {n}: sweep {row['sweep_s']:.1f} s, load {loadavg()}", flush=True)
    return out


def print_cluster(out: dict[int, dict[str, list[float]]], args: argparse.Namespace) -> None:
    m = {n: {k: med(v) for k, v in row.items()} for n, row in out.items()}
    print(f"\n1. a big cluster: task-overhead {args.tasks} tasks/trial, 5 repeats + 1 warm-up per sweep, live view")
    print(f"   and monitor (0.5 s) on; medians of {args.rounds} rounds; workers in-process, 1 thread each\n")
    print(
        f"{'workers':>7} {'trial ms':>9} {'ticks/s':>8} {'sampler %core':>13} {'CPU ms/tick':>11} "
        f"{'samples/tick':>12} {'CPU us/sample':>13} {'idle added %core':>16} {'lab CPU ms/trial':>16} {'lab_cpu_percent':>15}"
    )
    for n, v in m.items():
        print(
            f"{n:>7} {v['trial_ms']:>9.1f} {v['ticks_per_s']:>8.2f} {v['mon_pct']:>13.3f} {v['ms_per_tick']:>11.2f} "
            f"{v['samples_per_tick']:>12.1f} {v['us_per_sample']:>13.1f} {v['idle_added_pct']:>16.2f} "
            f"{v['lab_ms_per_trial']:>16.1f} {v['lab_cpu_recorded']:>15.2f}"
        )
    print(
        f"\n{'workers':>7} {'redraw ms':>9} {'max ms':>7} {'redraws/s':>9} {'most in 1 s':>11} "
        f"{'barrier ms':>10} {'p90 ms':>7} {'split settled':>13} {'sweep s':>8}"
    )
    for n, v in m.items():
        print(
            f"{n:>7} {v['redraw_ms']:>9.1f} {v['redraw_max_ms']:>7.1f} {v['redraws_per_s']:>9.2f} "
            f"{v['redraws_1s']:>11.0f} {v['barrier_ms']:>10.2f} {v['barrier_p90_ms']:>7.2f} "
            f"{v['settled']:>13.0%} {v['sweep_s']:>8.1f}"
        )
    top = m[max(m)]
    print(
        f"\none tick's parts at {max(m)} workers, thread CPU ms each: identity call {top['part_identity']:.2f}, "
        f"new samples of every worker {top['part_fresh_samples']:.2f}, process-table scan for the lab's processes "
        f"{top['part_scan']:.2f} ({len(psutil.pids())} processes on the machine; "
        f"{top['part_scan_snapshot']:.2f} with the snapshot taken while outside load is near its threshold)"
    )
    checks = [
        (f"monitor <= {TARGET_MONITOR_PCT:g}% of a core at {max(m)} workers", top["mon_pct"], TARGET_MONITOR_PCT),
        (f"barrier <= {TARGET_BARRIER_MS:g} ms at {max(m)} workers (median)", top["barrier_ms"], TARGET_BARRIER_MS),
        (
            f"redraws <= {TARGET_REDRAWS_PER_S:g}/s at every count (worst)",
            max(v["redraws_per_s"] for v in m.values()),
            TARGET_REDRAWS_PER_S,
        ),
    ]
    print()
    for text, value, limit in checks:
        print(f"target {text}: {value:.3g} -> {'met' if value <= limit else 'MISSED'}")


def graph_round(lab: labkit.Lab, who: str, n: int, store: str, label: str) -> dict[str, Any]:
    from labkit.measure.timesplit import TrialSpan

    wl = labkit.workloads.get("task-overhead")
    state = wl.setup(lab, tasks=n, backend="numpy")
    lab.barrier()
    if who == "plain":
        t0 = time.perf_counter()
        wl.run(state)
        return {"wall": time.perf_counter() - t0}
    if who == "span":
        t0 = time.perf_counter()
        with TrialSpan(lab, label) as span:
            t1 = time.perf_counter()
            wl.run(state)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        split = span.read()
        t4 = time.perf_counter()
        span.read(timeout=0)  # again, settled: the scheduler's computation alone, no waiting for heartbeats
        t5 = time.perf_counter()
        return {"wall": t2 - t1, "marks": (t1 - t0) + (t3 - t2), "read": t4 - t3, "reread": t5 - t4,
                "settled": split.settled,
                "missing": split.tasks_missing, "tasks_seen": sum(w.tasks for w in split.workers.values())}  # fmt: skip
    sweep = labkit.Sweep("task-overhead", grid={"tasks": [n]}, repeats=1, warmup=0, experiment=label, store=store)
    t0 = time.perf_counter()
    results = sweep.run(lab, live=False, monitor=True)
    total = time.perf_counter() - t0
    (row,) = results.ok.to_dict("records")
    return {"wall": row["wall_s"], "total": total, "settled": bool(row.get("time_settled")),
            "split_s": row.get("time_total_s"), "stragglers": row.get("stragglers") or "none",
            "alerts": len(results.alerts())}  # fmt: skip


def big_graph(args: argparse.Namespace, store: str) -> dict[int, dict[str, list[dict[str, Any]]]]:
    sizes = [args.graph_tasks] + ([100_000] if args.big else [])
    out: dict[int, dict[str, list[dict[str, Any]]]] = {n: {"plain": [], "span": [], "labkit": []} for n in sizes}
    kw = {"threads_per_worker": 1, "processes": False, "dashboard": False, "memory_limit": None}
    with labkit.Lab(workers=args.graph_workers, **kw) as lab:
        graph_round(lab, "plain", 1000, store, "warm")
        for n in sizes:
            for r in range(args.graph_rounds if n <= 10_000 else 1):
                order = ["plain", "span", "labkit"]
                for who in order[r % 3 :] + order[: r % 3]:
                    out[n][who].append(graph_round(lab, who, n, store, f"graph-{n}-{who}-{r}"))
                print(f"  graph {n} round {r + 1}: load {loadavg()}", flush=True)
    return out


def print_graph(out: dict[int, dict[str, list[dict[str, Any]]]], args: argparse.Namespace) -> None:
    print(f"\n2. a big graph: task-overhead, {args.graph_workers} in-process workers x 1 thread, medians of rounds\n")
    print(
        f"{'tasks':>7} {'plain s':>8} {'labkit trial s':>14} {'ratio':>6} {'labkit us/task':>14} {'span run s':>10} "
        f"{'span marks ms':>13} {'split read ms':>13} {'re-read ms':>10} {'re-read us/task':>15} {'run() total s':>13}"
    )
    for n, rows in out.items():
        plain, lab_, span = (med([r["wall"] for r in rows[k]]) for k in ("plain", "labkit", "span"))
        read, reread = (med([r[k] for r in rows["span"]]) for k in ("read", "reread"))
        print(
            f"{n:>7} {plain:>8.2f} {lab_:>14.2f} {lab_ / plain:>6.3f} {1e6 * (lab_ - plain) / n:>14.1f} {span:>10.2f} "
            f"{1e3 * med([r['marks'] for r in rows['span']]):>13.1f} {1e3 * read:>13.1f} {1e3 * reread:>10.1f} "
            f"{1e6 * reread / n:>15.2f} "
            f"{med([r['total'] for r in rows['labkit']]):>13.2f}"
        )
    for n, rows in out.items():
        lk, sp = rows["labkit"], rows["span"]
        split_totals = [r["split_s"] for r in lk if r["split_s"] is not None]
        print(
            f"{n} tasks: time split settled in {sum(r['settled'] for r in lk)}/{len(lk)} sweeps "
            f"(split totals {', '.join(f'{s:.2f}' for s in split_totals)} thread-s), "
            f"stragglers judged: {', '.join(str(r['stragglers']) for r in lk)}; alerts stored per run: "
            f"{', '.join(str(r['alerts']) for r in lk)}; TrialSpan alone: settled {sum(r['settled'] for r in sp)}/"
            f"{len(sp)}, tasks seen {', '.join(str(r['tasks_seen']) for r in sp)}, task stream dropped some: "
            f"{any(r['missing'] for r in sp)}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="8,16,32,64", help="worker counts, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="rounds over the worker counts")
    p.add_argument("--tasks", type=int, default=200, help="tasks per trial of the cluster sweeps")
    p.add_argument("--idle-s", type=float, default=3.0, help="seconds per idle CPU measurement")
    p.add_argument("--graph-tasks", type=int, default=10_000)
    p.add_argument("--graph-workers", type=int, default=4)
    p.add_argument("--graph-rounds", type=int, default=3)
    p.add_argument("--big", action="store_true", help="also a 100,000-task trial (one round; minutes)")
    p.add_argument("--skip-graph", action="store_true")
    p.add_argument("--skip-cluster", action="store_true")
    args = p.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)  # event-loop warnings of a loaded 2-core box
    import dask

    start = loadavg()
    print(f"labkit at scale: {psutil.cpu_count()} cores, dask {dask.__version__}, load average at start {start}")
    print("(a shared machine: absolute figures are noisy; read the medians and ratios)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = f"{tmp}/bench.db"
        cluster = None if args.skip_cluster else big_cluster(args, store)
        graph = None if args.skip_graph else big_graph(args, store)
    if cluster:
        print_cluster(cluster, args)
    if graph:
        print_graph(graph, args)
    print(f"\nload average at start {start}, at end {loadavg()}; threads alive {threading.active_count()}")


if __name__ == "__main__":
    main()
