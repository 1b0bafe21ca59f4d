"""Inputs kept between the visits of a sweep: which points' setup states stay, and when a
point is set up again.

A point's inputs (what its ``setup`` persisted) stay on the workers from one visit to the
next while two things hold:

- the lab has not been rescaled since the setup: scaling moves or drops persisted data and
  changes where it lives, so every kept input is torn down before the lab scales (which
  also spares the scale-down from moving that data), and each point is set up again, with
  its warm-ups, at its next visit. The rescale waits (``Lab.scale``, at most 10 s) until
  the retired worker processes have exited and the new workers are idle, so no trial is
  timed beside them; where that bound was hit, ``inputs_reason`` and a note say so;
- the inputs kept for other points fit in ``share`` of the cluster's memory limit (Dask
  starts spilling at 60% of it: a quarter leaves the point being timed the room it would
  have alone). Before a visit, the least recently used other inputs are torn down until
  the rest fit; with ``share=0``, or where the workers report no memory limit, none are
  kept.

Setups and teardowns are never timed. Each trial says which happened (its ``inputs``
metric: ``"set up"`` for the first run after a setup and its warm-ups, ``"kept"`` after),
how many bytes the inputs hold on the workers (``inputs_bytes``: the keys that came into
the workers' memory during the setup and its warm-ups, as the scheduler counts them;
``None`` where not measured) and why they were set up (``inputs_reason``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .trial import PointRunner, RunContext

RESCALED = "the lab was rescaled since the last setup"


class Inputs:
    """The points whose inputs are set up now, least recently visited first."""

    def __init__(self, ctx: RunContext, share: float) -> None:
        self.ctx, self.share = ctx, share
        self.kept: list[PointRunner] = []

    def visit(self, runner: PointRunner) -> None:
        """Make the lab and the inputs ready for one timed run of ``runner``."""
        ctx = self.ctx
        lost = getattr(ctx, "inputs_lost", "")
        if lost:  # a worker was lost: what it held of any point's inputs is gone
            ctx.inputs_lost = ""
            self.release_all(lost)
            ctx.refresh()
        if runner.workers is not None and runner.workers != ctx.workers:
            self.release_all(RESCALED)
            with ctx.settler.scaling():  # waits for retired workers to exit and new ones to be idle
                unsettled = ctx.lab.scale(runner.workers)
            ctx.refresh()
            if isinstance(unsettled, str):  # the wait's bound was hit: the next trials say so
                runner.next_reason = f"{RESCALED}; {unsettled}"
                note = getattr(ctx.view, "note", None)
                if callable(note):
                    note(unsettled)
        self._make_room(runner)
        if runner.has_inputs:
            self.kept.remove(runner)
            self.kept.append(runner)
            return
        runner.set_up()
        if runner.has_inputs:
            self.kept.append(runner)

    def _make_room(self, runner: PointRunner) -> None:
        others = [r for r in self.kept if r is not runner]
        if not others:
            return
        limit = self.ctx.memory_limit
        if self.share == 0:
            reason = "keep_inputs=0"
        elif limit is None:
            reason = "the workers report no memory limit, so no inputs are kept beside another point's"
        else:
            reason = f"the inputs kept for other points went over {self.share * 100:.2g}% of the cluster's memory limit"
        while others and (limit is None or self.share == 0 or _held(others) > self.share * limit):
            self.drop(others.pop(0), reason)

    def drop(self, runner: PointRunner, reason: str | None = None) -> None:
        """Tear down ``runner``'s inputs (a finished point, or room for another)."""
        if runner in self.kept:
            self.kept.remove(runner)
        runner.release(reason)

    def release_all(self, reason: str | None = None) -> None:
        for r in list(self.kept):
            self.drop(r, reason)


def _held(runners: list[PointRunner]) -> float:
    """Bytes the runners' inputs hold; one not measured counts as too much to keep."""
    sizes = [r.inputs_bytes for r in runners]
    return float("inf") if None in sizes else float(sum(s for s in sizes if s is not None))
