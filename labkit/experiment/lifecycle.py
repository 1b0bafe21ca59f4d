"""The one start-and-finish path of a recorded run: store, fingerprint, status, load flags, reuse.

A :class:`RecordedRun` is what a :class:`~labkit.experiment.sweep.Sweep` and every study that
records its runs go through: it opens the store (and closes it at the end when it opened
it), marks ``interrupted`` the runs whose process is gone, captures the environment, takes
the fingerprint of what the run measures (see :mod:`.provenance`), records the run's start,
and at the end its status: ``finished``, ``failed`` (an Exception ended it) or
``interrupted`` (KeyboardInterrupt or another BaseException).

>>> with RecordedRun(store, "demo", workload, lab) as run:     # doctest: +SKIP
...     with run.load_window() as load:
...         ...                                                 # the timed work
...     store.add_trial(Trial(..., metrics={**load}, fingerprint=run.fingerprint.key))

The closing steps (the caller's own clean-up, the run's status, closing the store) run each
on its own: one that fails neither hides the error that ended the run nor skips the steps
after it. :class:`LoadWindow` flags work that ran under outside load as a sweep's trials are
flagged (``under_load``, by :class:`~labkit.measure.alerts.AlertRules`), and :meth:`RecordedRun.reuse`
says which points are already stored under the same fingerprint.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.store import ResultStore

from .faults import quietly
from .provenance import Fingerprint, Fingerprinter, ReusePlan, plan_reuse

if TYPE_CHECKING:
    from labkit.cluster import Lab
    from labkit.measure.alerts import AlertRules


@dataclass(frozen=True)
class StudyCode:
    """What a study measures, for a run's fingerprint: a name and the function whose source
    is hashed (``code_version`` reads ``fn``)."""

    name: str
    fn: Callable[..., Any]


def check_lab(lab: Any, workers: set[int] | None = None, name: str = "workers") -> None:
    """An open Lab; one that can scale where ``workers`` (the counts a run asks for, called
    ``name`` in the error) differ from its own."""
    from labkit.common.errors import ClusterError, ParameterError

    if getattr(lab, "closed", False) or getattr(lab, "client", None) is None:
        raise ParameterError("lab", lab, "an open labkit.Lab")
    if workers and lab.cluster is None and workers != {lab.workers}:
        raise ClusterError(
            f"{name}={sorted(workers)} needs a Lab that can scale, but this Lab is "
            f"connected by address with {lab.workers} workers; drop workers from the grid "
            "or use Lab(cluster=...)"
        )


def status_of(error: BaseException | None) -> str:
    """The status of a run that ended with ``error``: ``finished`` (None), ``failed`` (an
    Exception) or ``interrupted`` (KeyboardInterrupt, or another BaseException)."""
    if error is None:
        return "finished"
    return "failed" if isinstance(error, Exception) else "interrupted"


class RecordedRun:
    """A run recorded in a :class:`~labkit.store.ResultStore` from its start to its status.

    Parameters
    ----------
    store : str, Path, ResultStore or None
        A path: the run opens the store and closes it when it finishes. A ResultStore: the
        run uses it and leaves it open. None: nothing is recorded (``run_id`` stays None);
        ``finish`` still runs the caller's clean-up steps.
    experiment : str
        The name the run and its trials are stored under.
    workload : workload object or StudyCode
        Its ``name`` is stored with the run; its code goes into the fingerprint.
    lab : Lab
        The cluster the run measures: its environment and shape go into the fingerprint.
    config : dict, optional
        Stored with the run (its settings), with the fingerprint's key added.
    cleanup : callables, optional
        Steps the context manager runs when the run ends, before its status is recorded
        (scaling the cluster back, say), each on its own.

    Use it as a context manager (``start`` on entry; on exit ``finish`` with the status of
    how the block ended, raising a closing step's failure only when nothing else is), or call :meth:`open`, :meth:`start` and :meth:`finish` yourself
    where the run's config needs the fingerprint first (as a sweep's does).
    """

    def __init__(
        self,
        store: Any,
        experiment: str,
        workload: Any,
        lab: Lab,
        *,
        config: dict[str, Any] | None = None,
        cleanup: Iterable[Callable[[], Any]] = (),
    ) -> None:
        self.store_arg, self.experiment, self.workload, self.lab = store, experiment, workload, lab
        self.config = dict(config or {})
        self.cleanup = list(cleanup)
        self.store: ResultStore | None = None
        self.own_store = store is not None and not isinstance(store, ResultStore)
        self.env: dict[str, Any] = {}
        self.fingerprinter: Fingerprinter | None = None
        self.fingerprint: Fingerprint | None = None
        self.run_id: str | None = None
        self.status: str | None = None

    def open(self) -> ResultStore | None:
        """Open the store, mark its stale runs, capture the environment, take the fingerprint.

        A failure here closes the store it opened before it is raised.
        """
        from labkit.cluster.env import capture, worker_shape
        from labkit.common.scheduler import scheduler_workers

        if self.store_arg is None or self.store is not None:
            return self.store
        self.store = ResultStore(self.store_arg) if self.own_store else self.store_arg
        try:
            self.store.mark_stale_runs()
            self.env = capture(self.lab)
            self.fingerprinter = Fingerprinter(self.env, self.workload)
            self.fingerprint = self.fingerprinter.of(worker_shape(scheduler_workers(self.lab.client)))
        except BaseException:
            self.close()
            raise
        return self.store

    def start(self, config: dict[str, Any] | None = None) -> str | None:
        """Record the run's start (status ``running``) with its config (default: the one it
        was made with) and fingerprint; its id (None when nothing is recorded)."""
        if self.open() is None:
            return None
        try:
            config = {**(self.config if config is None else config), "fingerprint": self.fingerprint.key}
            self.run_id = self.store.start_run(self.experiment, self.workload.name, env=self.env, config=config)
            self.store.add_fingerprint(self.fingerprint.key, self.fingerprint.parts)
        except BaseException:
            self.finish("failed")
            raise
        return self.run_id

    def reuse(self, keys: list[str], reuse: str = "same") -> ReusePlan:
        """The stored ok trials of these points this run may take instead of measuring them
        again: ``"same"``, only those under this run's fingerprint; ``"any"``, all of them."""
        if self.open() is None:
            return ReusePlan({}, {}, "")
        return plan_reuse(self.store, self.experiment, keys, self.fingerprint, reuse)

    def load_window(self, rules: AlertRules | None = None, *, children: bool = False) -> LoadWindow:
        """A :class:`LoadWindow` on this run's lab: outside load over a block, flagged
        (``children``: see :class:`LoadWindow`)."""
        return LoadWindow(self.lab, rules, children=children)

    def end(self, status: str) -> list[BaseException]:
        """Record the run's status (once); what failed, as a list."""
        if self.run_id is None or self.status is not None:
            return []
        self.status = status
        return quietly(lambda: self.store.end_run(self.run_id, status))

    def close(self) -> list[BaseException]:
        """Close the store where the run opened it; what failed, as a list."""
        store, self.store = self.store, None
        return quietly(store.close) if self.own_store and store is not None else []

    def finish(
        self,
        status: str,
        cleanup: Iterable[Callable[[], Any] | None] = (),
        then: Iterable[Callable[[], Any] | None] = (),
    ) -> list[BaseException]:
        """The caller's ``cleanup`` steps, the run's status, the caller's ``then`` steps (the
        store still open: e.g. reading the results back), closing the store: each on its own.

        Returns what failed, for the caller to raise when nothing else is on its way.
        """
        failures: list[BaseException] = []
        with interrupts_held() as came:  # a second Ctrl-C does not cut the bookkeeping short
            for step in cleanup:
                failures += quietly(step)
            failures += self.end(status)
            for step in then:
                failures += quietly(step)
            failures += self.close()
        if came and status != "interrupted":  # pressed while a finished run was being recorded
            raise KeyboardInterrupt
        return failures

    def __enter__(self) -> RecordedRun:
        if self.run_id is None:
            self.start()
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        failures = self.finish(status_of(error), self.cleanup)
        if failures and error is None:
            raise failures[0]


