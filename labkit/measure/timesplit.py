"""Where a trial's time went, from Dask's own span metrics.

>>> with TrialSpan(lab, "17") as span:                    # doctest: +SKIP
...     x.sum().compute()                                  # the timed run
>>> split = span.read()   # later, once the workers have reported   # doctest: +SKIP
>>> split.fractions()                                      # doctest: +SKIP
{'compute_cpu': 0.62, 'compute_other': 0.05, 'transfer': 0.08, 'spill': 0.0, ...}
>>> split.stragglers                                       # doctest: +SKIP
['tcp://127.0.0.1:40123']

The trial runs inside its own ``distributed.span("labkit-trial-<label>")``. The scheduler's
spans extension sums the fine performance metrics that workers send with each heartbeat
(``("execute", prefix, activity, unit)``), so they are complete only a heartbeat or two
after the run: :meth:`TrialSpan.read` waits (bounded) until every worker has reported after
the span ended, and a sweep should call it late, e.g. after the next trial's setup.

**What the split sums to.** ``total_s`` is Dask's ``Span.active_cpu_seconds``: the thread
seconds the cluster offered while the span ran, ``(stop - enqueued) x threads``. Dask fills
the part no task accounted for as "idle or other spans"; labkit moves the time inputs spent
in transfer (``all_durations["transfer"]``, measured where the data arrived) out of that
remainder into ``transfer_s``, at most all of it: transfers also overlap running tasks, so
their full duration is kept apart as ``transfer_total_s``. The seven buckets add up to
``total_s`` (to rounding; more only if Dask's own metrics exceed it).

When the span's figures are missing (the scheduler never saw the span, or no worker sent
its metrics by the deadline) the split is not measured: its seconds are None and
``settled`` is False, never a split of zeros.

Per-worker busy time comes from the scheduler's task stream (each task's compute interval
and worker), restricted to the span's tasks: the span's metrics are not kept per worker.
It also judges stragglers (:func:`find_stragglers`).
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import distributed

from labkit.cluster.launch import PLUGIN_USERS
from labkit.common.errors import ClusterError

from .alerts import AlertRules

# A trial's span is a Dask annotation; dask.dataframe with query planning warns that it
# ignores annotations (it keeps the span nonetheless) on every trial, in red, into reports.
warnings.filterwarnings("ignore", message=r"Dask annotations .* detected", category=UserWarning)

#: Activities of Dask's fine performance metrics, by labkit bucket.
BUCKETS = {
    "thread-cpu": "compute_cpu",
    "thread-noncpu": "compute_other",
    "disk-read": "spill",
    "disk-write": "spill",
    "serialize": "serialization",
    "deserialize": "serialization",
    "compress": "serialization",
    "decompress": "serialization",
    "idle or other spans": "idle",
}
SPLIT_NAMES = ("compute_cpu", "compute_other", "transfer", "spill", "serialization", "idle", "other")


@dataclass
class WorkerBusy:
    """One worker's share of a trial, from the task stream."""

    worker: str
    threads: int
    tasks: int
    busy_s: float  # sum of its tasks' compute intervals
    slowdown: float | None = None  # its median task time / the others' for the same kinds of task (weighted)
    straggler: str | None = None  # why it is one, or None


