"""Sweep: a grid of points × repeats, one durable Trial per timed run.

>>> sweep = Sweep("array-sum", grid={"workers": [1, 2], "size_mb": [16.0, 64.0]},
...               repeats=3, store="results/demo.db")        # doctest: +SKIP
>>> results = sweep.run(lab)                                  # doctest: +SKIP
>>> results.frame[["workers", "size_mb", "throughput"]]      # doctest: +SKIP

Timed runs go in rounds over the grid, each round in a seeded shuffled order (see
:mod:`.order`): before a run the lab is scaled to the point's ``workers`` if needed, the
point is set up (untimed, with its ``warmup`` runs) unless its inputs were kept from its
last visit (see :mod:`.inputs`), then one timed run between two barriers is appended to
the store the moment it ends. A failing or timed-out run is recorded and the sweep goes
on; re-running with the same store and experiment skips the (point, repeat) pairs already
measured under the same fingerprint (machine, versions, cluster shape, workload code; see
:mod:`.provenance`) and says what it reused and what it set aside.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from labkit import workloads
from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.store import ResultStore, check_store_path, default_path

from .grid import as_values, check_backends, check_params, check_workers, explicit_points
from .inputs import Inputs
from .lifecycle import RecordedRun, check_lab
from .order import Visits, check_order
from .provenance import ReusePlan, check_reuse
from .settle import Settler
from .timing import Budget, BudgetReport, Repeats, Warmup, check_seconds
from .trial import PointRunner, RunContext

if TYPE_CHECKING:
    from labkit.cluster import Lab

    from .results import Results


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
    order : "rounds" or "sequential", default "rounds"
        ``"rounds"``: each round times every point that needs a run once, in an order
        shuffled with ``seed``, so drift of the machine spreads over all points. The worker
        count changes as that order requires (a rescale of a local cluster takes ~0.5 s on an
        idle machine, seconds where worker processes start on a busy one, and the points'
        inputs are set up again after it, with their warm-ups, untimed): that is the price
        of an order that cannot fake a trend. ``"sequential"``: each point's repeats back to back,
        workers outermost (fewest rescales; drift lands on the last points).
    seed : int, default 0
        Seed of the rounds' shuffles: the same seed and grid give the same order.
    reuse : "same", "any" or "none", default "same"
        Which stored trials a re-run reuses: ``"same"``, only those measured under this
        run's fingerprint (machine, versions, cluster shape, workload code); ``"any"``, all
        of them, as older labkit did; ``"none"``, none: every trial is measured again under
        a new run (the stored ones stay in the store). The default is the environment's
        ``LABKIT_REUSE`` where set (``labkit run --fresh`` sets "none"), else "same". The
        sweep's first line says what it reuses; the results say what was reused and why
        other stored trials were not.
    budget_s : float, optional
        Seconds the sweep may take, shared by the adaptive repeats of all points: once
        spent, no point gets runs beyond its policy's minimum, the round under way
        finishes, and the results name the points that stopped short of ``ci_target``.
    keep_inputs : float, default 0.25
        Share of the cluster's memory limit that points' inputs may hold while other points
        run (see :mod:`labkit.experiment.inputs`); 0 sets every point up again at each visit.
    trace : bool, default False
        Record each timed run's tasks (worker, thread, compute and transfers, result sizes,
        dependencies; :mod:`labkit.measure.trace`) and store them with its trial.

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
        order: str = "rounds",
        seed: int = 0,
        reuse: str | None = None,
        budget_s: float | None = None,
        keep_inputs: float = 0.25,
        trace: bool = False,
    ) -> None:
        self.workload = workloads.get(workload) if isinstance(workload, str) else workload
        if not isinstance(self.workload, workloads.Workload):
            raise ParameterTypeError(
                "workload", workload, "a workload name or an object with name, defaults, setup and run"
            )
        self._explicit = explicit_points(grid)
        if self._explicit is not None:  # a list of points: their values, per key, for the checks
            grid = {k: [p[k] for p in self._explicit] for k in self._explicit[0]}  # every value is checked
        if not isinstance(grid, dict):
            raise ParameterTypeError("grid", grid, "dict of parameter name -> list of values, or a list of such points")
        if not grid:
            raise ParameterError("grid", grid, f"at least one of: workers, {', '.join(sorted(self.workload.defaults))}")
        self.grid = {k: as_values(k, v) for k, v in grid.items()}
        if "workers" in self.grid:
            check_workers(self.grid["workers"])
        self._check_params(params)
        self.policy = Repeats.parse(repeats, target=ci_target, maximum=max_repeats)
        self.warmup_policy = Warmup.parse(warmup)
        check_seconds("timeout_s", timeout_s)
        check_seconds("budget_s", budget_s)
        check_order(order, seed)
        reuse = check_reuse(reuse)
        if isinstance(keep_inputs, bool) or not isinstance(keep_inputs, (int, float)) or not 0 <= keep_inputs < 1:
            raise ParameterError("keep_inputs", keep_inputs, "a share of the memory limit, >= 0 and < 1")
        self.order, self.seed, self.reuse = order, seed, reuse
        if not isinstance(trace, bool):
            raise ParameterError("trace", trace, "True or False")
        self.budget_s, self.keep_inputs, self.trace = budget_s, float(keep_inputs), trace
        if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
            raise ParameterError("experiment", experiment, "a non-empty name")
        check_backends(self.workload, self.grid, self.params)
        self.repeats, self.warmup, self.timeout_s = repeats, warmup, timeout_s
        self.raise_on_error = raise_on_error
        self.experiment = experiment or self.workload.name
        as_path = not isinstance(store, ResultStore)
        self._store_arg: Any = check_store_path(default_path() if store is None else store) if as_path else store

    def _check_params(self, params: dict[str, Any] | None) -> None:
        """The fixed parameters and every grid value, by the workload's own checks, one by one and together."""
        self.params = check_params(self.workload, self.grid, params)
        together = getattr(self.workload, "check_params", None)
        if callable(together):
            for point in self.points():
                together(self._resolve(point, point.get("workers", 0))[0])

    def point_complete(self, times: dict[int, float]) -> bool:
        """Whether a point's timed runs so far satisfy the repeats policy."""
        if self.policy.adaptive:
            return self.policy.enough(list(times.values()))
        return all(r in times for r in range(self.policy.minimum))

    # -- the grid ------------------------------------------------------------------------

    def describe_point(self, point: dict[str, Any]) -> str:
        """A grid point for people: the workload and the point's parameters."""
        return ", ".join([self.workload.name, *(f"{k}={v}" for k, v in point.items())])

    def points(self) -> list[dict[str, Any]]:
        """Every grid point, workers outermost: the sequential order, which rounds shuffle."""
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
        reps = (
            f"{self.policy.minimum}"
            if not self.policy.adaptive
            else f"auto (±{self.policy.target:.0%}, ≤{self.policy.maximum})"
        )
        return (
            f"<Sweep {self.workload.name!r} experiment={self.experiment!r} {len(self.points())} points × {reps} repeats"
            f", order={self.order!r}>"
        )

    # -- running -------------------------------------------------------------------------

    def run(self, lab: Lab, *, live: bool = True, monitor: bool = True, interval: float = 0.5) -> Results:
        """Run every (point, repeat) not already in the store; return the experiment's results.

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

        The run is stored with a status: ``running`` while it works, then ``finished``,
        ``failed`` (an exception left the sweep) or ``interrupted`` (KeyboardInterrupt; a
        killed process is marked so by the next open of the store). Its start and end go
        through :class:`~labkit.experiment.lifecycle.RecordedRun`.
        """
        self._check_lab(lab, monitor, interval)
        recorded = RecordedRun(self._store_arg, self.experiment, self.workload, lab)
        running = self._prepare(recorded, lab, live=live, monitor=monitor, interval=interval)
        status = "interrupted"  # unless the sweep ends or raises an Exception
        try:
            self._visit(running)
            status = "finished"
        except Exception:
            status = "failed"
            raise
        finally:
            results = self._finish(recorded, running, status)
        return results

    def _check_lab(self, lab: Lab, monitor: bool, interval: float) -> None:
        """An open Lab that can take the grid's worker counts; a valid monitor interval."""
        check_lab(lab, set(self.grid.get("workers", [])), name="grid['workers']")
        if monitor and (isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0):
            raise ParameterError("interval", interval, "a number of seconds > 0")

    def _config(self, fingerprint: str, keys: list[str], reused: int) -> dict[str, Any]:
        """What the run is stored with: the sweep's settings, its points and its reuse."""
        names = ("grid", "params", "timeout_s", "order", "seed", "reuse", "budget_s", "keep_inputs")
        config = {"repeats": asdict(self.policy), "warmup": asdict(self.warmup_policy)}
        config |= {name: getattr(self, name) for name in names}
        # the points: what a report needs to say which stored trials this run reused
        return {**config, "fingerprint": fingerprint, "points": keys, "reused_trials": reused}

    def _prepare(self, recorded: RecordedRun, lab: Lab, *, live: bool, monitor: bool, interval: float) -> _Running:
        """Open the store, plan the reuse, start the run, the monitor and the view (a failure
        here leaves no store open and no run ``running``)."""
        from labkit.live import make_view
        from labkit.measure.monitor import Monitor

        mon, view = None, None
        store = recorded.open()
        try:
            settler = Settler(store, "", lab)
            settler.trace = self.trace
            ctx = RunContext(lab, store, None, settler, recorded.fingerprinter)
            planned = [(p, *self._resolve(p, p.get("workers", ctx.workers))) for p in self.points()]
            keys = [key for _, _, key in planned]
            plan = recorded.reuse(keys, self.reuse)
            run_id = recorded.start(self._config(ctx.fingerprint.key, keys, plan.count))
            ctx.run_id = settler.run_id = run_id
            if monitor:
                mon = Monitor(lab, interval, sink=store.add_samples, on_alert=settler.on_alert, run_id=run_id)
            title = self.experiment
            if self.experiment != self.workload.name:
                title = f"{self.experiment} ({self.workload.name})"
            samples = mon.to_pandas if mon else None
            view = make_view(
                live, total=len(self), title=title, lab=lab, samples=samples, final_figure=lambda r, _s: r.plot()
            )
            settler.monitor, settler.view, ctx.view = mon, view, view
            _note(view, plan.first_line(len(self)))
            if mon is not None:
                mon.start()
            return _Running(
                ctx, settler, mon, view, planned, keys, plan, Budget(self.budget_s), Inputs(ctx, self.keep_inputs)
            )
        except BaseException:
            recorded.finish("failed", (mon.close if mon else None, (lambda: view.close(None)) if view else None))
            raise

    def _visit(self, running: _Running) -> None:
        """Every point's runner, then the visits: rounds or sequential, until done or the budget is spent."""
        ctx, inputs, budget, plan = running.ctx, running.inputs, running.budget, running.plan
        running.runners = [
            PointRunner(self, ctx, params, key, p.get("workers"), plan.done.get(key, {}), self.describe_point(p))
            for p, params, key in running.planned
        ]
        for r in running.runners:
            r.start()

        def done(r: PointRunner, spent: bool) -> None:
            inputs.drop(r)
            r.finish(spent)

        told = False
        order = (self.order, self.seed, running.runners, PointRunner.wants_more, done, budget.spent)
        for round_no, runner in Visits(*order, block=lambda r: r.workers):
            inputs.visit(runner)
            running.settler.settle(wait=False)  # what has settled of earlier runs: no waiting
            runner.step(round_no)
            if not told and budget.spent():
                told = True
                _note(
                    running.view, f"time budget of {self.budget_s:g} s spent: no more runs beyond each point's minimum."
                )
        inputs.release_all()
        running.settler.settle()

    def _finish(self, recorded: RecordedRun, running: _Running, status: str) -> Results | None:
        """Release the inputs, stop the monitor, record the status, read the results, close
        the view and the store, each on its own (see ``RecordedRun.finish``); a failure is
        raised here only when the sweep itself finished."""
        results = None

        def read() -> None:
            nonlocal results
            results = self._results(recorded.store, running, recorded.run_id)

        mon = running.mon
        cleanup = (running.inputs.release_all, mon.close if mon is not None else None)
        failures = recorded.finish(status, cleanup, then=(read, lambda: running.view.close(results)))
        if failures and status == "finished":
            raise failures[0]
        return results

    def _results(self, store: ResultStore, running: _Running, run_id: str) -> Results:
        from .results import Results

        ctx, budget = running.ctx, running.budget
        frame = store.trials_frame(self.experiment)
        if self.reuse == "same":
            frame = frame[frame["run_id"].eq(run_id) | frame["fingerprint"].eq(ctx.first.key)]
        elif self.reuse == "none":
            frame = frame[frame["run_id"].eq(run_id)]
        runs = store.runs_frame()
        report = BudgetReport(
            seconds=budget.seconds,
            spent_after=budget.spent_after,
            elapsed=budget.elapsed(),
            cut=[r.key for r in running.runners if r.cut],
            target=self.policy.target,
        )
        return Results(
            frame,
            experiment=self.experiment,
            run_id=run_id,
            points=running.keys,
            store_path=str(store.path),
            fingerprint=ctx.first.key,
            run_starts=dict(zip(runs["run_id"], runs["started_at"])),
            set_aside=running.plan.set_aside,
            budget=report,
        )


@dataclass
class _Running:
    """What a sweep holds while it runs: its context, settler, monitor and view, its points
    (with their reuse plan), its time budget, the inputs kept between visits, its runners."""

    ctx: RunContext
    settler: Settler
    mon: Any
    view: Any
    planned: list[tuple[dict[str, Any], dict[str, Any], str]]
    keys: list[str]
    plan: ReusePlan
    budget: Budget
    inputs: Inputs
    runners: list[PointRunner] = field(default_factory=list)


def _note(view: Any, text: str) -> None:
    """A sentence for the view to show, where it can (``view.note``)."""
    note = getattr(view, "note", None)
    if text and callable(note):
        note(text)
