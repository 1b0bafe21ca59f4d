"""Running one grid point: its inputs (setup and warm-up, untimed), timed repeats between
barriers one visit at a time, teardown, timeouts.

Every timed run becomes a :class:`~labkit.store.Trial` appended to the store the moment it
ends, whatever its status, with the fingerprint of what it measured.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from labkit import workloads
from labkit.common.errors import TrialTimeout
from labkit.common.scheduler import scheduler_workers
from labkit.store import ResultStore, Trial

from .faults import (
    DEGRADED,
    WorkerLost,
    WorkerWatch,
    call_timed,
    default_limit,
    degraded_reason,
    failure_reason,
    restore_workers,
)
from .provenance import Fingerprint, Fingerprinter
from .readable import unstable_note
from .settle import Settler
from .timing import Repeats, Warmup, spread

if TYPE_CHECKING:
    from labkit.cluster import Lab


class SweepPlan(Protocol):
    """What a point's runner needs of its sweep (``labkit.Sweep`` is one)."""

    experiment: str
    workload: Any
    policy: Repeats
    warmup_policy: Warmup
    timeout_s: float | None
    raise_on_error: bool

    def point_complete(self, times: dict[int, float]) -> bool: ...


class RunContext:
    """What every point of one run shares: the lab and what it is now, the store, the view."""

    def __init__(self, lab: Lab, store: ResultStore, view: Any, settler: Settler, fingerprinter: Fingerprinter) -> None:
        self.lab, self.store, self.view, self.settler = lab, store, view, settler
        self.fingerprinter = fingerprinter
        self.run_id = ""
        self.inputs_lost = ""  # why every point's inputs must be set up again, after a worker was lost
        self.refresh()
        self.first = self.fingerprint

    def refresh(self) -> None:
        """Read the cluster now (after a rescale): workers, threads, memory limit, fingerprint."""
        from labkit.cluster.env import worker_shape

        ws = scheduler_workers(self.lab.client)
        self.workers = len(ws)
        self.threads = sum(w["nthreads"] for w in ws.values())
        limits = [w.get("memory_limit") or 0 for w in ws.values()]
        self.memory_limit: float | None = float(sum(limits)) if limits and all(limits) else None
        self.fingerprint: Fingerprint = self.fingerprinter.of(worker_shape(ws))
        if self.run_id:
            self.store.add_fingerprint(self.fingerprint.key, self.fingerprint.parts)


def keys_in_memory(lab: Lab) -> dict[str, int] | None:
    """The keys held in the workers' memory now, with their bytes, as the scheduler knows
    them (None where it does not say)."""
    try:
        return lab.client.run_on_scheduler(_memory_keys)
    except Exception:  # noqa: BLE001 - an old or remote scheduler: not measured
        return None


def _memory_keys(dask_scheduler: Any) -> dict[str, int]:
    return {str(k): int(ts.nbytes) for k, ts in dask_scheduler.tasks.items() if ts.state == "memory"}


def new_bytes(before: dict[str, int] | None, after: dict[str, int] | None) -> float | None:
    """Bytes of the keys in ``after`` that were not in ``before`` (keys released meanwhile,
    such as another point's inputs, do not count).

    >>> new_bytes({"a": 10, "b": 5}, {"b": 5, "c": 7})
    7.0
    """
    if before is None or after is None:
        return None
    return float(sum(n for k, n in after.items() if k not in before))