@dataclass
class TimeSplit:
    """Seconds of a trial's thread time, by what they were spent on (see the module docstring).

    None means not measured (the span's figures never arrived).
    """

    label: str
    span_id: str
    wall_s: float | None  # span stop - span enqueued
    total_s: float | None  # thread seconds offered: Span.active_cpu_seconds
    compute_cpu_s: float | None
    compute_other_s: float | None
    transfer_s: float | None
    spill_s: float | None
    serialization_s: float | None
    idle_s: float | None
    other_s: float | None
    transfer_total_s: float | None = None  # all transfer durations, overlapping tasks or not
    spill_write_bytes: float | None = None
    spill_read_bytes: float | None = None
    settled: bool = False  # True: every worker reported after the span, and its figures are in
    workers: dict[str, WorkerBusy] = field(default_factory=dict)
    stragglers: list[str] = field(default_factory=list)
    tasks_missing: bool = False  # the task stream had dropped some of the span's tasks
    description: str | None = None  # what the trial was, for people (e.g. its parameters)

    @property
    def measured(self) -> bool:
        return self.compute_cpu_s is not None

    @property
    def accounted_s(self) -> float | None:
        """Sum of the seven buckets (equals ``total_s`` to rounding); None if not measured."""
        return sum(v or 0.0 for v in self.seconds().values()) if self.measured else None

    def seconds(self) -> dict[str, float | None]:
        return {n: getattr(self, f"{n}_s") for n in SPLIT_NAMES}

    def fractions(self) -> dict[str, float | None]:
        """Each bucket as a fraction of ``total_s`` (None: not measured, or no thread time)."""
        total = self.total_s
        return {n: (v / total if v is not None and total else None) for n, v in self.seconds().items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_metrics(self) -> dict[str, Any]:
        """Flat scalars for a trial's metrics: ``time_<bucket>_s``, ``time_total_s``, stragglers."""
        out: dict[str, Any] = {f"time_{n}_s": v for n, v in self.seconds().items()}
        out.update(time_total_s=self.total_s, time_settled=self.settled, stragglers=",".join(self.stragglers) or None)
        return out

    @property
    def what(self) -> str:
        """How messages name the trial: its description, else its label."""
        return self.description or f"trial {self.label}"


class TrialSpan:
    """Run a block inside its own Dask span; afterwards read where its time went.

    Parameters
    ----------
    lab : Lab or distributed.Client
        Where the work runs.
    label : str or int
        The trial's label; the span is named ``"labkit-trial-<label>"``.
    rules : AlertRules, optional
        Straggler thresholds (``straggler_slowdown``, ``straggler_alpha``, ``straggler_min_s``).
    description : str, optional
        What the trial was, for people (e.g. ``"array-sum, workers=2, size_mb=64, repeat 1"``):
        alerts name the trial by it rather than by its label.

    Entering and leaving cost one scheduler round trip each (to mark the task stream);
    keep them outside the timed region, which the span annotates. The span is a
    ``contextvars`` annotation: work submitted from another thread (a timeout pool) must
    run in a copy of this context (``contextvars.copy_context().run``).
    """

    def __init__(
        self, lab: Any, label: str | int, *, rules: AlertRules | None = None, description: str | None = None
    ) -> None:
        self.client = getattr(lab, "client", lab)
        self.label, self.description = str(label), description
        self.rules = rules or AlertRules()
        self.span_id: str | None = None
        self._cm: Any = None
        self._first: int | None = None
        self._last: int | None = None
        self._threads: dict[str, int] = {}
        self._error: Exception | None = None

    def __enter__(self) -> TrialSpan:
        self._first, self._threads = self._mark()  # the workers the trial starts with
        self._cm = distributed.span(f"labkit-trial-{self.label}")
        self.span_id = self._cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)
        self._last, _ = self._mark()

    def _mark(self) -> tuple[int | None, dict[str, int]]:
        """The task stream's position and the workers' threads; None if the scheduler
        refused (diagnostics never fail a trial)."""
        try:
            return self.client.run_on_scheduler(_mark_scheduler(), client_id=self.client.id, attribute=PLUGIN_USERS)
        except Exception as e:  # noqa: BLE001 - e.g. a scheduler that forbids run_on_scheduler
            self._error = e
            return None, {}

    def read(self, timeout: float = 5.0, poll: float = 0.1) -> TimeSplit:
        """Wait until every worker has reported after the span ended (at most ``timeout``
        seconds), then return the :class:`TimeSplit`; ``settled`` says whether it waited enough.

        Raises :class:`~labkit.common.errors.ClusterError` when the scheduler cannot be asked.
        """
        if self.span_id is None:
            raise RuntimeError("TrialSpan.read() needs the span to have run: use it as `with TrialSpan(...):` first")
        if self._first is None or self._last is None:
            raise ClusterError(f"cannot read span metrics from the scheduler: {self._error}")
        deadline = time.monotonic() + timeout
        reader = _read_scheduler()
        while True:
            try:
                raw = self.client.run_on_scheduler(reader, span_id=self.span_id, first=self._first, last=self._last)
            except Exception as e:
                raise ClusterError(f"cannot read span metrics from the scheduler: {e}") from e
            if raw is None or raw["settled"] or time.monotonic() >= deadline:
                return self._split(raw)
            time.sleep(poll)

    def _split(self, raw: dict[str, Any] | None) -> TimeSplit:
        label, span_id = self.label, str(self.span_id)
        if raw is None:  # the scheduler never saw the span (nothing ran inside it, or it was lost)
            return TimeSplit(label, span_id, None, None, *([None] * 7), description=self.description)
        workers = {w: WorkerBusy(w, n, 0, 0.0) for w, n in self._threads.items()}
        for w, per_prefix in raw["tasks"].items():
            wb = workers.setdefault(w, WorkerBusy(w, 1, 0, 0.0))
            wb.tasks = sum(c for c, _, _ in per_prefix.values())
            wb.busy_s = sum(s for _, s, _ in per_prefix.values())
        stragglers = find_stragglers(workers, raw["tasks"], self.rules)
        common = {"workers": workers, "stragglers": stragglers, "tasks_missing": raw["tasks_missing"]}
        if not raw["seconds"]:  # no worker's metrics arrived: not measured, never zeros
            return TimeSplit(
                label, span_id, raw["wall_s"], raw["total_s"], *([None] * 7), description=self.description, **common
            )
        buckets = dict.fromkeys(SPLIT_NAMES, 0.0)
        for activity, seconds in raw["seconds"].items():
            buckets[BUCKETS.get(activity, "other")] += seconds
        transfer = min(raw["transfer_s"], buckets["idle"])
        buckets["transfer"], buckets["idle"] = transfer, buckets["idle"] - transfer
        return TimeSplit(
            label,
            span_id,
            raw["wall_s"],
            raw["total_s"],
            *(buckets[n] for n in SPLIT_NAMES),
            transfer_total_s=raw["transfer_s"],
            spill_write_bytes=raw["bytes"].get("disk-write", 0.0),
            spill_read_bytes=raw["bytes"].get("disk-read", 0.0),
            settled=raw["settled"],
            description=self.description,
            **common,
        )


