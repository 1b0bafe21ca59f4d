"""Benchmark: do labkit's bandwidth probes agree with plain NumPy kernels credited with the bytes they move?

Run as ``.venv/bin/python benchmarks/probes.py [--rounds 9] [--array-mb 256]``.

In one process, round after round (the order flips each round, so that neither side always
runs on a warmer machine), it times on arrays of ``--array-mb`` MiB:

- ``labkit``: :func:`labkit.probes.stream_bandwidth`, as ``labkit probe`` calls it: copy
  (``copyto(a, b)``, 2 arrays counted) and the two-pass triad (5 arrays counted), its
  reported figure (best of 5 iterations) and the median of those 5;
- ``plain``: the same NumPy calls on arrays made once, each iteration timed alone (best of 5)
  and 5 iterations timed as one loop, credited with the same bytes;
- ``plain scale``: ``multiply(b, s, out=a)``, one pass, 2 arrays: a third kernel whose
  traffic is known.

It prints the medians over rounds and the ratios: labkit / plain (target 0.8-1.2), as the
median of each round's ratio (the pair ran back to back, so it sees the machine's changing
load alike) and as the ratio of the medians; and triad / copy and scale / copy, how far
apart the kernels read once each is credited with what it moves (a triad credited with
STREAM's 3 arrays would read 3/5 of its figure here; traffic that no STREAM count includes,
such as reading a cache line before writing it, can differ between kernels). Then, on a 2-worker LocalCluster (1 thread each), it runs
:func:`labkit.probes.run_probes` 3 times and prints each worker's own figures, the whole
node's (both workers at once) and the node over twice one worker, with how long the probes took.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from labkit.probes import TRIAD_SCALAR, run_probes, stream_bandwidth

REPEATS = 5


def plain(op, moved: float) -> tuple[float, float]:
    """(best single iteration, 5-iteration loop) in bytes/s of ``op``, credited with ``moved`` bytes."""
    op()  # warm-up
    single = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        op()
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(REPEATS):
        op()
    loop = (time.perf_counter() - start) / REPEATS
    return moved / min(single), moved / loop


def compare(rounds: int, nbytes: int) -> dict[str, list[float]]:
    n = nbytes // 8
    a, b, c = np.empty(n), np.full(n, 1.0), np.full(n, 2.0)
    size = a.nbytes
    out: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    def labkit() -> None:
        r = stream_bandwidth(np, nbytes, REPEATS)
        for kind in ("copy", "triad"):
            add(f"labkit {kind} best", getattr(r, f"{kind}_best"))
            add(f"labkit {kind} median", getattr(r, f"{kind}_median"))

    def triad() -> None:
        np.multiply(c, TRIAD_SCALAR, out=a)
        np.add(a, b, out=a)

    def plains() -> None:
        for name, op, arrays in (
            ("copy", lambda: np.copyto(a, b), 2),
            ("triad", triad, 5),
            ("scale", lambda: np.multiply(b, TRIAD_SCALAR, out=a), 2),
        ):
            best, loop = plain(op, arrays * size)
            add(f"plain {name} best", best)
            add(f"plain {name} loop", loop)

    for i in range(rounds):
        for step in (labkit, plains) if i % 2 == 0 else (plains, labkit):
            step()
    return out


def probe_cluster(times: int = 3) -> tuple[list, list[float], float]:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(2)
            started = time.perf_counter() - start
            probes, durations = [], []
            for _ in range(times):
                t0 = time.perf_counter()
                probes.append(run_probes(client))
                durations.append(time.perf_counter() - t0)
    return probes, durations, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (>= 5)")
    parser.add_argument("--array-mb", type=float, default=256, help="MiB per array")
    args = parser.parse_args()
    res = compare(max(5, args.rounds), int(args.array_mb * 2**20))
    med = {k: statistics.median(v) for k, v in res.items()}
    width = max(map(len, res))
    print(f"Bandwidth, {args.array_mb:g} MiB arrays, {len(res['labkit copy best'])} interleaved rounds, GB/s")
    print(f"{'variant':<{width}}  {'median':>7}  {'min':>7}  {'max':>7}")
    for name, values in res.items():
        print(f"{name:<{width}}  {med[name] / 1e9:7.2f}  {min(values) / 1e9:7.2f}  {max(values) / 1e9:7.2f}")

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(res[a], res[b]))

    ratios = [
        ("labkit copy / plain copyto, median of round ratios", paired("labkit copy best", "plain copy best")),
        ("labkit triad / plain triad, median of round ratios", paired("labkit triad best", "plain triad best")),
        ("labkit copy / plain copyto (best of 5 each)", med["labkit copy best"] / med["plain copy best"]),
        ("labkit copy median / plain copyto loop", med["labkit copy median"] / med["plain copy loop"]),
        ("labkit triad / plain two-pass triad (best of 5 each)", med["labkit triad best"] / med["plain triad best"]),
        ("labkit triad median / plain triad loop", med["labkit triad median"] / med["plain triad loop"]),
        ("labkit triad / labkit copy (5 vs 2 arrays counted)", med["labkit triad best"] / med["labkit copy best"]),
        ("plain scale / plain copyto (2 arrays each)", med["plain scale best"] / med["plain copy best"]),
    ]
    width = max(len(name) for name, _ in ratios)
    print(f"\n{'ratio':<{width}}  value")
    for name, value in ratios:
        print(f"{name:<{width}}  {value:.3f}")

    probes, durations, started = probe_cluster()
    print("\nrun_probes on a 2-worker LocalCluster (1 thread each), 3 runs; GB/s and GFLOP/s (best of 5 each)")
    print(
        f"{'run':>3}  {'worker copy':>11}  {'node copy':>9}  {'node/2w':>7}  {'worker triad':>12}  "
        f"{'node triad':>10}  {'node/2w':>7}  {'worker f64':>10}  {'node f64':>8}  {'node/2w':>7}  {'spread':>8}"
    )
    for i, p in enumerate(probes):
        if p.node is None:
            print(f"{i:>3}  node not measured: {p.missing.get('node/memory')}")
            continue
        w = p.workers
        copy = statistics.median(p.memory[a].copy_best for a in w)
        triad = statistics.median(p.memory[a].triad_best for a in w)
        flops = statistics.median(p.flops(a) for a in w)
        nm, nf = p.node.memory, p.node.matmul.best
        print(
            f"{i:>3}  {copy / 1e9:11.2f}  {nm.copy_best / 1e9:9.2f}  {nm.copy_best / (2 * copy):7.2f}  "
            f"{triad / 1e9:12.2f}  {nm.triad_best / 1e9:10.2f}  {nm.triad_best / (2 * triad):7.2f}  "
            f"{flops / 1e9:10.2f}  {nf / 1e9:8.2f}  {nf / (2 * flops):7.2f}  {p.node.start_spread_s * 1e3:6.3f}ms"
        )
    print(
        f"run_probes end to end: median {statistics.median(durations):.2f} s "
        f"of {', '.join(f'{d:.2f}' for d in durations)} s (cluster start {started:.2f} s)"
    )


if __name__ == "__main__":
    main()
