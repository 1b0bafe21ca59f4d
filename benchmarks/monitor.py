"""Benchmark: what leaving labkit's Monitor on costs.

Run as ``.venv/bin/python benchmarks/monitor.py [--rounds 15] [--block 20] [--idle-s 5]``.

On a 2-worker LocalCluster (1 thread each) it measures:

1. **CPU of the monitor** at ``interval`` 0.5 s and 0.1 s, over ``--idle-s`` seconds each:
   the sampler thread's own CPU time (``time.thread_time`` summed inside its loop) per
   wall second, and, to be complete, the CPU this whole process (client *and* the
   LocalCluster's scheduler, which answers ``scheduler_info``) spends beyond an identical
   period with the monitor off. Target: <= 1% of one core at 0.5 s.
2. **Wall time of a sweep-like workload** with the monitor on (0.5 s) vs off: the
   ``array-sum`` workload's own ``setup``/``run`` (what ``Sweep`` times), in blocks of
   ``--block`` runs (about a second, so that an "on" block spans ticks). Each round times
   three blocks, monitor off, on, and off again, in a rotating order. ``ratio`` is the
   median over rounds of (on / off); ``ratio_aa`` is the same for (off again / off), an
   A/A control that shows how much the machine's own noise moves such a ratio.
   Target: ratio <= 1.02.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import labkit
from labkit.measure import Monitor


def process_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


def monitor_cpu(lab: labkit.Lab, interval: float, seconds: float) -> dict[str, float]:
    """Thread CPU/s of the sampler, and process CPU/s added over the same time with it off."""
    c0, w0 = process_cpu(), time.perf_counter()
    time.sleep(seconds)
    off = (process_cpu() - c0) / (time.perf_counter() - w0)
    with Monitor(lab, interval=interval) as monitor:
        c0, w0 = process_cpu(), time.perf_counter()
        time.sleep(seconds)
        wall = time.perf_counter() - w0
        on = (process_cpu() - c0) / wall
        thread = monitor.thread_cpu_s / wall
        ticks = monitor.ticks / wall
    return {"thread": thread, "added": on - off, "ticks_per_s": ticks}


def workload_blocks(lab: labkit.Lab, rounds: int, block: int) -> dict[str, list[float]]:
    """Block times of the workload: monitor off, on (0.5 s), and off again (the A/A control)."""
    wl = labkit.workloads.get("array-sum")
    state = wl.setup(lab, **wl.defaults)
    for _ in range(3):
        wl.run(state)  # warm-up
    monitor = Monitor(lab, interval=0.5)
    times: dict[str, list[float]] = {"off": [], "on": [], "off2": []}
    orders = [("off", "on", "off2"), ("on", "off2", "off"), ("off2", "off", "on")]
    for i in range(rounds):
        for name in orders[i % 3]:
            if name == "on":
                monitor.start()  # its first tick is at once; then every 0.5 s
            lab.barrier()
            t0 = time.perf_counter()
            for _ in range(block):
                wl.run(state)
            times[name].append(time.perf_counter() - t0)
            monitor.stop()
    monitor.close()
    wl.teardown(state)
    return times


def sweep_rounds(lab: labkit.Lab, rounds: int, store: str) -> dict[str, dict[str, list[float]]]:
    """Whole sweeps (workers 1 and 2, 5 repeats each) with the monitor on and off, interleaved.

    Two figures per sweep: the summed trial times it recorded (what monitoring does to the
    measurements) and the wall time of ``sweep.run()`` (which with the monitor also waits,
    once, for the heartbeats that settle the last trial's figures).
    """
    out: dict[str, dict[str, list[float]]] = {k: {"trials": [], "wall": []} for k in ("off", "on")}
    for i in range(rounds):
        for name in ("off", "on") if i % 2 == 0 else ("on", "off"):
            sweep = labkit.Sweep(
                "array-sum",
                grid={"workers": [1, 2]},
                params={"size_mb": 128.0},
                repeats=5,
                warmup=1,
                experiment=f"bench-{name}-{i}",
                store=store,
            )
            t0 = time.perf_counter()
            results = sweep.run(lab, live=False, monitor=name == "on")
            out[name]["wall"].append(time.perf_counter() - t0)
            out[name]["trials"].append(float(results.ok["wall_s"].sum()))
    lab.scale(2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15, help="rounds of off/on/off blocks (>= 7)")
    p.add_argument("--block", type=int, default=20, help="workload runs per block")
    p.add_argument("--idle-s", type=float, default=5.0, help="seconds per CPU measurement")
    args = p.parse_args()

    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        cpu = {iv: monitor_cpu(lab, iv, args.idle_s) for iv in (0.5, 0.1)}
        times = workload_blocks(lab, args.rounds, args.block)
        with tempfile.TemporaryDirectory() as tmp:
            sweeps = sweep_rounds(lab, max(7, args.rounds // 2), f"{tmp}/bench.db")

    import dask

    print(f"labkit Monitor overhead: 2 workers x 1 thread, {psutil.cpu_count()} cores, dask {dask.__version__}")
    print()
    print(
        f"{'interval':>9} {'ticks/s':>8} {'sampler thread CPU':>19} {'% of a core':>12} {'process CPU added':>18} {'% of a core':>12}"
    )
    for iv, c in cpu.items():
        print(
            f"{iv:>7.1f} s {c['ticks_per_s']:>8.2f} {c['thread']:>17.5f} s/s {100 * c['thread']:>11.3f}% {c['added']:>16.5f} s/s {100 * c['added']:>11.2f}%"
        )
    print()
    print(f"array-sum (64 MB), blocks of {args.block} runs, {args.rounds} rounds of off/on/off blocks")
    print(f"{'monitor':>12} {'median s':>9} {'min s':>8} {'max s':>8}")
    for name, label in (("off", "off"), ("on", "on (0.5 s)"), ("off2", "off again")):
        ts = times[name]
        print(f"{label:>12} {statistics.median(ts):>9.4f} {min(ts):>8.4f} {max(ts):>8.4f}")
    ratios = [a / b for a, b in zip(times["on"], times["off"])]
    control = [a / b for a, b in zip(times["off2"], times["off"])]
    print()
    print(f"round ratios on/off:    {' '.join(f'{r:.3f}' for r in ratios)}")
    print(f"round ratios off2/off:  {' '.join(f'{r:.3f}' for r in control)}")
    print(f"ratio_of_medians {statistics.median(times['on']) / statistics.median(times['off']):.4f}")
    print(f"ratio_aa {statistics.median(control):.4f}")
    print(f"thread_cpu_pct_0.5s {100 * cpu[0.5]['thread']:.3f}")
    print()
    print(
        f"whole sweeps (array-sum 128 MiB, workers 1 and 2, 5 repeats), {len(sweeps['on']['wall'])} interleaved rounds"
    )
    print(f"{'monitor':>12} {'trials s':>9} {'run() s':>8}")
    for name in ("off", "on"):
        print(
            f"{name:>12} {statistics.median(sweeps[name]['trials']):>9.4f} {statistics.median(sweeps[name]['wall']):>8.3f}"
        )
    print(
        f"sweep_trials_ratio {statistics.median(sweeps['on']['trials']) / statistics.median(sweeps['off']['trials']):.4f}"
    )
    print(f"sweep_wall_ratio {statistics.median(sweeps['on']['wall']) / statistics.median(sweeps['off']['wall']):.4f}")
    print(f"ratio {statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
