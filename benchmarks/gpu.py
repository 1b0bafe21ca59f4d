"""labkit's ``transpose_sum`` against dask-cuda's own benchmark, and NVML energy two ways, on a GPU.

    .venv/bin/python benchmarks/gpu.py [--sizes 10000 20000] [--chunk 2500] [--rounds 5] [--window-s 5]

1. Throughput. For each size n, ``--rounds`` interleaved rounds: labkit's ``array-ops``
   (``op="transpose_sum"``, CuPy, on a ``Lab(gpu=True)``) timed ``--runs`` times, then
   ``python -m dask_cuda.benchmarks.local_cupy -t gpu -o transpose_sum -s n -c chunk --runs R
   --output-basename …`` in a subprocess, its tidy JSON read back. Each round gives each side
   the median of its runs in bytes of input per second (dask-cuda's unit). Printed per size:
   both medians over the rounds and labkit/dask-cuda, their ratio of medians with its 95%
   interval (target 0.9–1.1).
2. Energy. ``--windows`` windows of at least ``--window-s`` seconds of CuPy matmuls, read by
   NVML's energy counter (``nvmlDeviceGetTotalEnergyConsumption``) and by its power
   (``nvmlDeviceGetPowerUsage``) integrated at 10 Hz, both through
   :class:`labkit.measure.power.NvmlCounter`. Printed per window: both figures and their
   difference relative to the counter; then the median difference (target within 10%).

Without a usable GPU (CuPy, dask-cuda, a CUDA driver and a device) it says what is missing
and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.cluster.gpu import gpu_status


def labkit_round(lab: object, state: object, wl: object, runs: int) -> float:
    """Median bytes of input per second of ``runs`` timed runs of labkit's workload."""
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work = wl.run(state)
        rates.append(work.amount / (time.perf_counter() - t0))
    return statistics.median(rates)


def dask_cuda_round(n: int, chunk: int, runs: int, folder: Path, tag: str) -> float:
    """Median bytes of input per second of dask-cuda's own ``local_cupy`` transpose_sum."""
    import pandas as pd

    base = folder / f"dask-cuda-{tag}"
    command = [sys.executable, "-m", "dask_cuda.benchmarks.local_cupy", "-t", "gpu", "-o", "transpose_sum"]
    command += ["-s", str(n), "-c", str(chunk), "--runs", str(runs), "--output-basename", str(base)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"dask-cuda's benchmark failed: {done.stderr[-2000:]}")
    tidy = pd.read_json(f"{base}.json")
    return float((tidy["data_processed"] / tidy["wallclock"]).median())


def compare_throughput(sizes: list[int], chunk: int, rounds: int, runs: int) -> None:
    import labkit
    from labkit import workloads
    from labkit.analysis.claims import ratio_words
    from labkit.analysis.intervals import ratio_estimate
    from labkit.common.format import format_rate

    wl = workloads.get("array-ops")
    print(f"{'n':>7} {'labkit':>12} {'dask-cuda':>12}  labkit / dask-cuda (target 0.9–1.1)")
    with labkit.Lab(gpu=True, dashboard=False) as lab, tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            params = workloads.resolve_params(wl, {"op": "transpose_sum", "n": n, "chunk": chunk, "backend": "cupy"})
            state = wl.setup(lab, **params)
            wl.run(state)  # warm-up: kernels compiled, pools grown
            ours, theirs = [], []
            for r in range(rounds):  # interleaved: a drift of the machine reaches both sides
                ours.append(labkit_round(lab, state, wl, runs))
                theirs.append(dask_cuda_round(n, chunk, runs, Path(tmp), f"{n}-{r}"))
            wl.teardown(state)
            est = ratio_estimate(ours, theirs)
            said = ratio_words(est, "dask-cuda's throughput", ("labkit higher", "labkit lower"))
            print(
                f"{n:>7} {format_rate(statistics.median(ours), 'bytes'):>12} "
                f"{format_rate(statistics.median(theirs), 'bytes'):>12}  {said}"
            )


def compare_energy(windows: int, seconds: float) -> None:
    from labkit.cluster.gpu import gpu_energy_readers
    from labkit.measure.power import nvml_window

    readers = gpu_energy_readers()
    if not {"energy", "power"} <= set(readers):
        print(f"energy: not compared: NVML reports only {sorted(readers)} for this GPU; both are needed")
        return
    print(f"{'window':>6} {'s':>6} {'counter J':>10} {'power J':>10}  difference (target within 10%)")
    diffs = []
    for w in range(windows):
        by_counter, by_power, took = nvml_window(readers, seconds)
        diffs.append((by_power - by_counter) / by_counter if by_counter > 0 else float("nan"))
        print(f"{w:>6} {took:>6.1f} {by_counter:>10.1f} {by_power:>10.1f}  {diffs[-1]:+.1%}")
    print(f"median difference of integrated power from the counter: {statistics.median(diffs):+.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 20000])
    parser.add_argument("--chunk", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side and round")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.window_s < 5.0:
        parser.error(
            "--window-s must be at least 5: NVML's counter updates about every 100 ms and may sample part of it"
        )
    status = gpu_status(need_dask_cuda=True)
    if not status.available:
        print(f"benchmarks/gpu.py needs a CUDA GPU with CuPy and dask-cuda; not run here: {status.reason}")
        return 0
    print(json.dumps({"gpus": list(status.names)}))
    if importlib.util.find_spec("nvtx") is None:
        print("throughput: not compared: dask-cuda's benchmark imports nvtx, which is not installed (pip install nvtx)")
    else:
        compare_throughput(args.sizes, args.chunk, args.rounds, args.runs)
    compare_energy(args.windows, args.window_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