@contextlib.contextmanager
def interrupts_held() -> Iterator[list[int]]:
    """SIGINT held back while the block runs, in the main thread (elsewhere, where Python
    delivers no signal, nothing changes); yields the list of the interrupts that came meanwhile.

    >>> import os, signal
    >>> with interrupts_held() as came:
    ...     os.kill(os.getpid(), signal.SIGINT)
    >>> came
    [2]
    """
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, _frame: came.append(signum))
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


class LoadWindow:
    """Outside load on this machine over a block of work, as a sweep's trials carry it.

    Reads the machine's CPU counters and the CPU time of the cluster's processes on it (the
    client process, the local workers and their nannies) and of the lab's other processes
    (see :func:`local_processes`) on entry and on exit; ``metrics`` then holds
    ``outside_cpu_percent``, ``steal_percent``, ``loadavg_1m``, ``cpu_percent``,
    ``lab_cpu_percent`` (lab overhead, not outside load; None: not measured, e.g. when the
    cluster's or the lab's processes changed in between) and
    ``under_load`` (above :class:`~labkit.measure.alerts.AlertRules`' thresholds; None: not
    measured). Workers on other machines are not read. ``children``: every process this one
    has started (a model server, a JVM, another engine's workers) counts as the cluster's,
    for a study whose work runs there; otherwise such a process is outside load while it runs.
    """

    def __init__(self, lab: Lab, rules: AlertRules | None = None, *, children: bool = False) -> None:
        from labkit.measure.alerts import AlertRules
        from labkit.measure.host import host_reader, snapshot_is_cheap

        self.lab, self.rules, self.read, self.children = lab, rules or AlertRules(), host_reader(), children
        self.top = snapshot_is_cheap()  # each reading with every process's CPU: who loaded the machine
        self.before: dict[str, Any] | None = None
        self.metrics: dict[str, Any] = {}

    def _reading(self) -> dict[str, Any] | None:
        import psutil

        try:
            pids, nannied, lab, trees = local_processes(self.lab)
            if self.children:
                pids = sorted(set(pids) | {p.pid for p in psutil.Process().children(recursive=True)})
            return self.read(pids, nannied, lab, trees, top=self.top)
        except Exception:  # noqa: BLE001 - e.g. /proc unreadable: not measured
            return None

    def __enter__(self) -> dict[str, Any]:
        self.before = self._reading()
        return self.metrics

    def __exit__(self, *exc: object) -> None:
        from labkit.measure.alerts import outside_words, top_processes
        from labkit.measure.load import load_rates

        now = self._reading()
        rates = load_rates(self.before, now) if now is not None else {}
        self.metrics.update(load_flags(rates, self.rules))
        if self.metrics["under_load"] is True:  # who, so that the user can act
            top = top_processes(self.before, now) if now is not None and self.before is not None else None
            self.metrics["outside_processes"] = outside_words(top)


