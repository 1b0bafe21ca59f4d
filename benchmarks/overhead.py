"""labkit's cost over plain Dask for the same array-sum trial.

    .venv/bin/python benchmarks/overhead.py [--rounds 9] [--size-mb 128]

Interleaved in one process on one cluster: each round times the same reduction once
through a labkit Sweep (1 timed repeat, no warm-up) and once with plain ``dask.compute``
on a persisted array, alternating which goes first. Prints medians and two ratios:

- ``ratio``: the trial time labkit records vs the plain ``compute()`` time (what a
  user reads; target <= 1.03 for a ~100 ms trial),
- ``end-to-end``: the whole ``sweep.run()`` (environment snapshot, store, setup,
  barriers, and with the monitor its start and the final wait for the heartbeats that
  settle the last trial's figures) vs plain persist + compute; also with the monitor off.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import labkit
from labkit.cluster.backends import random_array


def plain_round(lab: labkit.Lab, size_mb: float, chunk_mb: float) -> tuple[float, float]:
    from distributed import wait

    t_all = time.perf_counter()
    n = int(size_mb * 2**20) // 8
    x = lab.client.persist(random_array((n,), chunks=int(chunk_mb * 2**20) // 8, seed=0))
    wait(x)
    t0 = time.perf_counter()
    float(x.sum().compute())
    t1 = time.perf_counter()
    del x
    return t1 - t0, t1 - t_all


def labkit_round(
    lab: labkit.Lab, size_mb: float, chunk_mb: float, store: Path, i: str, monitor: bool = True
) -> tuple[float, float]:
    t_all = time.perf_counter()
    sweep = labkit.Sweep(
        "array-sum",
        grid={"size_mb": [size_mb]},
        params={"chunk_mb": chunk_mb},
        repeats=1,
        warmup=0,
        experiment=f"overhead-{i}",
        store=store,
    )
    results = sweep.run(lab, live=False, monitor=monitor)
    total = time.perf_counter() - t_all
    (wall,) = results.ok["wall_s"]
    return float(wall), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--size-mb", type=float, default=384.0)
    parser.add_argument("--chunk-mb", type=float, default=16.0)
    args = parser.parse_args()

    times: dict[str, list[float]] = {
        k: [] for k in ("labkit", "plain", "bare", "labkit_total", "plain_total", "bare_total")
    }
    with tempfile.TemporaryDirectory() as tmp, labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        store = Path(tmp) / "bench.db"
        plain_round(lab, args.size_mb, args.chunk_mb)  # warm both paths once, untimed
        labkit_round(lab, args.size_mb, args.chunk_mb, store, "warm")
        rounds = {
            "plain": lambda i: plain_round(lab, args.size_mb, args.chunk_mb),
            "labkit": lambda i: labkit_round(lab, args.size_mb, args.chunk_mb, store, f"on-{i}"),
            "bare": lambda i: labkit_round(lab, args.size_mb, args.chunk_mb, store, f"off-{i}", monitor=False),
        }
        for i in range(args.rounds):
            order = list(rounds)[i % 3 :] + list(rounds)[: i % 3]  # rotate who goes first
            for who in order:
                run = rounds[who](i)
                times[who].append(run[0])
                times[f"{who}_total"].append(run[1])

    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"array-sum {args.size_mb:g} MiB in {args.chunk_mb:g} MiB chunks, 2 workers x 1 thread, {args.rounds} interleaved rounds"
    )
    print(f"{'':28}{'median ms':>10}{'min ms':>9}{'max ms':>9}")
    for key, label in (
        ("plain", "plain dask compute()"),
        ("labkit", "labkit recorded trial"),
        ("bare", "  same, monitor off"),
        ("plain_total", "plain persist + compute"),
        ("labkit_total", "labkit sweep.run() total"),
        ("bare_total", "  same, monitor off"),
    ):
        v = times[key]
        print(f"{label:28}{med[key] * 1e3:10.1f}{min(v) * 1e3:9.1f}{max(v) * 1e3:9.1f}")
    print(f"ratio {med['labkit'] / med['plain']:.3f}")
    print(
        f"end-to-end {med['labkit_total'] / med['plain_total']:.3f}  (monitor off {med['bare_total'] / med['plain_total']:.3f})"
    )


if __name__ == "__main__":
    main()
