"""``tf-train``: the network, data, steps and stopping rule of ``ddp-train`` in TensorFlow, one process per Dask worker.

Each rank is a fresh process (:mod:`labkit.studies.training.tf_rank`) that its Dask task starts
with ``TF_CONFIG`` naming every rank's TensorFlow server (127.0.0.1, ports free when the run
starts), so TensorFlow never loads into a Dask worker and a rank that hangs can be killed. The
ranks join in a ``tf.distribute.MultiWorkerMirroredStrategy`` (ring all-reduce), and each step
sums the gradients and the loss in one all-reduce. The task watches its rank:

- it must import TensorFlow within :data:`START_TIMEOUT_S`;
- from then, every rank must join within ``join_timeout_s`` (the strategy's start-up waits for
  all of them); if not, the task kills its rank's process group and raises
  :class:`RankError` naming each rank whose server port never answered (or, where every port
  answered, the rank that waited);
- every all-reduce after that is bounded by ``join_timeout_s`` too (TensorFlow's collective
  timeout), so a rank lost mid-run ends the others with TensorFlow's error.

The rank also asks Linux to kill it when its task's process dies. Metrics are ``ddp-train``'s:
time to target, time per epoch and per step, loss trace, bytes all-reduced per step (computed
for a ring, beside the payload counted); the wall time includes starting the processes.

>>> TF_HINT
"pip install -e '.[tensorflow]' (tensorflow-cpu 2.21, the CPU build)"
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labkit.common.errors import LabkitError
from labkit.workloads.learning import digits_split

from .workloads import _pinned, _Training, free_ports, ring_bytes

TF_HINT = "pip install -e '.[tensorflow]' (tensorflow-cpu 2.21, the CPU build)"
TF_SKIPPED = "skipped: TensorFlow not installed (pip install -e '.[tensorflow]')"
RANK_MODULE = "labkit.studies.training.tf_rank"
START_TIMEOUT_S = 300.0
"""Seconds a rank may take to import TensorFlow."""
EXIT_GRACE_S = 10.0
"""Seconds a rank that wrote its result may take to exit before it is killed."""


class RankError(LabkitError):
    """A TensorFlow rank failed, never joined, or did not finish in time."""


def _run_module(args: list[str], cwd: str, env: dict[str, str] | None = None, **kw: Any) -> Any:
    """``python -m`` :data:`RANK_MODULE` in ``cwd`` (an empty folder of its own: ``-m`` puts the working
    folder first on the import path) with TensorFlow's start-up log quiet."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", RANK_MODULE, *args], cwd=cwd, env=env, **kw)


@functools.lru_cache(maxsize=1)
def tensorflow_version() -> str | None:
    """TensorFlow's version as a fresh process imports it (as a rank would), or None where it does not."""
    if importlib.util.find_spec("tensorflow") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="labkit-tf-") as folder:
        proc = _run_module(["--version"], folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            out, _ = proc.communicate(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None
    lines = out.split()
    return lines[-1] if proc.returncode == 0 and lines else None


def tensorflow_available() -> bool:
    """Whether a fresh process imports TensorFlow here."""
    return tensorflow_version() is not None


def require_tensorflow(what: str = "this workload") -> str:
    """TensorFlow's version, or a :class:`~labkit.common.errors.LabkitError` saying how to install it."""
    version = tensorflow_version()
    if version is None:
        raise LabkitError(f"{what} needs TensorFlow: {TF_HINT}")
    return version


def tensorflow_note() -> str:
    """Whether the TensorFlow parts of a notebook run here, in words (:data:`TF_SKIPPED` when they do not)."""
    version = tensorflow_version()
    return TF_SKIPPED if version is None else f"TensorFlow {version} found: the TensorFlow sections run."


@dataclass
class RankJob:
    """What one rank's task needs: its rank, every rank's server port and Dask worker, the run's parameters."""

    rank: int
    ports: list[int]
    workers: list[str]
    params: dict[str, Any]
    max_steps: int | None = None

    @property
    def ranks(self) -> int:
        return len(self.ports)

    def name(self, rank: int) -> str:
        return f"rank {rank} (Dask worker {self.workers[rank]}, TensorFlow server 127.0.0.1:{self.ports[rank]})"

    def tf_config(self) -> str:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in self.ports]}
        return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": self.rank}})


