"""Benchmark: the lab with a year of runs in one store. What loading, concluding, comparing,
exporting and listing cost as the trials grow.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000] [--samples 0] [--rounds 3]
    .venv/bin/python benchmarks/scale.py --sizes 100000,1000000 --samples 10000000   # the large sizes

For each size ``n`` it builds a store with the store's own API (``ResultStore.start_run``,
``add_trials``, ``add_samples``): two experiments, ``a`` and ``b``, each of ``n`` trials
shaped like the quickstart's (4 points, workers 1 and 2 by n 1024 and 2048, a metrics dict
with the keys a real trial carries), in runs of 68 trials as the quickstart makes them;
``b`` is ``a`` 3% slower. ``--samples`` monitor samples (rows) go with ``a``'s first run.
It then times, as medians of ``--rounds`` in this process, the steps of each size
interleaved with the other sizes' (this machine is shared):

- ``load``: ``Results.load(store, "a")``;
- ``conclude``: ``results.conclusion()`` on the loaded trials;
- ``compare``: :func:`labkit.report.compare.compare` of ``b`` against ``a`` (what ``labkit
  compare`` computes);
- ``export``: ``ResultStore.export`` of ``a`` to Parquet;
- ``list``: :func:`labkit.report.listing.runs_table` (what ``labkit ls`` prints);

and, with ``--samples``, on the largest store:

- ``samples``: ``ResultStore.samples_frame()`` (every monitor sample);
- ``prune``: ``labkit prune STORE --days 0`` (deletes them all) on a copy of the store made
  for each round, the copy not timed; these rounds come after the others (a copy of the
  largest store pushes the stores out of the page cache).

Printed: the seconds per step and size, and the growth exponent between consecutive sizes
(``log(t2 / t1) / log(n2 / n1)``: 1 is linear; ``n log n`` reads a little above 1); then the
same for the CPU seconds this process used (all its threads), which other work on a shared
machine inflates less than the wall time. The
index of reports (``labkit index``) reads report files, not trials: not measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from labkit.cli import main as cli_main
from labkit.experiment.results import Results
from labkit.report.compare import compare
from labkit.report.listing import runs_table
from labkit.store import ResultStore, Trial

RUN_TRIALS = 68  # a quickstart run: 4 points, 17 trials each
POINTS = [(w, n) for n in (1024, 2048) for w in (1, 2)]
#: The metrics a quickstart trial carries (their values vary below).
METRICS = {
    "warmup_runs": 1, "inputs_setups": 1, "inputs_reason": "first visit", "inputs_bytes": 1179648.0,
    "inputs": "set up", "round": 1, "measurements": 1, "resolution_s": 0.5, "peak_memory_bytes": 98168832.0,
    "peak_memory_fraction": 0.0078, "cpu_percent_mean": 28.1, "spilled_bytes": 0.0, "net_read_bytes": 1948851.0,
    "net_write_bytes": 1948851.0, "gpu_utilization_percent": None, "gpu_memory_peak_bytes": None, "energy_j": None,
    "net_loopback": True, "resources_interpolated": True, "outside_cpu_percent": 2.2,
    "outside_resolution_percent": 14.7, "steal_percent": 0.0, "loadavg_1m": 0.4, "under_load": False,
    "energy_method": "not measured", "energy_rapl_j": None, "energy_nvml_j": None, "energy_note": None,
    "cpu_seconds": 0.031, "lab_cpu_percent": 0.0, "time_compute_cpu_s": 0.0055, "time_compute_other_s": 0.0004,
    "time_transfer_s": 0.0236, "time_spill_s": 0.0, "time_serialization_s": 0.0, "time_idle_s": 0.0173,
    "time_other_s": 0.0993, "time_total_s": 0.146, "time_settled": True, "stragglers": None, "point_runs": 17,
    "point_median_s": 0.0515, "point_ci_rel": 0.047, "point_iqr_rel": 0.025,
}  # fmt: skip


def _trials(experiment: str, run_id: str, start: int, count: int, slower: float, rng: np.random.Generator):
    for i in range(start, start + count):
        workers, n = POINTS[i % len(POINTS)]
        wall = 2 * n**3 / 1e9 / (1.3 if workers == 2 else 1.0) * slower * math.exp(rng.normal(0, 0.1))
        params = {"workload": "matmul", "workers": workers, "n": n, "chunk": 512}
        metrics = {**METRICS, "cpu_percent_mean": float(rng.uniform(20, 90)), "under_load": bool(rng.random() < 0.03)}
        yield Trial(
            run_id=run_id, experiment=experiment, workload="matmul", point=_point(params), params=params,
            repeat=i // len(POINTS), workers=workers, threads=workers, backend="local", status="ok",
            wall_s=wall, amount=2.0 * n**3, unit="FLOP", started_at=1.7e9 + i, ended_at=1.7e9 + i + wall,
            metrics=metrics, fingerprint="bench",
        )  # fmt: skip


def _point(params: dict[str, object]) -> str:
    import json

    return json.dumps(params, sort_keys=True)


def build(path: str, n: int, samples: int) -> None:
    """Experiments ``a`` and ``b`` of ``n`` trials each (in quickstart-sized runs), and samples."""
    rng = np.random.default_rng(n)
    with ResultStore(path) as store:
        store.add_fingerprint("bench", {"machine": "benchmark"})
        for experiment, slower in (("a", 1.0), ("b", 1.03)):
            for start in range(0, n, RUN_TRIALS):
                run_id = store.start_run(experiment, "matmul", env={"host": "bench"}, config={"repeats": 17})
                store.add_trials(_trials(experiment, run_id, start, min(RUN_TRIALS, n - start), slower, rng))
                store.end_run(run_id)
                if experiment == "a" and start == 0 and samples:
                    t = np.arange(samples, dtype=float) * 0.25
                    rows = ((run_id, None, float(x), "w", "cpu", 50.0) for x in t)
                    store.add_samples(rows)


@contextlib.contextmanager
def timed(out: dict[str, float], step: str) -> Iterator[None]:
    """The block's wall seconds in ``out[step]``, this process's CPU seconds (all its threads) in ``out["cpu " + step]``."""
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    out[step], out["cpu " + step] = time.perf_counter() - t0, time.process_time() - c0


def steps(path: str, folder: str) -> dict[str, float]:
    """Seconds of each step on the store at ``path``."""
    out: dict[str, float] = {}
    with timed(out, "load"):
        results = Results.load(path, "a")
    with timed(out, "conclude"):
        str(results.conclusion())
    with timed(out, "compare"):
        compare(f"{path}::a", f"{path}::b")
    with ResultStore(path) as store:
        with timed(out, "export"):
            store.export(os.path.join(folder, "a.parquet"), experiment="a")
        with timed(out, "list"):
            runs_table(store)
    return out


def sample_steps(path: str, folder: str, samples: int) -> dict[str, float]:
    """Seconds of reading every monitor sample of the store at ``path``, and of pruning them
    (on a copy: pruning deletes them)."""
    out: dict[str, float] = {}
    with ResultStore(path) as store, timed(out, "samples"):
        frame = store.samples_frame()
    assert len(frame) == samples, len(frame)
    del frame
    copy = os.path.join(folder, "pruned.db")
    shutil.copy(path, copy)  # closed: its write-ahead log is folded in
    with timed(out, "prune"), contextlib.redirect_stdout(io.StringIO()) as said:
        assert cli_main(["prune", copy, "--days", "0"]) == 0
    assert f"deleted {samples} monitor samples" in said.getvalue(), said.getvalue()
    os.remove(copy)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="trials per experiment, comma-separated")
    p.add_argument("--samples", type=int, default=0, help="monitor sample rows in the largest store (e.g. 10000000)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per size (the median is printed)")
    args = p.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for n in sizes:
            paths[n] = os.path.join(folder, f"store-{n}.db")
            t0 = time.perf_counter()
            build(paths[n], n, args.samples if n == sizes[-1] else 0)
            size_mb = os.path.getsize(paths[n]) / 1e6
            print(f"built {n:>9,} trials a side in {time.perf_counter() - t0:7.1f} s ({size_mb:,.0f} MB)", flush=True)
        times: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
        sampled: list[dict[str, float]] = []
        steps(paths[sizes[0]], folder)  # imports and first-use costs, not timed
        for r in range(args.rounds):
            for n in sizes if r % 2 == 0 else sizes[::-1]:  # interleaved, order alternating
                times[n].append(steps(paths[n], folder))
        for _ in range(args.rounds if args.samples else 0):  # after: the copies push the stores out of the cache
            sampled.append(sample_steps(paths[sizes[-1]], folder, args.samples))
    report(sizes, times, load0)
    if sampled:
        med = {k: statistics.median(t[k] for t in sampled) for k in sampled[0]}
        print(
            f"{args.samples:,} monitor samples (in the {sizes[-1]:,}-trial store): samples_frame {med['samples']:.2f} s"
            f" ({med['cpu samples']:.2f} s CPU), labkit prune {med['prune']:.2f} s ({med['cpu prune']:.2f} s CPU);"
            f" medians of {len(sampled)}"
        )


def report(sizes: list[int], times: dict[int, list[dict[str, float]]], load0: float) -> None:
    med = {n: {k: statistics.median(t[k] for t in times[n]) for k in times[n][0]} for n in sizes}
    print(
        f"\nload average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; medians of {len(times[sizes[0]])}"
    )
    wall = [k for k in times[sizes[0]][0] if not k.startswith("cpu ")]
    for title, names in (("wall seconds", wall), ("CPU seconds of this process", [f"cpu {k}" for k in wall])):
        print(f"{title}:\n{'trials':>10} " + " ".join(f"{k.removeprefix('cpu ') + ' s':>10}" for k in names))
        for n in sizes:
            print(f"{n:>10,} " + " ".join(f"{med[n][k]:>10.3f}" for k in names))
        for a, b in zip(sizes, sizes[1:]):
            grow = [math.log(med[b][k] / med[a][k]) / math.log(b / a) for k in names]
            print(f"{'exp ' + format(a, ',') + '→' + format(b, ','):>10} " + " ".join(f"{g:>10.2f}" for g in grow))


if __name__ == "__main__":
    main()
