"""A sweep run as its own process, so a test can kill it mid-sweep.

python tests/sweep_job.py STORE EXPERIMENT
"""

from __future__ import annotations

import sys

import labkit


def main(store: str, experiment: str) -> None:
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
        sweep = labkit.Sweep(
            "task-overhead",
            grid={"tasks": [100, 200, 300, 400, 500, 600]},
            repeats=4,
            warmup=0,
            experiment=experiment,
            store=store,
        )
        sweep.run(lab, live=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