def load_flags(rates: dict[str, float], rules: AlertRules | None = None) -> dict[str, Any]:
    """``load_rates``' figures (NaN as None) and ``under_load``, as a sweep's trials carry them.

    >>> load_flags({"outside_cpu_percent": 150.0, "steal_percent": float("nan")})["under_load"]
    True
    """
    from labkit.measure.alerts import AlertRules
    from labkit.measure.load import LOAD_METRICS

    rules = rules or AlertRules()
    out: dict[str, Any] = {k: rates.get(k) for k in LOAD_METRICS}
    out = {k: None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for k, v in out.items()}
    out["under_load"] = rules.load_flag(
        out["outside_cpu_percent"], out["steal_percent"], out["outside_resolution_percent"]
    )
    return out


def local_processes(lab: Lab) -> tuple[list[int], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The cluster's processes on this machine: this one and the local workers' (``pids``),
    and the workers among them (``nannied``: their nanny's process counts too); then the
    lab's own processes besides, which are not outside load: those above this one that run
    the lab (``lab``: ``labkit run``, papermill, the Jupyter server) and every worker process
    seen here since the lab started that still runs, retiring or starting ones included
    (``trees``: with their children), as :func:`labkit.measure.host.host_reader` takes them."""
    from distributed.comm import get_address_host

    from labkit.cluster import retire
    from labkit.cluster.retire import local_hosts

    here = local_hosts()
    workers = lab.client.run(os.getpid)
    retire.remember(lab.client, [(get_address_host(a), p) for a, p in workers.items()], here)
    mine = sorted({pid for addr, pid in workers.items() if get_address_host(addr) in here} - {os.getpid()})
    seen = {p for h, p in retire.known(lab.client, here) if h in here} | set(retire.spawned(lab.client))
    return [os.getpid(), *mine], tuple(mine), tuple(retire.lab_parents()), tuple(sorted(seen | set(mine)))
