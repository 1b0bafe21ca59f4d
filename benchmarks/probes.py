"""Benchmark: does labkit's STREAM triad probe agree with a plain NumPy triad?

Run as ``.venv/bin/python benchmarks/probes.py [--rounds 9] [--array-mb 64]``.

In one process, round after round (the order flips each round, so that neither side always
runs on a warmer machine), it times on the same 64 MiB arrays:

- ``labkit``: :func:`labkit.probes.stream_bandwidth`, its reported triad (best of 5 timed
  iterations) and the median of those 5;
- ``plain a[:] = b + s*c``: the way most people would write it, 5 iterations timed as one
  loop (it allocates two temporaries per iteration);
- ``plain in place``: the probe's own operations (``multiply(c, s, out=a); add(a, b, out=a)``)
  timed as one loop, which isolates the probe's timing harness from its choice of operations.

All count 3 arrays' bytes per iteration, as STREAM does. It prints the medians over rounds,
``ratio`` (labkit's reported triad / the plain in-place NumPy triad, which is how STREAM's
own triad runs: no temporaries; target 0.85-1.15), ``ratio_median`` (the probe's median
iteration instead of its best), ``ratio_vs_temporaries`` (labkit / ``a[:] = b + s*c``,
which moves more bytes than it is credited with, so reads lower), and how long :func:`labkit.probes.run_probes` takes end to end on a
2-worker LocalCluster (median of 3).
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


def plain_temporaries(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Bytes/s of ``a[:] = b + s*c``, timed the simplest way."""
    s = TRIAD_SCALAR
    a[:] = b + s * c  # warm-up
    start = time.perf_counter()
    for _ in range(REPEATS):
        a[:] = b + s * c
    return 3 * a.nbytes * REPEATS / (time.perf_counter() - start)


def plain_in_place(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Bytes/s of the probe's own in-place triad, timed as one loop."""
    s = TRIAD_SCALAR
    np.multiply(c, s, out=a)
    np.add(a, b, out=a)
    start = time.perf_counter()
    for _ in range(REPEATS):
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)
    return 3 * a.nbytes * REPEATS / (time.perf_counter() - start)


def compare_triads(rounds: int, nbytes: int) -> dict[str, list[float]]:
    n = nbytes // 8
    a, b, c = np.empty(n), np.full(n, 1.0), np.full(n, 2.0)
    out: dict[str, list[float]] = {k: [] for k in ("best", "median", "temporaries", "in_place")}

    def labkit() -> None:
        r = stream_bandwidth(np, nbytes, REPEATS)
        out["best"].append(r.triad_best)
        out["median"].append(r.triad_median)

    def plain() -> None:
        out["temporaries"].append(plain_temporaries(a, b, c))
        out["in_place"].append(plain_in_place(a, b, c))

    for i in range(rounds):
        for step in (labkit, plain) if i % 2 == 0 else (plain, labkit):
            step()
    return out


def time_run_probes(times: int = 3) -> tuple[list[float], float]:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(2)
            started = time.perf_counter() - start
            durations = []
            for _ in range(times):
                t0 = time.perf_counter()
                run_probes(client)
                durations.append(time.perf_counter() - t0)
    return durations, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (>= 7)")
    parser.add_argument("--array-mb", type=float, default=64, help="MiB per array")
    args = parser.parse_args()
    nbytes = int(args.array_mb * 2**20)

    res = compare_triads(max(7, args.rounds), nbytes)
    rows = [
        ("labkit stream_bandwidth triad (reported: best of 5)", res["best"]),
        ("labkit stream_bandwidth triad (median of 5)", res["median"]),
        ("plain a[:] = b + s*c (5-iteration loop)", res["temporaries"]),
        ("plain in place, the probe's ops (5-iteration loop)", res["in_place"]),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"STREAM triad, {args.array_mb:g} MiB arrays, {len(res['best'])} interleaved rounds, GB/s")
    print(f"{'variant':<{width}}  {'median':>7}  {'min':>7}  {'max':>7}")
    for name, values in rows:
        print(
            f"{name:<{width}}  {statistics.median(values) / 1e9:7.2f}  "
            f"{min(values) / 1e9:7.2f}  {max(values) / 1e9:7.2f}"
        )
    labkit = statistics.median(res["best"])
    print(f"ratio {labkit / statistics.median(res['in_place']):.3f}")
    print(f"ratio_median {statistics.median(res['median']) / statistics.median(res['in_place']):.3f}")
    print(f"ratio_vs_temporaries {labkit / statistics.median(res['temporaries']):.3f}")

    durations, started = time_run_probes()
    print(
        f"run_probes end to end, 2-worker LocalCluster: median {statistics.median(durations):.2f} s "
        f"of {', '.join(f'{d:.2f}' for d in durations)} s (cluster start {started:.2f} s)"
    )


if __name__ == "__main__":
    main()
