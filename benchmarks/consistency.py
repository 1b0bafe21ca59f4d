"""Do identical sweeps agree? The quickstart's sweep, six times, half of them beside a CPU hog.

    .venv/bin/python benchmarks/consistency.py [--runs 6] [--hog-s 120]

The quickstart's sweep, built by notebooks/00_quickstart.ipynb's own parameters cell and
the cell after it (so the two cannot drift apart: matmul, worker counts up to the cores, its
sizes, ``repeats="auto"`` under its time budget), runs ``--runs`` times on one cluster, each
under a new experiment name (nothing resumed). Every other run has a CPU hog beside it: a busy loop on one core in a subprocess, started before
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
import itertools
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

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


def quickstart_sweep(store: Path, experiment: str) -> tuple[labkit.Sweep, int]:
    """The Sweep notebooks/00_quickstart.ipynb builds with its defaults (its parameters cell and
    the cell after it, run as they are), under another store and experiment; and the most
    workers it asks for."""
    code = [c.source for c in nbformat.read(QUICKSTART, as_version=4).cells if c.cell_type == "code"]
    scope: dict[str, Any] = {}
    exec(code[0], scope)
    scope.update(store=str(store), experiment=experiment)
    exec(code[1], scope)
    return scope["sweep"], max(scope["workers"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument(
        "--hog-s", type=float, default=300.0, help="longest a hog may run (it is stopped after its run)"
    )
    args = parser.parse_args()
    runs: list[tuple[bool, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "consistency.db"
        sweep, workers = quickstart_sweep(store, "consistency")
        print(f"the quickstart's sweep: {sweep!r}")
        lab = labkit.Lab(workers=workers, threads_per_worker=1, dashboard=False)
        for i in range(args.runs):
            hog = i % 2 == 1
            proc = subprocess.Popen([sys.executable, "-c", HOG.format(seconds=args.hog_s)]) if hog else None
            try:
                conclusion = quickstart_sweep(store, f"consistency-{i}")[0].run(lab, live=False).conclusion()
            finally:
                if proc is not None:
                    proc.kill()
                    proc.wait()
            runs.append((hog, conclusion))
            print(f"run {i} ({'CPU hog on one core' if hog else 'quiet'}):")
            print("  " + conclusion.replace("\n", "\n  "))
        lab.close()
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