def find_stragglers(
    workers: dict[str, WorkerBusy], tasks: dict[str, dict[str, tuple[int, float, list[float]]]], rules: AlertRules
) -> list[str]:
    """Mark and return the workers whose tasks took longer than the same tasks elsewhere.

    ``tasks`` is ``{worker: {prefix: (count, busy seconds, durations)}}``. For each task
    prefix, a worker's durations are set against those of each other worker that ran the
    same prefix: it is slower than that worker when its median is above
    ``straggler_slowdown`` x theirs and a one-sided Mann-Whitney U test puts its durations
    above theirs beyond the spread those tasks show (p < ``straggler_alpha`` / the number of
    comparisons made). It is slow on that prefix when it is slower than more than half of
    the others, and a straggler when its slow tasks took, in all, at least
    ``straggler_min_s`` more than the others' typical (median) task would have. Being less
    busy, or quicker, never makes one; too few tasks to tell make none.
    """
    from scipy.stats import mannwhitneyu

    pairs = [
        (w, o, prefix)
        for w in workers
        for o in workers
        if o != w
        for prefix in tasks.get(w, {})
        if tasks[w][prefix][2] and tasks.get(o, {}).get(prefix, (0, 0.0, []))[2]
    ]
    out = []
    for w, wb in workers.items():
        own = expected = excess = 0.0
        worst: tuple[float, str] | None = None
        for prefix, (count, _, mine) in tasks.get(w, {}).items():
            others = [o for v, o, p in pairs if v == w and p == prefix]
            if not others:
                continue
            m = statistics.median(mine)
            typical = statistics.median(statistics.median(tasks[o][prefix][2]) for o in others)
            own, expected = own + count * m, expected + count * typical
            slower, p_max = 0, 0.0
            for o in others:
                theirs = tasks[o][prefix][2]
                if m > rules.straggler_slowdown * statistics.median(theirs):
                    p = mannwhitneyu(mine, theirs, alternative="greater").pvalue
                    if p < rules.straggler_alpha / len(pairs):
                        slower, p_max = slower + 1, max(p_max, p)
            if slower > len(others) / 2 and typical > 0:
                lost = count * (m - typical)
                excess += lost
                why = (
                    f"its {count} {prefix} tasks took a median {_ms(m)} vs {_ms(typical)} on the other workers "
                    f"({m / typical:.1f}x; longer than on {slower} of {len(others)}, one-sided Mann-Whitney p <= {p_max:.1g})"
                )
                worst = max(worst or (lost, why), (lost, why))
        wb.slowdown = own / expected if expected > 0 else None
        wb.straggler = worst[1] if worst is not None and excess >= rules.straggler_min_s else None
        if wb.straggler:
            out.append(w)
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


