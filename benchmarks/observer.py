"""The observer effect, measured: does watching the quickstart's sweep change its trial times?

    .venv/bin/python benchmarks/observer.py [--rounds 3] [--repeats 10] [--quick]

The quickstart's sweep (notebooks/00_quickstart.ipynb: a blocked ``matmul``, 1 against the
most single-thread workers this machine's cores allow) with the same fixed parameters
(worker counts, ``n``, ``chunk``, ``repeats``, one warm-up, no time budget), run six ways,
interleaved in rounds (each round runs every way once, the ways' order rotated by a place
each round):

- ``plain``: Dask without labkit, a ``distributed.LocalCluster(n_workers=k,
  threads_per_worker=1)`` per worker count and a ``Client``; what ``matmul``'s setup and run
  do (two random n×n float64 arrays in ``chunk``-sided blocks, persisted; then ``a @ b``
  persisted and waited for, not gathered), each run timed with ``time.perf_counter``;
- ``sweep``: ``Sweep.run(lab, live=False)`` in this process, the Sweep built by the
  notebook's own parameters cell and the cell after it (as benchmarks/consistency.py does);
- ``bare``: the same with ``monitor=False`` (no sampler thread, no load readings: its trials'
  ``under_load`` is not measured), so that the monitor's part of ``sweep``'s cost reads apart;
- ``cli``: ``labkit run notebooks/00_quickstart.ipynb -p ...`` in a subprocess (papermill;
  the live view on, frozen at the end);
- ``lab``: the quickstart in a real JupyterLab in Debian's Chromium (tests/browser.py's
  helpers; never a downloaded browser), Run All, until the kernel is idle again: the live
  view drawn by the browser (benchmarks/observer_browser.py);
- ``dashboard``: the same with the Dask dashboard opened in a second tab from the link the
  notebook shows, so that the two parts of the browser's cost read apart. Both skipped, with
  the reason printed, without /usr/bin/chromium or Playwright.

The labkit ways' trials are read back from the stores they wrote. Per way, worker count and
size, over the trials of every round: the median trial time relative to plain's with its
95% interval (``ratio_estimate``), and the width of the median's 95% interval
(``median_estimate``) relative to plain's, with a percentile bootstrap interval (each
side's trials resampled, the width computed again). Also printed: the load average at the
start and the end, and how many trials each way flagged ``under_load``. The last two lines
are ``worst time ratio R`` and ``worst width ratio W``, the largest over the labkit ways and
the points. Target on a quiet 2-core machine: R <= 1.05 and W <= 1.25.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

import labkit
from labkit.analysis.intervals import Estimate, median_estimate, ratio_estimate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from observer_browser import browser_missing, run_browser

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "00_quickstart.ipynb"
WAYS = ("plain", "sweep", "bare", "cli", "lab", "dashboard")
BROWSER_WAYS = ("lab", "dashboard")
TARGET_TIME, TARGET_WIDTH = 1.05, 1.25

Key = tuple[int, int]  # (workers, n)
Times = dict[Key, list[float]]


class Way:
    """One way's trials, pooled over rounds, and what went wrong."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.times: Times = {}
        self.under_load: int | None = None  # None: not measured (plain Dask)
        self.lab_cpu: list[float] = []  # each trial's lab overhead (% of a core): the lab's own processes
        self.notes: list[str] = []
        self.skipped = ""

    def add(self, times: Times, under_load: int | None = None, lab_cpu: list[float] | None = None) -> None:
        self.lab_cpu += lab_cpu or []
        for key, values in times.items():
            self.times.setdefault(key, []).extend(values)
        if under_load is not None:
            self.under_load = (self.under_load or 0) + under_load


# --- the ways ------------------------------------------------------------------------


def quickstart_sweep(params: dict[str, Any]) -> labkit.Sweep:
    """The Sweep the quickstart's parameters cell and the cell after it build, with ``params``
    in place of that cell's values (the way benchmarks/consistency.py builds it)."""
    code = [c.source for c in nbformat.read(QUICKSTART, as_version=4).cells if c.cell_type == "code"]
    scope: dict[str, Any] = {}
    exec(code[0], scope)
    unknown = set(params) - set(scope)
    assert not unknown, f"the quickstart has no parameters {sorted(unknown)}"
    scope.update(params)
    exec(code[1], scope)
    return scope["sweep"]


def stored_trials(store: Path, experiment: str) -> tuple[Times, int, int, list[float]]:
    """The ok trials' times of an experiment by (workers, n); how many were flagged
    ``under_load``; how many were not ok; their lab overhead (``lab_cpu_percent``, where measured)."""
    with labkit.ResultStore(store) as s:
        df = s.trials_frame(experiment)
    if df.empty:
        return {}, 0, 0, []
    ok = df[df["status"] == "ok"]
    times: Times = {}
    for (workers, n), g in ok.groupby(["workers", "n"]):
        times[(int(workers), int(n))] = [float(v) for v in g["wall_s"]]
    loaded = int(ok["under_load"].eq(True).sum()) if "under_load" in ok else 0
    lab = [float(v) for v in ok.get("lab_cpu_percent", ()) if v == v and v is not None]
    return times, loaded, len(df) - len(ok), lab


