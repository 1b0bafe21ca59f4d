"""The synthetic calibration workload on a real cluster: sweep → store → fit → known answer.

Its tasks sleep, so 8 worker processes on a 2-core machine still scale as configured. A run
on this machine carries ~5–15 ms of scheduling on top of the sleeps; with ``work_s = 1``
that reads as ~0.01 more serial fraction, well inside the tolerances below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import labkit
from labkit import ParameterError, analysis
from labkit.workloads.synthetic import expected_time

SIGMA, KAPPA, WORK_S = 0.1, 0.005, 1.0


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
        # Sleeps never end early; the cluster adds its scheduling latency on top.
        assert expected <= g["wall_s"].median() < expected + 0.15, (w, g["wall_s"].tolist())


def test_fit_recovers_the_configured_serial_fraction(_sweep: labkit.Results) -> None:
    fit = analysis.fit_usl(_sweep.frame)
    assert abs(fit.sigma - SIGMA) < 0.03, fit.describe()
    assert fit.lambda_ == pytest.approx(1000, rel=0.1)
    assert fit.kappa == pytest.approx(KAPPA, abs=0.003)


def test_fit_on_four_workers_predicts_the_eight_worker_run(_sweep: labkit.Results) -> None:
    frame = _sweep.frame
    fit = analysis.fit_usl(frame[frame["workers"] <= 4])
    assert fit.workers == (1, 2, 3, 4)
    mid, lo, hi = fit.predict([8])
    measured = frame.loc[frame["workers"] == 8, "throughput"].median()
    assert mid[0] == pytest.approx(measured, rel=0.15), (mid, lo, hi, measured)
    assert lo[0] <= mid[0] <= hi[0]


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