class PointRunner:
    """One grid point through a sweep: its inputs, its timed repeats, its teardown.

    ``set_up`` builds the inputs and runs the warm-ups (untimed); each ``step`` times one
    repeat; ``release`` tears the inputs down. A setup or warm-up that fails, or a repeat
    that times out, closes the point for this run (recorded as failed trials).
    """

    def __init__(
        self,
        sweep: SweepPlan,
        ctx: RunContext,
        params: dict[str, Any],
        key: str,
        workers: int | None,
        times: dict[int, float],
        description: str = "",
    ) -> None:
        self.sweep, self.ctx, self.params, self.key, self.workers = sweep, ctx, params, key, workers
        self.description = description or key  # for people: alerts name the point by it
        self.times = dict(times)  # repeat -> wall_s of its ok runs, resumed ones included
        self.resumed = len(times)
        self.attempted: set[int] = set()
        self.retried: set[int] = set()  # repeats run again after a worker was lost
        self.recorded = 0
        self.closed = False  # no more runs in this sweep (setup, warm-up or timeout)
        self.done = False
        self.cut = False  # stopped by the time budget short of its interval target
        self.state: Any = None
        self.has_inputs = False
        self.fresh = False
        self.next_reason = "first visit"
        self.setups = 0
        self.trial_ids: list[int] = []
        self.point_metrics: dict[str, Any] = {}
        self.inputs_bytes: float | None = None

    # -- where the point stands ----------------------------------------------------------

    def satisfied(self) -> bool:
        return self.sweep.point_complete(self.times)

    def pending(self) -> list[int]:
        """Repeat indices still to run (neither ok nor attempted in this run)."""
        return [r for r in range(self.sweep.policy.maximum) if r not in self.times and r not in self.attempted]

    def wants_more(self, budget_spent: bool) -> bool:
        """Whether the point needs another timed run: not done, closed or satisfied, and,
        once the time budget is spent, still below its policy's minimum."""
        if self.done or self.closed or self.satisfied() or not self.pending():
            return False
        return not (budget_spent and len(self.times) >= self.sweep.policy.minimum)

    def start(self) -> None:
        """Count what the store already holds in the view; a complete point is done."""
        if self.satisfied():
            self.done = True
            self.ctx.view.skip(self.sweep.policy.maximum)
        else:
            self.ctx.view.skip(self.resumed)

    def finish(self, budget_spent: bool) -> None:
        """The point is over for this run: its summary stored, its progress completed."""
        if self.done:
            return
        self.done = True
        self.cut = budget_spent and not self.closed and not self.satisfied() and bool(self.pending())
        self._summarise()
        self.ctx.view.skip(self.sweep.policy.maximum - self.resumed - self.recorded)

    # -- inputs --------------------------------------------------------------------------

    def set_up(self) -> None:
        """Build the inputs and warm up (untimed); on failure record it and close the point."""
        wl, lab = self.sweep.workload, self.ctx.lab
        before = keys_in_memory(lab)
        try:
            state = wl.setup(lab, **self.params)
        except Exception as e:  # noqa: BLE001 - recorded as the point's error
            self._close_failed(f"setup failed: {describe_error(e)}", e)
            return
        self.state, self.has_inputs, self.fresh = state, True, True
        self.setups += 1
        try:
            warm = self.sweep.warmup_policy.run(lambda: _duration(wl.run, state))
        except Exception as e:  # noqa: BLE001 - recorded; the timed runs would fail alike
            self.release(None)
            self._close_failed(f"warm-up failed: {describe_error(e)}", e)
            return
        self.inputs_bytes = new_bytes(before, keys_in_memory(lab))
        self.point_metrics = {
            "warmup_runs": len(warm),
            "warmup_first_s": warm[0] if warm else None,
            "inputs_setups": self.setups,
            "inputs_reason": self.next_reason,
            "inputs_bytes": self.inputs_bytes,
        }

    def release(self, reason: str | None) -> None:
        """Tear the inputs down (a failed teardown must not lose the sweep)."""
        if not self.has_inputs:
            return
        state, self.state, self.has_inputs = self.state, None, False
        if reason is not None:
            self.next_reason = reason
        teardown = getattr(self.sweep.workload, "teardown", None)
        if teardown is not None:
            try:
                teardown(state)
            except Exception:  # noqa: BLE001
                pass

    def _close_failed(self, message: str, e: BaseException) -> None:
        todo = self.pending()[: max(1, self.sweep.policy.minimum - len(self.times))]
        self.attempted.update(todo)
        self.fail(todo, "error", message)
        self.closed = True
        self._maybe_raise(e)

    # -- timed runs ----------------------------------------------------------------------

    def step(self, round_no: int | None) -> None:
        """Time the next pending repeat (the inputs are set up)."""
        pending = self.pending()
        if not pending or not self.has_inputs:
            return
        r = pending[0]
        self.attempted.add(r)
        extra = {"inputs": "set up" if self.fresh else "kept"}
        if round_no is not None:
            extra["round"] = round_no
        self.fresh = False
        wall = self._timed(r, extra)
        if wall is not None:
            self.times[r] = wall
        elif self.timed_out:
            rest = self.pending()[: max(0, self.sweep.policy.minimum - len(self.times))]
            self.fail(rest, "timeout", "not run: an earlier repeat of this point timed out")
            self.attempted.update(rest)
            self.closed = True

    def record(
        self,
        repeat: int,
        status: str,
        *,
        error: str | None = None,
        wall: float | None = None,
        work: Any = None,
        started: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Trial:
        now = time.time()
        ctx = self.ctx
        trial = Trial(
            run_id=ctx.run_id,
            experiment=self.sweep.experiment,
            workload=self.sweep.workload.name,
            point=self.key,
            params=self.params,
            repeat=repeat,
            workers=ctx.workers,
            threads=ctx.threads,
            backend=self.params.get("backend"),
            status=status,
            error=error,
            wall_s=wall,
            amount=None if work is None else float(work.amount),
            unit=None if work is None else work.unit,
            started_at=started or now,
            ended_at=now,
            metrics={**self.point_metrics, **(extra or {})},
            fingerprint=ctx.fingerprint.key,
        )
        self.trial_ids.append(ctx.store.add_trial(trial))
        self.recorded += 1
        ctx.view.trial(trial)
        return trial

    def fail(self, repeats: list[int], status: str, message: str) -> None:
        for r in repeats:
            self.record(r, status, error=message)

    def _summarise(self) -> None:
        """Store the point's spread and run count on each of its trials of this run."""
        if not self.times or not self.trial_ids:
            return
        s = spread(list(self.times.values()))
        summary = {
            "point_runs": s["n"],
            "point_median_s": s["median"],
            "point_ci_rel": s["ci_rel"],
            "point_iqr_rel": s["iqr_rel"],
        }
        for trial_id in self.trial_ids:
            self.ctx.store.update_metrics(trial_id, summary)
        note = getattr(self.ctx.view, "note", None)
        if callable(note) and (text := unstable_note(self.description, s["ci_rel"], s["n"])):
            note(text)

    timed_out = False

    def _timed(self, repeat: int, extra: dict[str, Any]) -> float | None:
        """One timed run between barriers; its wall time, or None if it failed."""
        lab, settler, state = self.ctx.lab, self.ctx.settler, self.state
        lab.barrier()
        started = time.time()
        label = f"{self.ctx.run_id}-{len(settler.pending) + settler.count}"
        watch = WorkerWatch(lab.client)
        with settler.watch(label, self.description) as watched:
            try:
                work, wall = call_timed(self.sweep.workload.run, state, self._limit(), lab, watch)
            except TrialTimeout as e:
                self.timed_out = True
                watched.trial = self.record(repeat, "timeout", error=str(e), started=started, extra=extra)
                return None
            except WorkerLost:  # seen while the run went on: its tasks are cancelled
                return self._degraded(watch, repeat, started, extra, watched)
            except Exception as e:  # noqa: BLE001 - recorded as the trial's error
                lost, now, restarts = watch.check()
                if lost and not restarts:  # the run failed because a worker left: degraded, run again
                    return self._degraded(watch, repeat, started, extra, watched)
                error = failure_reason(describe_error(e), restarts)
                watched.trial = self.record(repeat, "error", error=error, started=started, extra=extra)
                if lost:
                    self._recover(repeat)
                self._maybe_raise(e)
                return None
            lab.barrier()
            if watch.lost_now():
                return self._degraded(watch, repeat, started, extra, watched, wall=wall, work=work)
            if not isinstance(work, workloads.Work):
                watched.trial = self.record(
                    repeat,
                    "error",
                    error=f"run() returned {type(work).__name__}, not Work(amount, unit)",
                    started=started,
                    extra=extra,
                )
                return None
            watched.trial = self.record(
                repeat, "ok", wall=wall, work=work, started=started, extra={**extra, **self._run_metrics()}
            )
        return wall

    def _limit(self) -> float:
        """This run's time limit: the Sweep's ``timeout_s``, else :func:`.faults.default_limit` of
        the point's own times (its timed runs and its first warm-up)."""
        if self.sweep.timeout_s is not None:
            return self.sweep.timeout_s
        first = (self.point_metrics or {}).get("warmup_first_s")
        return default_limit([*self.times.values(), *([first] if first else [])])

    def _degraded(
        self, watch: WorkerWatch, repeat: int, started: float, extra: dict, watched: Any, **done: Any
    ) -> None:
        """Record a run during which a worker left as degraded, and bring the cluster back."""
        lost, now, restarts = watch.check()
        reason = degraded_reason(lost, self.ctx.workers, now, restarts)
        metrics = {**extra, **self._run_metrics(), "workers_end": now, "workers_lost": len(lost)}
        watched.trial = self.record(repeat, DEGRADED, error=reason, started=started, extra=metrics, **done)
        self._recover(repeat)

    def _recover(self, repeat: int) -> None:
        """After a worker was lost: the cluster back to its worker count, every point's inputs
        set up again (some of them were on the lost worker), and this repeat run once more."""
        ctx = self.ctx
        why = restore_workers(ctx.lab, ctx.workers)
        ctx.inputs_lost = "a worker was lost: inputs set up again" + (f"; {why}" if why else "")
        if repeat not in self.retried:
            self.retried.add(repeat)
            self.attempted.discard(repeat)

    def _run_metrics(self) -> dict[str, Any]:
        """What the workload says about its last run (``metrics(state)``: latency percentiles,
        bytes on disk, spilled bytes ...), stored with the trial; {} when it says nothing."""
        metrics = getattr(self.sweep.workload, "metrics", None)
        if metrics is None:
            return {}
        try:
            return dict(metrics(self.state))
        except Exception:  # noqa: BLE001 - a failing metrics() must not lose the trial
            return {}

    def _maybe_raise(self, e: BaseException) -> None:
        if self.sweep.raise_on_error:
            raise e


def _duration(fn: Callable[[Any], Any], state: Any) -> float:
    t0 = time.perf_counter()
    fn(state)
    return time.perf_counter() - t0


def describe_error(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"
