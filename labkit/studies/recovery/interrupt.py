"""An interrupted sweep, and its resumption: what Ctrl-C or Jupyter's interrupt keeps.

:func:`interrupted_sweep` runs a small sweep (:func:`resumable_sweep`) in a process of its own
(``python -m labkit.studies.recovery.interrupt``) and sends SIGINT to its process group, as
Jupyter's interrupt does, once ``after`` trials are stored; run again, the sweep resumes with
only the trials not yet stored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ClusterError, ParameterError
from labkit.store import ResultStore, check_store_path

from .run import TASKS, _check_number

if TYPE_CHECKING:
    import pandas as pd

    from labkit.experiment.sweep import Sweep


def resumable_sweep(
    store: str | os.PathLike[str], experiment: str, *, tasks: Sequence[int] = TASKS, repeats: int = 3
) -> Sweep:
    """The small sweep that :func:`interrupted_sweep` interrupts: ``task-overhead`` over
    ``tasks``, ``repeats`` timed runs each, no warm-up. Run it again on a Lab of the same
    shape (2 workers of 1 thread) to resume it."""
    from labkit.experiment.sweep import Sweep

    return Sweep(
        "task-overhead", grid={"tasks": list(tasks)}, repeats=repeats, warmup=0, experiment=experiment, store=store
    )


def _ok_trials(path: str, experiment: str) -> tuple[list[int], pd.DataFrame | None]:
    """The ids of the experiment's ok trials, and the runs; empty while the store is being made."""
    import sqlite3

    if not os.path.exists(path):
        return [], None
    try:
        with ResultStore(path) as db:
            frame, runs = db.trials_frame(experiment), db.runs_frame()
    except sqlite3.OperationalError:  # the other process is creating it
        return [], None
    ok = frame["trial_id"][frame["status"].eq("ok")] if len(frame) else []
    return [int(t) for t in ok], runs[runs["experiment"].eq(experiment)]


def _status(path: str, experiment: str) -> str | None:
    """The status of the experiment's latest run in the store (None while it has none)."""
    runs = _ok_trials(path, experiment)[1]
    return None if runs is None or not len(runs) else str(runs["status"].iloc[-1])


def interrupted_sweep(
    store: str | os.PathLike[str],
    experiment: str = "recovery/interrupted",
    *,
    after: int = 5,
    tasks: Sequence[int] = TASKS,
    repeats: int = 3,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Run :func:`resumable_sweep` in a new process and interrupt it once ``after`` trials are stored.

    The process (``python -m labkit.studies.recovery.interrupt``) runs the sweep on its own Lab of
    2 workers with 1 thread each, in a session of its own; SIGINT goes to that session's
    process group, as Jupyter's interrupt goes to a kernel's (its Dask workers get it too),
    and again every 2 s, at most 5 times, while the process lives and its run is not yet
    marked interrupted in the store, as a person presses interrupt again when the first was
    swallowed (inside one of Dask's own callbacks, say), and not once the sweep took it. The trials are stored under
    ``experiment`` with the start time added, so that every call starts from nothing.

    Returns
    -------
    dict
        ``store``, ``experiment`` (resume with ``resumable_sweep(store, experiment, ...)``),
        ``run_id`` and ``status`` of the interrupted run in the store, the process's
        ``returncode`` (-9: it had to be killed), ``at_interrupt`` and ``after`` (ids of the
        ok trials in the store when SIGINT was sent, and once the process had ended), ``lost``
        (those of the first no longer there), ``interrupts`` (SIGINTs sent), ``planned``
        trials, ``seconds``, ``log``.
    """
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise ParameterError("tasks", tasks, "a non-empty list of task counts")
    planned = len(resumable_sweep(":memory:", "check", tasks=tasks, repeats=repeats).points()) * repeats
    _check_number("after", after, 1, planned, integer=True)
    _check_number("timeout_s", timeout_s, 1.0)
    if not isinstance(experiment, str) or not experiment.strip():
        raise ParameterError("experiment", experiment, "a non-empty name")
    path = str(check_store_path(store))
    name = f"{experiment}/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    command = [sys.executable, "-m", __name__, path, name, str(repeats), *map(str, tasks)]
    t0, at, sent, log = time.monotonic(), [], 0, tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout_s and sent < 5:
            at = at if sent else _ok_trials(path, name)[0]
            if len(at) < after:
                time.sleep(0.05)
                continue
            if sent and _status(path, name) == "interrupted":  # it took the interrupt: let it close its Lab
                proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - t0)))
                break
            os.killpg(proc.pid, signal.SIGINT)  # again 2 s later while the process lives, as a person would
            sent += 1
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - t0
    log.seek(0)
    text = "\n".join(log.read().splitlines()[-20:])
    log.close()
    if len(at) < after:
        raise ClusterError(
            f"the sweep's process stored {len(at)} of {after} trials before it ended (exit code {proc.returncode}) "
            f"or {timeout_s:g} s passed; it wrote:\n{text}"
        )
    kept, runs = _ok_trials(path, name)
    last = runs.iloc[-1].to_dict() if runs is not None and len(runs) else {}
    out = {"store": path, "experiment": name, "run_id": last.get("run_id"), "status": last.get("status")}
    out.update(returncode=proc.returncode, at_interrupt=at, after=kept, lost=sorted(set(at) - set(kept)))
    return {**out, "interrupts": sent, "planned": planned, "seconds": seconds, "log": text}


def main(argv: list[str]) -> int:
    """The process :func:`interrupted_sweep` starts: ``STORE EXPERIMENT REPEATS TASKS...``, the
    sweep on a Lab of 2 workers with 1 thread each; exit code 130 when interrupted."""
    from labkit.cluster import Lab

    store, experiment, repeats, *tasks = argv
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a parent that ignores SIGINT passes that on
    sweep = resumable_sweep(store, experiment, tasks=[int(t) for t in tasks], repeats=int(repeats))
    try:
        with Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
            sweep.run(lab, live=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
