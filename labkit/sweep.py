"""Sweep: a grid of points × repeats, one durable Trial per timed run.

>>> sweep = Sweep("array-sum", grid={"workers": [1, 2], "size_mb": [16.0, 64.0]},
...               repeats=3, store="results/demo.db")        # doctest: +SKIP
>>> results = sweep.run(lab)                                  # doctest: +SKIP
>>> results.frame[["workers", "size_mb", "throughput"]]      # doctest: +SKIP

Each point: scale the lab if the grid has ``workers``, ``setup`` (untimed), ``warmup``
runs (untimed), then ``repeats`` timed runs, each between two barriers, each appended to
the store the moment it ends. A failing or timed-out run is recorded and the sweep goes
on; re-running with the same store and experiment skips what already finished.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import itertools
import json
import time
import traceback
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable

from . import workloads
from .errors import ClusterError, ParameterError, ParameterTypeError, TrialTimeout
from .store import ResultStore, Trial, check_store_path, default_path
from .timing import Repeats, Warmup, spread
from .watch import Settler

if TYPE_CHECKING:

    from .cluster import Lab
    from .results import Results


def _as_values(key: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return [values]
    values = list(values)
    if not values:
        raise ParameterError(f"grid[{key!r}]", values, "a non-empty list of values")
    return values


def _explicit_points(grid: Any) -> list[dict[str, Any]] | None:
    """A grid given as a list of points, checked to share their keys; None for a dict grid."""
    if not isinstance(grid, (list, tuple)):
        return None
    if not grid or not all(isinstance(p, dict) and p for p in grid):
        raise ParameterError("grid", grid, "a non-empty list of non-empty dicts (one per point), or a dict of lists")
    keys = set(grid[0])
    for p in grid:
        if set(p) != keys:
            raise ParameterError("grid", p, f"points with the same keys as the first: {sorted(keys)}")
    return [dict(p) for p in grid]


def _check_workers(values: list[Any]) -> None:
    for w in values:
        if isinstance(w, bool) or not isinstance(w, int):
            raise ParameterTypeError("grid['workers']", w, "int")
        if w < 1:
            raise ParameterError("grid['workers']", w, "integers >= 1")


def _check_count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterTypeError(name, value, "int")
    if value < low:
        raise ParameterError(name, value, f"an integer >= {low}")


class Sweep:
    """A scaling experiment: a workload run at every point of a parameter grid.

    Parameters
    ----------
    workload : str or workload object
        A registered name (see ``labkit.workloads.names()``) or an object with ``name``,
        ``defaults``, ``setup`` and ``run``.
    grid : dict or list of dict
        Parameter name -> list of values, run as their product. ``workers`` scales the
        lab; every other key must be a parameter of the workload. A scalar is a one-value
        list. A list of dicts (all with the same keys) runs exactly those points, e.g. the
        diagonal of a weak-scaling sweep (see :func:`labkit.analysis.weak_grid`).
    params : dict, optional
        Fixed workload parameters applied at every point (overriding the defaults).
    repeats : int or "auto", default 3
        Timed runs per point; ``"auto"`` keeps timing until the 95% interval of the
        median is within ``ci_target`` of it, or ``max_repeats`` runs.
    warmup : int or "auto", default 1
        Untimed runs per point before the timed ones; ``"auto"`` runs them until two in
        a row agree within 10% (at most 5), which catches first-run effects (imports,
        compilation, CUDA context, caches) that one warm-up may not absorb.
    experiment : str, optional
        Name under which trials are stored and resumed (default: the workload's name).
    store : str, Path or ResultStore, optional
        Where trials go (default ``results/labkit.db`` or ``$LABKIT_STORE``).
    timeout_s : float, optional
        Longest a timed run may take; a longer one is cancelled and recorded as ``timeout``.
    raise_on_error : bool, default False
        Re-raise a trial's exception (after recording it) instead of going on.
    ci_target : float, default 0.03
        With ``repeats="auto"``: the relative half-width of the median's interval to reach.
    max_repeats : int, default 30
        With ``repeats="auto"``: the most timed runs per point.

    All arguments are checked here, before any cluster work.
    """

    def __init__(
        self,
        workload: str | Any,
        grid: dict[str, Any],
        *,
        params: dict[str, Any] | None = None,
        repeats: int = 3,
        warmup: int = 1,
        experiment: str | None = None,
        store: str | Any | None = None,
        timeout_s: float | None = None,
        raise_on_error: bool = False,
        ci_target: float = 0.03,
        max_repeats: int = 30,
    ) -> None:
        self.workload = workloads.get(workload) if isinstance(workload, str) else workload
        if not isinstance(self.workload, workloads.Workload):
            raise ParameterTypeError("workload", workload, "a workload name or an object with name, defaults, setup and run")
        self._explicit = _explicit_points(grid)
        if self._explicit is not None:  # a list of points: their values, per key, for the checks
            grid = {k: list(dict.fromkeys(p[k] for p in self._explicit)) for k in self._explicit[0]}
        if not isinstance(grid, dict):
            raise ParameterTypeError("grid", grid, "dict of parameter name -> list of values, or a list of such points")
        if not grid:
            raise ParameterError("grid", grid, f"at least one of: workers, {', '.join(sorted(self.workload.defaults))}")
        self.grid = {k: _as_values(k, v) for k, v in grid.items()}
        if "workers" in self.grid:
            _check_workers(self.grid["workers"])
        self.params = dict(params or {})
        if "workers" in self.params:
            raise ParameterError("params['workers']", self.params["workers"], "not set here: put workers in the grid")
        workloads.resolve_params(self.workload, self.params)
        for key, values in self.grid.items():
            if key != "workers":
                for v in values:
                    workloads.check_value(self.workload, key, v)
        self.policy = Repeats.parse(repeats, target=ci_target, maximum=max_repeats)
        self.warmup_policy = Warmup.parse(warmup)
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0):
            raise ParameterError("timeout_s", timeout_s, "None or a number of seconds > 0")
        if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
            raise ParameterError("experiment", experiment, "a non-empty name")
        self._check_backends()
        self.repeats, self.warmup, self.timeout_s = repeats, warmup, timeout_s
        self.raise_on_error = raise_on_error
        self.experiment = experiment or self.workload.name
        if isinstance(store, ResultStore):
            self._store_arg: Any = store
        else:
            self._store_arg = check_store_path(default_path() if store is None else store)

    def _complete(self, times: dict[int, float]) -> bool:
        """Whether a point's timed runs so far satisfy the repeats policy."""
        if self.policy.adaptive:
            return self.policy.enough(list(times.values()))
        return all(r in times for r in range(self.policy.minimum))

    def _check_backends(self) -> None:
        from .backends import check_backend

        if "backend" not in self.workload.defaults:
            return
        for b in self.grid.get("backend", [self.params.get("backend", self.workload.defaults["backend"])]):
            check_backend(b, parameter=f"{self.workload.name}.backend")

    # -- the grid ------------------------------------------------------------------------

    def points(self) -> list[dict[str, Any]]:
        """Every grid point, workers outermost so the lab is rescaled as little as possible."""
        if self._explicit is not None:
            return sorted(self._explicit, key=lambda p: p.get("workers", 0))  # stable: order kept within
        keys = sorted(self.grid, key=lambda k: k != "workers")
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def _resolve(self, point: dict[str, Any], workers: int) -> tuple[dict[str, Any], str]:
        params = {**self.workload.defaults, **self.params, **{k: v for k, v in point.items() if k != "workers"}}
        key = json.dumps({"workload": self.workload.name, "workers": workers, **params}, sort_keys=True, default=str)
        return params, key

    def __len__(self) -> int:
        """Timed runs at most (exact for a fixed ``repeats``)."""
        return len(self.points()) * self.policy.maximum

    def __repr__(self) -> str:
        reps = f"{self.policy.minimum}" if not self.policy.adaptive else f"auto (±{self.policy.target:.0%}, ≤{self.policy.maximum})"
        return f"<Sweep {self.workload.name!r} experiment={self.experiment!r} {len(self.points())} points × {reps} repeats>"

    # -- running -------------------------------------------------------------------------

    def run(self, lab: Lab, *, live: bool = True, monitor: bool = True, interval: float = 0.5) -> Results:
        """Run every point not already in the store; return the experiment's results.

        Parameters
        ----------
        lab : Lab
        live : bool, default True
            Show the live view (Jupyter) or a progress line (terminal).
        monitor : bool, default True
            Sample worker resources every ``interval`` seconds, record each trial's
            resource summary, time split and alerts.
        interval : float, default 0.5
            The monitor's sampling interval (Dask workers report every 0.5 s).
        """
        from .env import capture
        from .live import make_view
        from .monitor import Monitor
        from .results import Results

        if getattr(lab, "closed", False):
            raise ParameterError("lab", lab, "an open Lab")
        wanted = set(self.grid.get("workers", []))
        if wanted and lab.cluster is None and wanted != {lab.workers}:
            raise ClusterError(
                f"grid['workers']={sorted(wanted)} needs a Lab that can scale, but this Lab is "
                f"connected by address with {lab.workers} workers; drop workers from the grid "
                "or use Lab(cluster=...)"
            )
        if monitor and (isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0):
            raise ParameterError("interval", interval, "a number of seconds > 0")
        own_store = not isinstance(self._store_arg, ResultStore)
        store = ResultStore(self._store_arg) if own_store else self._store_arg
        config = {"grid": self.grid, "params": self.params, "repeats": asdict(self.policy), "warmup": asdict(self.warmup_policy), "timeout_s": self.timeout_s}
        run_id = store.start_run(self.experiment, self.workload.name, env=capture(lab), config=config)
        title = self.experiment if self.experiment == self.workload.name else f"{self.experiment} ({self.workload.name})"
        settler = Settler(store, run_id, lab)
        mon = Monitor(lab, interval, sink=store.add_samples, on_alert=settler.on_alert, run_id=run_id) if monitor else None
        view = make_view(live, total=len(self), title=title, lab=lab, samples=mon.to_pandas if mon else None, final_figure=lambda r, _samples: r.plot())
        settler.monitor, settler.view = mon, view
        if mon is not None:
            mon.start()
        keys: list[str] = []
        try:
            done = store.finished(self.experiment)
            for point in self.points():
                params, key = self._resolve(point, point.get("workers", lab.workers))
                keys.append(key)
                times = done.get(key, {})
                if self._complete(times):
                    view.skip(self.policy.maximum)
                    continue
                view.skip(len(times))
                if "workers" in point:
                    with settler.scaling():
                        lab.scale(point["workers"])
                used = _TrialContext(self, lab, store, run_id, params, key, view, settler).run(dict(times))
                view.skip(self.policy.maximum - len(times) - used)
            settler.settle()
        finally:
            if mon is not None:
                mon.close()
            store.end_run(run_id)
            results = Results(store.trials_frame(self.experiment), experiment=self.experiment, run_id=run_id, points=keys, store_path=str(store.path))
            view.close(results)
            if own_store:
                store.close()
        return results


class _TrialContext:
    """The trials of one grid point: setup, warm-up, timed repeats, teardown."""

    def __init__(self, sweep: Sweep, lab: Lab, store: ResultStore, run_id: str, params: dict[str, Any], key: str, view: Any, settler: Settler) -> None:
        self.sweep, self.lab, self.store, self.view, self.settler = sweep, lab, store, view, settler
        self.run_id, self.params, self.key = run_id, params, key
        self.workers, self.threads = lab.workers, lab.threads
        self.trial_ids: list[int] = []
        self.point_metrics: dict[str, Any] = {}

    def record(self, repeat: int, status: str, *, error: str | None = None, wall: float | None = None, work: Any = None, started: float | None = None) -> Trial:
        now = time.time()
        trial = Trial(
            run_id=self.run_id, experiment=self.sweep.experiment, workload=self.sweep.workload.name,
            point=self.key, params=self.params, repeat=repeat, workers=self.workers, threads=self.threads,
            backend=self.params.get("backend"), status=status, error=error, wall_s=wall,
            amount=None if work is None else float(work.amount), unit=None if work is None else work.unit,
            started_at=started or now, ended_at=now, metrics=dict(self.point_metrics),
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
        except Exception as e:
            todo = self._pending(times, set())[: max(1, policy.minimum - len(times))]
            self.fail(todo, "error", f"setup failed: {_describe(e)}")
            self._maybe_raise(e)
            return len(todo)
        attempted: set[int] = set()
        self.settler.settle(wait=False)  # what has settled of earlier points: no waiting
        try:
            if not self._warm_up(state, times):
                return policy.maximum - len(times)
            while not self.sweep._complete(times):
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
        summary = {"point_runs": s["n"], "point_median_s": s["median"], "point_ci_rel": s["ci_rel"], "point_iqr_rel": s["iqr_rel"]}
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
        except Exception as e:  # the timed runs would fail alike
            todo = self._pending(times, set())[: max(1, self.sweep.policy.minimum - len(times))]
            self.fail(todo, "error", f"warm-up failed: {_describe(e)}")
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
                work, wall = _call_timed(self.sweep.workload.run, state, self.sweep.timeout_s, self.lab)
            except TrialTimeout as e:
                self.timed_out = True
                watched.trial = self.record(repeat, "timeout", error=str(e), started=started)
                return None
            except Exception as e:
                watched.trial = self.record(repeat, "error", error=_describe(e), started=started)
                self._maybe_raise(e)
                return None
            self.lab.barrier()
            if not isinstance(work, workloads.Work):
                watched.trial = self.record(repeat, "error", error=f"run() returned {type(work).__name__}, not Work(amount, unit)", started=started)
                return None
            watched.trial = self.record(repeat, "ok", wall=wall, work=work, started=started)
        return wall

    def _maybe_raise(self, e: BaseException) -> None:
        if self.sweep.raise_on_error:
            raise e


def _describe(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _call_timed(fn: Callable[[Any], Any], state: Any, timeout_s: float | None, lab: Lab) -> tuple[Any, float]:
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
