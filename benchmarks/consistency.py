"""Do identical sweeps agree? The quickstart's sweep, six times, half of them beside a CPU hog.

    .venv/bin/python benchmarks/consistency.py [--runs 6] [--hog-s 120]

The quickstart's sweep, with the defaults of notebooks/00_quickstart.ipynb's parameters cell
(read from the notebook, so the two cannot drift apart: array-sum, worker counts up to the
cores, its sizes, ``repeats="auto"`` under its time budget), runs ``--runs`` times on one
cluster, each under a new experiment name (nothing resumed). Every
other run has a CPU hog beside it: a busy loop on one core in a subprocess, started before
the run and stopped after it (interleaved: quiet, hog, quiet, ...). Printed per run: the
conclusion labkit drew, then

- ``decided N``: runs whose conclusion states a direction (faster or slower) for some
  configuration;
- ``contradictions N``: pairs of runs whose conclusions claim opposite directions for the
  same configuration.

A lab that says only what its data show has ``contradictions 0``; ``decided`` says how often
the data were enough to say anything at all.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import labkit

# "For size_mb=64: 2 workers ran 1.62× faster than 1 ..." -> ("size_mb=64", "faster")
CLAIM = re.compile(r"^(?:For (?P<config>[^:]+): )?.*?\bran [\d.]+× (?P<direction>faster|slower) than\b")

QUICKSTART = Path(__file__).resolve().parents[1] / "notebooks" / "00_quickstart.ipynb"
HOG = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def claims(conclusion: str) -> dict[str, str]:
    """Configuration -> "faster" | "slower", for each line of a conclusion that claims one."""
    out = {}
    for line in conclusion.splitlines():
        m = CLAIM.search(line.strip())
        if m:
            out[m.group("config") or "all"] = m.group("direction")
    return out


def quickstart_defaults() -> dict[str, Any]:
    """The parameters cell's defaults of notebooks/00_quickstart.ipynb, as Python values."""
    import papermill

    declared = papermill.inspect_notebook(str(QUICKSTART))
    return {name: ast.literal_eval(p["default"]) for name, p in declared.items()}


def one_run(lab: labkit.Lab, store: Path, i: int, p: dict[str, Any]) -> str:
    sweep = labkit.Sweep(
        "array-sum",
        grid={"workers": labkit.worker_counts(p["workers"]), "size_mb": p["sizes_mb"]},
        params={"chunk_mb": p["chunk_mb"]},
        repeats=p["repeats"],
        max_repeats=p["max_repeats"],
        budget_s=p["budget_s"],
        warmup=p["warmup"],
        experiment=f"consistency-{i}",
        store=store,
    )
    return sweep.run(lab, live=False).conclusion()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument(
        "--hog-s", type=float, default=300.0, help="longest a hog may run (it is stopped after its run)"
    )
    args = parser.parse_args()
    runs: list[tuple[bool, str]] = []
    p = quickstart_defaults()
    workers = max(labkit.worker_counts(p["workers"]))
    print(f"the quickstart's sweep: {p}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        labkit.Lab(workers=workers, threads_per_worker=1, dashboard=False) as lab,
    ):
        store = Path(tmp) / "consistency.db"
        for i in range(args.runs):
            hog = i % 2 == 1
            proc = subprocess.Popen([sys.executable, "-c", HOG.format(seconds=args.hog_s)]) if hog else None
            try:
                conclusion = one_run(lab, store, i, p)
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
            runs.append((hog, conclusion))
            print(f"run {i} ({'CPU hog on one core' if hog else 'quiet'}):")
            print("  " + conclusion.replace("\n", "\n  "))
    said = [claims(c) for _, c in runs]
    decided = sum(bool(s) for s in said)
    contradictions = sum(
        any(a.get(k) and b.get(k) and a[k] != b[k] for k in a.keys() & b.keys())
        for a, b in itertools.combinations(said, 2)
    )
    quiet = [bool(s) for (hog, _), s in zip(runs, said) if not hog]
    print(f"decided among the quiet runs {sum(quiet)} of {len(quiet)}")
    print(f"decided {decided}")
    print(f"contradictions {contradictions}")


if __name__ == "__main__":
    main()