def _holds(keys: list[Any], dask_scheduler: Any = None) -> bool:
    return any(k in dask_scheduler.tasks for k in keys)


def forget(client: Any, keys: list[Any], timeout_s: float = 30.0) -> None:
    """Wait until the scheduler has forgotten ``keys``, released by the caller (untimed): the
    next run's graph has the same keys, and a release still on its way would make it a cache hit."""
    deadline = time.monotonic() + timeout_s
    while client.run_on_scheduler(_holds, keys) and time.monotonic() < deadline:
        time.sleep(0.005)


def run_plain(params: dict[str, Any], order: list[int]) -> Times:
    """Plain Dask: per worker count a LocalCluster and a Client; matmul's setup, warm-ups and
    timed runs, each timed with perf_counter."""
    import dask.array as da
    from distributed import Client, LocalCluster, futures_of, wait

    times: Times = {}
    for k in order:
        with (
            LocalCluster(
                n_workers=k, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
            ) as cluster,
            Client(cluster) as client,
        ):
            for n in params["n"]:
                chunk = min(params["chunk"], n)
                a = da.random.default_rng(3).random((n, n), chunks=(chunk, chunk))
                b = da.random.default_rng(4).random((n, n), chunks=(chunk, chunk))
                a, b = client.persist([a, b])
                wait([a, b])
                for i in range(params["warmup"] + params["repeats"]):
                    t0 = time.perf_counter()
                    c = client.persist(a @ b)
                    wait(c)
                    if i >= params["warmup"]:
                        times.setdefault((k, n), []).append(time.perf_counter() - t0)
                    keys = [f.key for f in futures_of(c)]
                    del c
                    forget(client, keys)
                del a, b
    return times


def run_sweep(params: dict[str, Any], store: Path, experiment: str, monitor: bool = True) -> None:
    sweep = quickstart_sweep({**params, "store": str(store), "experiment": experiment})
    with labkit.Lab(workers=max(params["workers"]), threads_per_worker=1, dashboard=False) as lab:
        sweep.run(lab, live=False, monitor=monitor)


