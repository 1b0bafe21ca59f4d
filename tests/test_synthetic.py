"""The synthetic calibration workload on a real cluster: sweep → store → fit → known answer.

Its tasks sleep, so 8 worker processes on a 2-core machine still scale as configured. A run
on this machine carries ~5–15 ms of scheduling on top of the sleeps; with ``work_s = 1``
that reads as ~0.01 more serial fraction. The fits are checked by whether their intervals
cover the configured values, not by where their point estimates land.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import labkit
from labkit import ParameterError, analysis
from labkit.analysis.trust import admit
from labkit.workloads.synthetic import expected_time

SIGMA, KAPPA, WORK_S = 0.1, 0.005, 1.0
SCHEDULING_SIGMA, SCHEDULING_KAPPA = 0.02, 0.002  # what the cluster's own scheduling adds, at most


@pytest.fixture(scope="module")
def _sweep(lab: labkit.Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[labkit.Results]:
    """One sweep of the session lab over 1–8 workers; the lab is put back to 2 after."""
    store = tmp_path_factory.mktemp("synthetic") / "store.db"
    sweep = labkit.Sweep(
        "synthetic",
        grid={"workers": [1, 2, 3, 4, 8]},
        params={"work_s": WORK_S, "serial_fraction": SIGMA, "coherency": KAPPA},
        repeats=3,
        warmup=1,
        experiment="calibration",
        store=store,
    )
    try:
        yield sweep.run(lab, live=False)
    finally:
        lab.scale(2)


def _quiet(frame):
    """The trials labkit lets carry a claim: a trial the lab flagged as run under outside load
    measured that load (analysis.trust, the rule every answer follows). None where it left out
    every one (beside another job using a core): then there is nothing to fit, and no fit is
    checked; the flags are, that they were all raised for load the lab measured."""
    quiet = admit(frame).frame
    if quiet.empty:
        assert frame["under_load"].eq(True).all() and (frame["outside_cpu_percent"] > 25).all()
        return None
    return quiet


def test_expected_time_is_the_usl() -> None:
    for n in (1, 2, 5, 16):
        x = 1000 / expected_time(n, 1.0, SIGMA, KAPPA)
        assert x == pytest.approx(1000 * n / (1 + SIGMA * (n - 1) + KAPPA * n * (n - 1)))


def test_sweep_runs_at_the_configured_times(_sweep: labkit.Results) -> None:
    frame = _sweep.frame
    assert (frame["status"] == "ok").all() and len(frame) == 15
    assert set(frame["amount"]) == {1000.0} and set(frame["unit"]) == {"items"}
    for w, g in frame.groupby("workers"):
        expected = expected_time(int(w), WORK_S, SIGMA, KAPPA)
        # Sleeps never end early; the cluster adds its scheduling latency on top, which a busy
        # machine stretches: above, only the order of magnitude is asserted.
        assert g["wall_s"].min() >= expected - 0.005, (w, g["wall_s"].tolist())
        assert g["wall_s"].median() < 3 * expected + 0.5, (w, g["wall_s"].tolist())


def test_fit_recovers_the_configured_serial_fraction(_sweep: labkit.Results) -> None:
    """The fit's intervals cover the configured σ and κ; where the point estimates land inside
    them is run-to-run noise (a busy machine moves them), so it is not asserted."""
    quiet = _quiet(_sweep.frame)
    if quiet is None:
        return
    fit = analysis.fit_usl(quiet)
    if not fit.available:  # the lab left out so many loaded trials that too few worker counts remain
        assert "needs 4 worker counts" in fit.describe()
        return
    # The cluster's own scheduling (5–15 ms a run, see the module's docstring) is a serial part
    # the configuration does not hold: the intervals must cover the truth within that much.
    assert fit.sigma_ci[0] - SCHEDULING_SIGMA <= SIGMA <= fit.sigma_ci[1] + SCHEDULING_SIGMA, fit.describe()
    assert fit.kappa_ci[0] - SCHEDULING_KAPPA <= KAPPA <= fit.kappa_ci[1] + SCHEDULING_KAPPA, fit.describe()
    # Informative, so that the check can fail: σ's interval tells the configured 0.1 from 0.5
    # (how wide it is below that is run-to-run noise: 3 repeats on a busy machine gave 0–0.33),
    # and λ is of the right order (1000 items/s on one worker).
    assert fit.sigma_ci[1] < 0.5, fit.describe()
    assert 500 < fit.lambda_ < 2000, fit.describe()


def test_fit_on_four_workers_predicts_the_eight_worker_run(_sweep: labkit.Results) -> None:
    frame = _quiet(_sweep.frame)
    if frame is None:
        return
    fit = analysis.fit_usl(frame[frame["workers"] <= 4])
    if not fit.available or not frame["workers"].eq(8).any():
        assert not fit.available or "needs" in fit.describe()
        return
    assert fit.workers == (1, 2, 3, 4)
    mid, lo, hi = fit.predict([8])
    measured = frame.loc[frame["workers"] == 8, "throughput"].median()
    truth = 1000 * 8 / (1 + SIGMA * 7 + KAPPA * 8 * 7)  # the configured curve at 8 workers
    assert lo[0] <= mid[0] <= hi[0]
    # The prediction's interval covers the truth, and what was measured there, within what the
    # cluster's own scheduling takes from 8 workers' throughput: about 5% on a quiet machine (15 ms
    # of 0.25 s runs), up to 15% beside a busy core, where it also biases the fit at 1-4 workers
    # (a fresh clone beside a one-core hog predicted 3.62-3.77 k items/s against the truth's 4.04 k).
    assert 0.85 * lo[0] <= truth <= 1.15 * hi[0], (mid, lo, hi, truth)
    assert 0.85 * lo[0] <= measured <= 1.15 * hi[0], (mid, lo, hi, measured)


def test_needs_one_thread_per_worker() -> None:
    with labkit.Lab(workers=1, threads_per_worker=2, processes=False, dashboard=False) as lab:
        wl = labkit.workloads.get("synthetic")
        state = wl.setup(lab, **{**wl.defaults, "work_s": 0.01})
        with pytest.raises(ParameterError, match="threads_per_worker=1"):
            wl.run(state)


def test_serial_fraction_must_be_below_one(lab: labkit.Lab) -> None:
    wl = labkit.workloads.get("synthetic")
    with pytest.raises(ParameterError, match=r"\[0, 1\)"):
        wl.setup(lab, **{**wl.defaults, "serial_fraction": 1.0})
    assert wl.tasks({**wl.defaults, "tasks_per_worker": 3}, 4) == 13


def test_dataframe_groupby_counts_rows(lab: labkit.Lab, store_path: Path) -> None:
    results = labkit.Sweep(
        "dataframe-groupby",
        grid={"workers": [2], "partitions": [1, 4]},
        params={"rows": 20_000, "groups": 50},
        repeats=2,
        warmup=0,
        store=store_path,
    ).run(lab, live=False)
    frame = results.frame
    assert (frame["status"] == "ok").all() and len(frame) == 4
    assert set(frame["amount"]) == {20_000.0} and set(frame["unit"]) == {"rows"}
    assert np.all(frame["throughput"] > 0)
    assert sorted(analysis.task_counts(frame).tolist()) == [1, 1, 4, 4]