def _answers(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _never_joined(job: RankJob, waited: float) -> RankError:
    """The error for a start-up that did not finish: the ranks whose server never answered, by name."""
    silent = [r for r in range(job.ranks) if r != job.rank and not _answers(job.ports[r])]
    if silent:
        names = "; ".join(job.name(r) for r in silent)
        return RankError(
            f"tf-train: {names} never joined: nothing listened on its port within {waited:.0f} s "
            f"(join_timeout_s) of {job.name(job.rank)} starting; the run was stopped"
        )
    return RankError(
        f"tf-train: {job.name(job.rank)} did not finish joining the {job.ranks} ranks within {waited:.0f} s "
        "(join_timeout_s), though every other rank's server answered; the run was stopped"
    )


def _kill(proc: subprocess.Popen) -> None:
    """Kill the rank's process group (SIGKILL: TensorFlow's start-up does not answer SIGTERM) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _watch(proc: subprocess.Popen, folder: Path, job: RankJob) -> None:
    """Wait for the rank, raising :class:`RankError` where it outlives a deadline (the caller kills it)."""
    start, ready, joined, done = time.monotonic(), None, False, None
    join_s = float(job.params["join_timeout_s"])
    while proc.poll() is None:
        now = time.monotonic()
        ready = ready or (now if (folder / "ready").exists() else None)
        joined = joined or (folder / "joined").exists()
        done = done or (now if (folder / "result.json").exists() else None)
        if ready is None and now - start > START_TIMEOUT_S:
            raise RankError(f"tf-train: {job.name(job.rank)} did not import TensorFlow within {START_TIMEOUT_S:.0f} s")
        if ready is not None and not joined and now - ready > join_s:
            raise _never_joined(job, now - ready)
        if done is not None and now - done > EXIT_GRACE_S:
            return  # finished, and stuck on the way out
        time.sleep(0.05)


def _outcome(proc: subprocess.Popen, folder: Path, job: RankJob) -> dict[str, Any]:
    if (folder / "result.json").exists():
        return json.loads((folder / "result.json").read_text())
    error = folder / "error.txt"
    log = (folder / "log.txt").read_text(errors="replace")[-2000:]
    said = error.read_text()[-2000:] if error.exists() else f"exit status {proc.returncode}; its log ends:\n{log}"
    raise RankError(f"tf-train: {job.name(job.rank)} failed: {said}")


def run_rank(job: RankJob) -> dict[str, Any]:
    """Start one rank as a fresh process, watch it, and return what it wrote (rank 0: the run's
    summary); a rank that fails, never joins or overruns its deadlines is killed and raises
    :class:`RankError`. Runs in the rank's Dask task, or anywhere a test calls it."""
    with tempfile.TemporaryDirectory(prefix="labkit-tf-") as tmp:
        folder = Path(tmp)
        spec = {**asdict(job), "rank": job.rank, "ranks": job.ranks, "parent": os.getpid()}
        (folder / "spec.json").write_text(json.dumps(spec))
        np.savez(folder / "data.npz", *digits_split())
        with open(folder / "log.txt", "wb") as log:
            proc = _run_module(
                [tmp], tmp, {"TF_CONFIG": job.tf_config()}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _watch(proc, folder, job)
        finally:
            _kill(proc)
        return _outcome(proc, folder, job)


def train_tf(client: Any, params: dict[str, Any], addresses: list[str], *, max_steps: int | None = None) -> dict:
    """Run ``tf-train`` with one rank per worker address; rank 0's summary."""
    ports = free_ports(len(addresses))
    jobs = [(RankJob(r, ports, list(addresses), params, max_steps),) for r in range(len(addresses))]
    outs = _pinned(client, run_rank, addresses, jobs)
    return {**outs[0], **ring_bytes(params, len(addresses)), "rank_weights": None}


class TFTrain(_Training):
    """TensorFlow, one process per worker (started by its task), gradients summed by a ring all-reduce each step."""

    name = "tf-train"
    description = "TensorFlow MultiWorkerMirroredStrategy training (ring all-reduce) to a target held-out accuracy"
    defaults = {**_Training.defaults, "join_timeout_s": 60.0}
    minimum = {**_Training.minimum, "join_timeout_s": 1.0}
    trainer = staticmethod(train_tf)

    def require(self) -> None:
        require_tensorflow(self.name)