def run_cli(params: dict[str, Any], store: Path, experiment: str, out: Path, timeout_s: float) -> None:
    values = {**params, "store": str(store), "experiment": experiment}
    cmd = [str(Path(sys.executable).parent / "labkit"), "run", str(QUICKSTART)]
    for name, value in values.items():
        cmd += ["-p", name, value if isinstance(value, str) else repr(value)]
    cmd += ["--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"labkit run exited with {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}")


def run_way(
    name: str, r: int, params: dict[str, Any], tmp: Path, timeout_s: float
) -> tuple[Times, int | None, list[str], list[float]]:
    """Round ``r`` of one way: its trial times, how many it flagged ``under_load`` (None:
    not measured), notes, and its trials' lab overhead."""
    if name == "plain":
        workers = params["workers"]
        return run_plain(params, workers if r % 2 == 0 else workers[::-1]), None, [], []
    experiment, store = f"observer-{name}-{r}", tmp / f"{name}.db"
    notes = []
    if name in ("sweep", "bare"):
        run_sweep(params, store, experiment, monitor=name == "sweep")
    elif name == "cli":
        run_cli(params, store, experiment, tmp / f"reports-{r}", timeout_s)
    else:
        notes.append(run_browser(params, store, experiment, tmp / name, timeout_s, dashboard=name == "dashboard"))
    times, loaded, not_ok, lab = stored_trials(store, experiment)
    return times, loaded, notes + ([f"{not_ok} trial(s) not ok"] if not_ok else []), lab


# --- the figures ----------------------------------------------------------------------------


def width(values: np.ndarray) -> float:
    m = median_estimate(values)
    return m.hi - m.lo


def width_ratio(way: list[float], plain: list[float], boot: int, seed: int = 0) -> Estimate:
    """Width of the median's 95% interval, ``way`` over ``plain``, with a percentile bootstrap
    interval over ``boot`` resamples of both sides (NaN bounds, and a note, without one)."""
    x, y = np.asarray(way, float), np.asarray(plain, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = width(x) / width(y)
        if not math.isfinite(value):
            return Estimate(value, math.nan, math.nan, "an interval is not available (fewer than 5 trials?)")
        if boot <= 0:
            return Estimate(value, math.nan, math.nan, "estimate")
        rng = np.random.default_rng(seed)
        draws = np.array([width(rng.choice(x, x.size)) / width(rng.choice(y, y.size)) for _ in range(boot)])
    draws = draws[np.isfinite(draws)]
    if draws.size < boot // 2:
        return Estimate(value, math.nan, math.nan, "estimate (bootstrap degenerate)")
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Estimate(value, float(lo), float(hi), "")


def show(e: Estimate) -> str:
    if math.isnan(e.lo):
        return f"{e.value:.3f} ({e.note or 'no interval'})"
    return f"{e.value:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def report(ways: dict[str, Way], boot: int) -> tuple[float, float]:
    """Print the table; return the worst time and width ratios."""
    plain = ways["plain"]
    worst_r, worst_w = math.nan, math.nan
    header = f"{'way':<9} {'workers':>7} {'n':>5} {'trials':>6} {'min':>9} {'median':>9}  {'time / plain [95%]':<30} {'width / plain [95%]':<30}"
    print(header)
    print("-" * len(header))
    for name, way in ways.items():
        if way.skipped:
            continue
        for key in sorted(plain.times.keys() | way.times.keys()):
            mine, base = way.times.get(key, []), plain.times.get(key, [])
            if not mine:
                print(f"{name:<9} {key[0]:>7} {key[1]:>5} {0:>6} {'-':>9} {'-':>9}  no trials")
                continue
            median = f"{min(mine) * 1e3:>6.0f} ms {np.median(mine) * 1e3:>6.0f} ms"
            if name == "plain" or not base:
                m = median_estimate(mine)
                print(
                    f"{name:<9} {key[0]:>7} {key[1]:>5} {len(mine):>6} {median}  (reference: its median's interval is {m.hi - m.lo:.4f} s wide)"
                )
                continue
            r = ratio_estimate(mine, base)
            w = width_ratio(mine, base, boot)
            worst_r = r.value if math.isnan(worst_r) else max(worst_r, r.value)
            if math.isfinite(w.value):
                worst_w = w.value if math.isnan(worst_w) else max(worst_w, w.value)
            print(f"{name:<9} {key[0]:>7} {key[1]:>5} {len(mine):>6} {median}  {show(r):<30} {show(w):<30}")
    print()
    for name, way in ways.items():
        flagged = "not measured" if way.under_load is None else str(way.under_load)
        state = f"skipped: {way.skipped}" if way.skipped else f"trials under_load {flagged}"
        if way.lab_cpu:  # the lab's own processes besides the cluster's (the browser, the server, papermill)
            state += f"; lab overhead median {np.median(way.lab_cpu) / 100:.2f} cores over {len(way.lab_cpu)} trials"
        print(f"{name:<9} {state}" + "".join(f"\n         {n}" for n in way.notes))
    return worst_r, worst_w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per point and round (fixed)")
    parser.add_argument("--n", type=int, nargs="+", default=[2048], help="matrix sides (the quickstart's n)")
    parser.add_argument("--chunk", type=int, default=512, help="block side (the quickstart's chunk)")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default: 1, 2, ... up to the cores")
    parser.add_argument("--boot", type=int, default=300, help="bootstrap resamples of the width ratio (0: none)")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="longest one notebook run may take")
    parser.add_argument("--no-browser", action="store_true", help="skip the JupyterLab-in-Chromium ways")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round, 5 repeats")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS), help="plain always runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeats, args.boot = 1, 5, min(args.boot, 100)

    workers = labkit.worker_counts(args.workers)
    params = {
        "workers": workers,
        "n": args.n,
        "chunk": args.chunk,
        "repeats": args.repeats,
        "warmup": 1,
        "budget_s": None,
    }
    print(f"load average at start {loadavg()}")
    print(f"the quickstart's sweep with {params}, {args.rounds} round(s), ways {', '.join(args.ways)}")
    print(f"target on a quiet 2-core machine: time ratio <= {TARGET_TIME}, width ratio <= {TARGET_WIDTH}")
    ways = {name: Way(name) for name in WAYS if name == "plain" or name in args.ways}
    skipped = "--no-browser" if args.no_browser else browser_missing()
    for name in BROWSER_WAYS if skipped else ():
        if name in ways:
            ways[name].skipped = skipped
        print(f"{name} way skipped: {skipped}")

    with tempfile.TemporaryDirectory(prefix="labkit-observer-") as tmp_dir:
        tmp = Path(tmp_dir)
        for r in range(args.rounds):
            names = list(ways)
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                way = ways[name]
                if way.skipped:
                    continue
                t0 = time.perf_counter()
                try:
                    times, loaded, notes, lab = run_way(name, r, params, tmp, args.timeout_s)
                except Exception as e:  # noqa: BLE001 - one failed way must not lose the others' figures
                    way.notes.append(f"round {r}: failed: {type(e).__name__}: {str(e)[:1500]}")
                    print(f"round {r} {name}: FAILED after {time.perf_counter() - t0:.0f} s: {type(e).__name__}")
                    continue
                way.add(times, loaded, lab)
                way.notes += [f"round {r}: {n}" for n in notes]
                count = sum(len(v) for v in times.values())
                print(f"round {r} {name}: {count} trials in {time.perf_counter() - t0:.0f} s; load {loadavg()}")

    print()
    worst_r, worst_w = report(ways, args.boot)
    print(f"load average at end {loadavg()}")
    print(f"worst time ratio {worst_r:.3f}")
    print(f"worst width ratio {worst_w:.3f}")


if __name__ == "__main__":
    main()
