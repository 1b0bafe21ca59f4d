"""Running one grid point: setup, warm-up, timed repeats between barriers, teardown, timeouts.

Every timed run becomes a :class:`~labkit.store.Trial` appended to the store the moment it
ends, whatever its status.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from labkit import workloads
from labkit.common.errors import TrialTimeout
from labkit.store import ResultStore, Trial

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


class PointRunner:
    """The trials of one grid point: setup, warm-up, timed repeats, teardown."""

    def __init__(
        self,
        sweep: SweepPlan,
        lab: Lab,
        store: ResultStore,
        run_id: str,
        params: dict[str, Any],
        key: str,
        view: Any,
        settler: Settler,
    ) -> None:
        self.sweep, self.lab, self.store, self.view, self.settler = sweep, lab, store, view, settler
        self.run_id, self.params, self.key = run_id, params, key
        self.workers, self.threads = lab.workers, lab.threads
        self.trial_ids: list[int] = []
        self.point_metrics: dict[str, Any] = {}

    def record(
        self,
        repeat: int,
        status: str,
        *,
        error: str | None = None,
        wall: float | None = None,
        work: Any = None,
        started: float | None = None,
    ) -> Trial:
        now = time.time()
        trial = Trial(
            run_id=self.run_id,
            experiment=self.sweep.experiment,
            workload=self.sweep.workload.name,
            point=self.key,
            params=self.params,
            repeat=repeat,
            workers=self.workers,
            threads=self.threads,
            backend=self.params.get("backend"),
            status=status,
            error=error,
            wall_s=wall,
            amount=None if work is None else float(work.amount),
            unit=None if work is None else work.unit,
            started_at=started or now,
            ended_at=now,
            metrics=dict(self.point_metrics),
        )
        self.trial_ids.append(self.store.add_trial(trial))
        self.view.trial(trial)
        return trial

    def fail(self, repeats: list[int], status: str, message: str) -> None:
        for r in repeats:
            self.record(r, status, error=message)

    def _pending(self, times: dict[int, float], attempted: set[int]) -> list[int]:
        """Repeat indices still to run for a fixed count (all missing ones)."""
        return [r for r in range(self.sweep.policy.maximum) if r not in times and r not in attempted]

    def run(self, times: dict[int, float]) -> int:
        """Time the point until its policy is satisfied; return the runs attempted."""
        wl, policy = self.sweep.workload, self.sweep.policy
        try:
            state = wl.setup(self.lab, **self.params)
        except Exception as e:  # noqa: BLE001 - recorded as the point's error
            todo = self._pending(times, set())[: max(1, policy.minimum - len(times))]
            self.fail(todo, "error", f"setup failed: {describe_error(e)}")
            self._maybe_raise(e)
            return len(todo)
        attempted: set[int] = set()
        self.settler.settle(wait=False)  # what has settled of earlier points: no waiting
        try:
            if not self._warm_up(state, times):
                return policy.maximum - len(times)
            while not self.sweep.point_complete(times):
                pending = self._pending(times, attempted)
                if not pending:
                    break
                r = pending[0]
                attempted.add(r)
                wall = self._timed(r, state)
                if wall is None and self.timed_out:
                    rest = self._pending(times, attempted)[: max(0, policy.minimum - len(times))]
                    self.fail(rest, "timeout", "not run: an earlier repeat of this point timed out")
                    attempted.update(rest)
                    break
                if wall is not None:
                    times[r] = wall
        finally:
            self._summarise(times)
            teardown = getattr(wl, "teardown", None)
            if teardown is not None:
                try:
                    teardown(state)
                except Exception:  # noqa: BLE001 - a failed teardown must not lose the sweep
                    pass
        return len(attempted)

    def _summarise(self, times: dict[int, float]) -> None:
        """Store the point's spread and run count on each of its trials."""
        if not times or not self.trial_ids:
            return
        s = spread(list(times.values()))
        summary = {
            "point_runs": s["n"],
            "point_median_s": s["median"],
            "point_ci_rel": s["ci_rel"],
            "point_iqr_rel": s["iqr_rel"],
        }
        for trial_id in self.trial_ids:
            self.store.update_metrics(trial_id, summary)

    def _warm_up(self, state: Any, times: dict[int, float]) -> bool:
        """Untimed runs; False (and the point recorded as failed) when one fails."""

        def once() -> float:
            t0 = time.perf_counter()
            self.sweep.workload.run(state)
            return time.perf_counter() - t0

        try:
            warm = self.sweep.warmup_policy.run(once)
        except Exception as e:  # noqa: BLE001 - recorded; the timed runs would fail alike
            todo = self._pending(times, set())[: max(1, self.sweep.policy.minimum - len(times))]
            self.fail(todo, "error", f"warm-up failed: {describe_error(e)}")
            self._maybe_raise(e)
            return False
        self.point_metrics = {"warmup_runs": len(warm), "warmup_first_s": warm[0] if warm else None}
        return True

    timed_out = False

    def _timed(self, repeat: int, state: Any) -> float | None:
        """One timed run between barriers; its wall time, or None if it failed."""
        self.lab.barrier()
        started = time.time()
        label = f"{self.run_id}-{len(self.settler.pending) + self.settler.count}"
        with self.settler.watch(label) as watched:
            try:
                work, wall = call_timed(self.sweep.workload.run, state, self.sweep.timeout_s, self.lab)
            except TrialTimeout as e:
                self.timed_out = True
                watched.trial = self.record(repeat, "timeout", error=str(e), started=started)
                return None
            except Exception as e:  # noqa: BLE001 - recorded as the trial's error
                watched.trial = self.record(repeat, "error", error=describe_error(e), started=started)
                self._maybe_raise(e)
                return None
            self.lab.barrier()
            if not isinstance(work, workloads.Work):
                watched.trial = self.record(
                    repeat,
                    "error",
                    error=f"run() returned {type(work).__name__}, not Work(amount, unit)",
                    started=started,
                )
                return None
            watched.trial = self.record(repeat, "ok", wall=wall, work=work, started=started)
        return wall

    def _maybe_raise(self, e: BaseException) -> None:
        if self.sweep.raise_on_error:
            raise e


def describe_error(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def call_timed(fn: Callable[[Any], Any], state: Any, timeout_s: float | None, lab: Lab) -> tuple[Any, float]:
    """Run ``fn(state)``, timed with perf_counter; cancel its Dask work past ``timeout_s``."""

    def timed() -> tuple[Any, float]:
        t0 = time.perf_counter()
        out = fn(state)
        return out, time.perf_counter() - t0

    if timeout_s is None:
        return timed()
    client = lab.client
    before = set(client.futures)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="labkit-trial")
    # Dask's span (and other annotations) live in a ContextVar, which a pool thread does
    # not inherit: run the trial in a copy of this context.
    future = pool.submit(contextvars.copy_context().run, timed)
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        from distributed import Future

        # Cancel only what this run submitted: the point's persisted inputs stay.
        started = [Future(k, client) for k in set(client.futures) - before]
        if started:
            client.cancel(started, force=True)
        note = "its tasks were cancelled"
        if not lab.wait_idle(max(10.0, timeout_s)):
            note += "; some still occupy worker threads, so later trials may queue behind them"
        raise TrialTimeout(f"run took longer than timeout_s={timeout_s:g} s; {note}") from None
    finally:
        pool.shutdown(wait=False)