# The functions below run on the scheduler. They are built inside factories so that
# cloudpickle sends them by value: a remote scheduler need not have labkit installed.


def _mark_scheduler() -> Any:
    """The task stream's position and the workers' threads. A task-stream plugin that labkit
    adds records its labkit Clients under ``attribute``, so that a Lab closing on a scheduler
    it did not start removes it (``labkit.cluster.launch.release_plugins``); one that was
    there before is used and left as it is."""

    def mark(dask_scheduler: Any, client_id: str, attribute: str) -> tuple[int, dict[str, int]]:
        from distributed.diagnostics.task_stream import TaskStreamPlugin

        plugin = dask_scheduler.plugins.get(TaskStreamPlugin.name)
        if plugin is None:
            plugin = TaskStreamPlugin(dask_scheduler)
            setattr(plugin, attribute, set())
            dask_scheduler.add_plugin(plugin)
        users = getattr(plugin, attribute, None)
        if isinstance(users, set):
            users.add(client_id)
        return plugin.index, {a: ws.nthreads for a, ws in dask_scheduler.workers.items()}

    return mark


def _read_scheduler() -> Any:
    def read(dask_scheduler: Any, span_id: str, first: int, last: int) -> dict[str, Any] | None:
        from collections import defaultdict

        from dask.utils import key_split
        from distributed.utils import key_split_group

        span = dask_scheduler.extensions["spans"].spans.get(span_id)
        if span is None:
            return None
        seconds: defaultdict[str, float] = defaultdict(float)
        nbytes: defaultdict[str, float] = defaultdict(float)
        for key, value in span.cumulative_worker_metrics.items():
            if key[0] == "execute" and key[-1] == "seconds":
                seconds[key[-2]] += value
            elif key[0] == "execute" and key[-1] == "bytes":
                nbytes[key[-2]] += value
        stop = span.stop
        # Complete once every worker's latest heartbeat was measured after the span ended.
        settled = span.done and all(
            (ws.metrics or {}).get("time", 0) > stop + 0.05 for ws in dask_scheduler.workers.values()
        )
        plugin = dask_scheduler.plugins.get("task-stream")
        groups = {tg.name for tg in span.traverse_groups()}
        durations: defaultdict[str, defaultdict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        missing = False
        if plugin is not None:
            offset = plugin.index - len(plugin.buffer)
            missing = first < offset
            for i in range(max(first, offset), min(last, plugin.index)):
                rec = plugin.buffer[i - offset]
                if key_split_group(rec["key"]) in groups:
                    d = sum(s["stop"] - s["start"] for s in rec["startstops"] if s["action"] == "compute")
                    durations[rec["worker"]][key_split(rec["key"])].append(d)
        return {
            "seconds": dict(seconds),
            "bytes": dict(nbytes),
            "transfer_s": span.all_durations.get("transfer", 0.0),
            "wall_s": stop - span.enqueued,
            "total_s": span.active_cpu_seconds,
            "settled": settled,
            "tasks_missing": missing,
            # every duration up to 1000 per worker and prefix, else 1000 spread over them
            "tasks": {
                w: {p: (len(ds), sum(ds), sorted(ds)[:: max(1, len(ds) // 1000)]) for p, ds in per.items()}
                for w, per in durations.items()
            },
        }

    return read
