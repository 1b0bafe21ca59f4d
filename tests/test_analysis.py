"""The analysis and the fits on trials with known answers, stored in a real ResultStore.

Every frame here goes through ``ResultStore.add_trial`` and ``trials_frame``, exactly as a
sweep's trials do; only the wall times are made up, from a model with known parameters.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from labkit import ParameterError, analysis, plots, recommend, roofline
from labkit.fits import amdahl_throughput, usl_throughput
from labkit.store import ResultStore, Trial

MiB = 2**20


def _frame(rows: list[dict[str, Any]], workload: str = "synthetic") -> Any:
    """Trials from ``{"workers", "wall_s": [...], "amount", "unit", **params}`` dicts."""
    with ResultStore(":memory:") as store:
        run_id = store.start_run("test", workload, env={}, config={})
        for row in rows:
            row = dict(row)
            walls, workers = row.pop("wall_s"), row.pop("workers")
            amount, unit = row.pop("amount"), row.pop("unit")
            name = row.pop("workload", workload)
            point = json.dumps({"workload": name, "workers": workers, **row}, sort_keys=True)
            for r, wall in enumerate(walls):
                ok = wall is not None and not (isinstance(wall, float) and math.isnan(wall))
                store.add_trial(
                    Trial(
                        run_id=run_id,
                        experiment="test",
                        workload=name,
                        point=point,
                        params=row,
                        repeat=r,
                        workers=workers,
                        threads=workers,
                        backend=None,
                        status="ok",
                        wall_s=wall if ok else None,
                        amount=amount,
                        unit=unit,
                    )
                )
        return store.trials_frame("test")


def _usl_frame(
    workers: list[int],
    sigma: float,
    kappa: float,
    *,
    repeats: int = 5,
    noise: float = 0.0,
    seed: int = 0,
    rate: float = 500.0,
    **params: Any,
) -> Any:
    """Trials whose throughput follows the USL, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    amount = 1000.0
    rows = []
    for w in workers:
        x = usl_throughput(w, rate, sigma, kappa) * np.exp(rng.normal(0, noise, repeats))
        rows.append({"workers": w, "wall_s": list(amount / x), "amount": amount, "unit": "items", **params})
    return _frame(rows)


WIDE = [1, 2, 4, 8, 16, 24, 32, 48, 64]


# ------------------------------------------------------------------------- fits


def test_usl_fit_recovers_sigma_kappa_exactly_without_noise() -> None:
    fit = analysis.fit_usl(_usl_frame([1, 2, 4, 8, 16, 32], 0.05, 0.001, repeats=3))
    assert fit.sigma == pytest.approx(0.05, rel=1e-4)
    assert fit.kappa == pytest.approx(0.001, rel=1e-4)
    assert fit.lambda_ == pytest.approx(500.0, rel=1e-4)
    assert fit.peak_workers == pytest.approx(math.sqrt(0.95 / 0.001), rel=1e-3)
    assert fit.unit == "items" and fit.workers == (1, 2, 4, 8, 16, 32)


def test_usl_fit_recovers_sigma_kappa_within_5_percent_with_noise() -> None:
    fit = analysis.fit_usl(_usl_frame(WIDE, 0.05, 0.001, noise=0.01, seed=0))
    assert fit.sigma == pytest.approx(0.05, rel=0.05)
    assert fit.kappa == pytest.approx(0.001, rel=0.05)
    assert fit.sigma_ci[0] <= 0.05 <= fit.sigma_ci[1]
    assert fit.kappa_ci[0] <= 0.001 <= fit.kappa_ci[1]
    lo, hi = fit.peak_workers_ci
    assert lo < fit.peak_workers < hi and lo <= math.sqrt(0.95 / 0.001) <= hi
    assert "N* ≈" in fit.describe() and "contention σ = 0.05" in fit.describe()


def test_amdahl_fit_recovers_serial_fraction_within_001_with_noise() -> None:
    rng = np.random.default_rng(3)
    rows = [
        {
            "workers": w,
            "wall_s": list(1000.0 / (amdahl_throughput(w, 200.0, 0.1) * np.exp(rng.normal(0, 0.03, 5)))),
            "amount": 1000.0,
            "unit": "items",
        }
        for w in WIDE
    ]
    fit = analysis.fit_amdahl(_frame(rows))
    assert abs(fit.serial_fraction - 0.1) < 0.01
    assert fit.serial_fraction_ci[0] < fit.serial_fraction < fit.serial_fraction_ci[1]
    assert fit.max_speedup == pytest.approx(1 / fit.serial_fraction)
    # Amdahl is the USL with κ = 0: the USL finds (almost) no coherency cost.
    usl = analysis.fit_usl(_frame(rows))
    assert usl.kappa < 1e-4 and abs(usl.sigma - 0.1) < 0.01


def test_usl_prediction_beyond_measured_counts() -> None:
    frame = _usl_frame([1, 2, 3, 4, 6, 8], 0.05, 0.002, noise=0.01, seed=1)
    fit = analysis.fit_usl(frame)
    table = analysis.predict_throughput(fit, [4, 8, 16, 24])
    truth = usl_throughput(table["workers"].to_numpy(), 500.0, 0.05, 0.002)
    np.testing.assert_allclose(table["throughput"], truth, rtol=0.06)
    assert table["measured"].tolist() == [True, True, False, False]
    assert (table["throughput_lo"] <= table["throughput"]).all() and (
        table["throughput"] <= table["throughput_hi"]
    ).all()
    # The band widens with the distance from the data.
    width = (table["throughput_hi"] - table["throughput_lo"]) / table["throughput"]
    assert width.iloc[-1] > width.iloc[1]
    s, s_lo, s_hi = fit.speedup([1, 16])
    assert s[0] == 1.0 and s_lo[1] <= s[1] <= s_hi[1]


def test_fit_picks_the_largest_configuration_unless_told() -> None:
    frame = _frame(
        [
            {
                "workers": w,
                "wall_s": [1000.0 / usl_throughput(w, 100.0, sigma, 0.0)] * 3,
                "amount": 1000.0,
                "unit": "items",
                "size": size,
            }
            for size, sigma in ((1, 0.3), (2, 0.1))
            for w in (1, 2, 4)
        ]
    )
    assert analysis.fit_amdahl(frame).serial_fraction == pytest.approx(0.1, abs=1e-6)
    assert analysis.fit_amdahl(frame, where={"size": 1}).serial_fraction == pytest.approx(0.3, abs=1e-6)
    assert "size=2" in analysis.fit_amdahl(frame).config


def test_karp_flatt_is_the_serial_fraction_of_amdahl_data() -> None:
    frame = _frame(
        [
            {"workers": w, "wall_s": [1000.0 / amdahl_throughput(w, 100.0, 0.2)] * 3, "amount": 1000.0, "unit": "items"}
            for w in (1, 2, 4, 8)
        ]
    )
    table = analysis.karp_flatt(frame)
    assert table["workers"].tolist() == [2, 4, 8]
    np.testing.assert_allclose(table["serial_fraction"], 0.2, rtol=1e-9)
    # Coherency makes it rise with the workers.
    rising = analysis.karp_flatt(_usl_frame([1, 2, 4, 8], 0.05, 0.01, repeats=3))
    assert rising["serial_fraction"].is_monotonic_increasing


# -------------------------------------------------------------------- weak scaling


def test_weak_sizes() -> None:
    assert analysis.weak_sizes(64.0, [4, 1, 2]) == [64.0, 128.0, 256.0]
    assert analysis.weak_sizes(1000, [1, 8], exponent=3, integer=True) == [1000, 2000]


def test_weak_scaling_pairs_size_with_workers() -> None:
    # T(w, n) = n / (w · 1 GB/s) · (1 + 0.1 (w - 1)): perfect work split, 10% loss per added worker.
    rows = []
    for w in (1, 2, 4):
        for size in analysis.weak_sizes(64.0, [1, 2, 4]):
            t = size * MiB / (w * 1e9) * (1 + 0.1 * (w - 1))
            rows.append(
                {
                    "workers": w,
                    "wall_s": [t, t * 1.01, t * 0.99],
                    "amount": size * MiB,
                    "unit": "bytes",
                    "size_mb": size,
                    "workload": "array-sum",
                }
            )
    table = analysis.weak_scaling(_frame(rows, "array-sum"), "size_mb")
    assert table["workers"].tolist() == [1, 2, 4]
    assert table["size_mb"].tolist() == [64.0, 128.0, 256.0]
    np.testing.assert_allclose(table["efficiency"], [1.0, 1 / 1.1, 1 / 1.3], rtol=1e-6)
    np.testing.assert_allclose(table["scaled_speedup"], [1.0, 2 / 1.1, 4 / 1.3], rtol=1e-6)
    assert (table["efficiency_lo"] <= table["efficiency"]).all() and (
        table["efficiency"] <= table["efficiency_hi"]
    ).all()
    text = analysis.describe_weak_scaling(_frame(rows, "array-sum"), "size_mb")
    assert "4 workers on 4× the work (size_mb=256)" in text and "77%" in text


# --------------------------------------------------------------------- overhead


def _chunk_rows(a: float, b: float, bw: float, *, noise: float = 0.0, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for size in (16.0, 64.0):
        for chunk in (0.0625, 0.25, 1.0, 4.0, 16.0):
            tasks = math.ceil(size / chunk)
            t = a + b * tasks + size * MiB / bw
            rows.append(
                {
                    "workers": 2,
                    "wall_s": list(t * np.exp(rng.normal(0, noise, 3))),
                    "amount": size * MiB,
                    "unit": "bytes",
                    "size_mb": size,
                    "chunk_mb": chunk,
                    "dtype": "float64",
                    "backend": "numpy",
                }
            )
    return rows


def test_overhead_model_recovers_its_costs() -> None:
    fit = analysis.fit_overhead(_frame(_chunk_rows(0.01, 5e-4, 2e9), "array-sum"))
    assert fit.fixed_s == pytest.approx(0.01, rel=1e-3)
    assert fit.per_task_s == pytest.approx(5e-4, rel=1e-3)
    assert fit.bandwidth == pytest.approx(2e9, rel=1e-3)
    assert fit.break_even_bytes == pytest.approx(5e-4 * 2e9, rel=1e-3)
    mid, lo, hi = fit.predict(100, 64 * MiB)
    assert lo[0] <= mid[0] <= hi[0]
    assert mid[0] == pytest.approx(0.01 + 0.05 + 64 * MiB / 2e9, rel=1e-3)
    noisy = analysis.fit_overhead(_frame(_chunk_rows(0.01, 5e-4, 2e9, noise=0.03), "array-sum"))
    assert noisy.per_task_s == pytest.approx(5e-4, rel=0.1)
    assert noisy.per_task_s_ci[0] <= 5e-4 <= noisy.per_task_s_ci[1]
    assert noisy.bandwidth == pytest.approx(2e9, rel=0.2)
    assert "µs per task" in noisy.describe() and "MiB" in noisy.describe()


def test_task_counts_of_array_and_own_workloads() -> None:
    frame = _frame(_chunk_rows(0.01, 5e-4, 2e9), "array-sum")
    assert analysis.task_counts(frame).iloc[:15:3].tolist() == [256, 64, 16, 4, 1]
    syn = _frame(
        [
            {
                "workers": 4,
                "wall_s": [0.3],
                "amount": 300.0,
                "unit": "items",
                "tasks_per_worker": 2,
                "work_s": 0.3,
                "serial_fraction": 0.1,
                "coherency": 0.0,
            }
        ]
    )
    assert analysis.task_counts(syn).tolist() == [9]


# ------------------------------------------------------------------- roofline


def test_roofline_fraction_against_limits() -> None:
    frame = _frame(
        [
            {"workers": w, "wall_s": [1.0, 1.0, 1.0], "amount": w * 2e9, "unit": "bytes", "workload": "array-sum"}
            for w in (1, 2)
        ]
    )
    table = roofline.roofline_fraction(frame, {"bytes": 4e9})
    assert table["fraction"].tolist() == pytest.approx([0.5, 1.0])
    per = roofline.roofline_fraction(frame, roofline.hardware_limits(bandwidth=4e9), per_worker=True)
    assert per["fraction"].tolist() == pytest.approx([0.5, 0.5])
    assert per["limit"].tolist() == [4e9, 8e9]
    assert "50%" in roofline.describe_roofline(per)


# -------------------------------------------------------------- recommendations


def _chunk_frame(medians: dict[float, float], spread: float = 0.02) -> Any:
    rows = [
        {
            "workers": 2,
            "wall_s": [
                1 / m * (1 + spread),
                1 / m,
                1 / m * (1 - spread),
                1 / m * (1 + spread / 2),
                1 / m * (1 - spread / 2),
            ],
            "amount": 1.0,
            "unit": "bytes",
            "size_mb": 64.0,
            "chunk_mb": c,
            "dtype": "float64",
            "backend": "numpy",
        }
        for c, m in medians.items()
    ]
    return _frame(rows, "array-sum")


def test_recommended_chunk_is_the_fastest_within_noise() -> None:
    # 4 MiB is clearly the fastest; 16 MiB clearly slower: 4 is recommended.
    rec = recommend.recommend_chunk(_chunk_frame({0.25: 1.0, 1.0: 5.0, 4.0: 9.5, 16.0: 6.0}))
    assert rec.parameter == "chunk_mb" and rec.value == 4.0
    assert rec.throughput == pytest.approx(9.5, rel=1e-6)
    assert "the fastest measured" in rec.describe()
    # 4 and 16 MiB are within noise of each other: the larger (fewer tasks) is recommended.
    rec = recommend.recommend_chunk(_chunk_frame({0.25: 1.0, 1.0: 5.0, 4.0: 9.1, 16.0: 9.0}, spread=0.05))
    assert rec.value == 16.0 and "within run-to-run noise of the fastest (chunk_mb=4" in rec.describe()


def test_recommended_workers_are_the_fewest_within_noise_of_the_best() -> None:
    rows = [
        {"workers": w, "wall_s": [1 / x * 1.03, 1 / x, 1 / x * 0.97], "amount": 1.0, "unit": "items"}
        for w, x in ((1, 1.0), (2, 1.9), (4, 3.0), (8, 3.05))
    ]
    frame = _frame(rows)
    rec = recommend.recommend_workers(frame)
    assert rec.value == 4 and "within run-to-run noise" in rec.describe()
    with_fit = recommend.recommend_workers(frame, usl=analysis.fit_usl(frame))
    assert with_fit.value == 4 and "USL fit" in with_fit.describe()


# ------------------------------------------------------------------- bad input


def test_degenerate_inputs_raise_parameter_errors_naming_the_problem() -> None:
    one_point = _usl_frame([4], 0.1, 0.0)
    with pytest.raises(ParameterError, match="at least 3 distinct worker counts") as e:
        analysis.fit_usl(one_point)
    assert e.value.name == "workers"
    with pytest.raises(ParameterError, match="at least 2 distinct worker counts"):
        analysis.fit_amdahl(one_point)
    with pytest.raises(ParameterError, match="two worker counts"):
        analysis.karp_flatt(one_point)
    zero_time = _frame(
        [{"workers": w, "wall_s": [0.0 if w == 2 else 1.0 / w] * 2, "amount": 1.0, "unit": "items"} for w in (1, 2, 4)]
    )
    with pytest.raises(ParameterError, match=r"workers=\[2\]") as e:
        analysis.fit_usl(zero_time)
    assert e.value.name == "throughput"
    nan_time = _frame(
        [{"workers": w, "wall_s": [float("nan"), 1.0 / w], "amount": 1.0, "unit": "items"} for w in (1, 2, 4)]
    )
    with pytest.raises(ParameterError, match="finite values > 0"):
        analysis.fit_amdahl(nan_time)
    with pytest.raises(ParameterError, match="no trial with status ok"):
        analysis.fit_usl(one_point.assign(status="error"))
    same_bytes = _frame([r for r in _chunk_rows(0.01, 1e-4, 1e9) if r["size_mb"] == 16.0], "array-sum")
    with pytest.raises(ParameterError, match="tasks and bytes varied independently"):
        analysis.fit_overhead(same_bytes)
    with pytest.raises(ParameterError, match="finite limit > 0") as e:
        roofline.roofline_fraction(one_point, {"items": float("nan")})
    assert e.value.name == "limits['items']"
    with pytest.raises(ParameterError, match="a limit for a unit"):
        roofline.roofline_fraction(one_point, {"bytes": 1e9})
    with pytest.raises(ParameterError, match="weak_sizes"):
        analysis.weak_scaling(
            _frame([{"workers": w, "wall_s": [1.0], "amount": 1.0, "unit": "items", "size": 1} for w in (1, 2)]), "size"
        )
    with pytest.raises(ParameterError, match="at least two measured values"):
        recommend.recommend_chunk(_chunk_frame({4.0: 1.0}))


# ----------------------------------------------------------------------- plots


def test_fit_figure_draws_the_fitted_curves_and_predictions() -> None:
    frame = _usl_frame([1, 2, 4, 8], 0.05, 0.01, noise=0.01, repeats=3)
    usl, amdahl = analysis.fit_usl(frame), analysis.fit_amdahl(frame)
    fig = plots.fit_figure(frame, usl=usl, amdahl=amdahl, predict_to=32)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    x, y = lines["USL fit"].get_data()
    assert x[0] == 1 and x[-1] == 32
    np.testing.assert_allclose(y, usl.speedup(x)[0])
    np.testing.assert_allclose(lines["Amdahl fit"].get_data()[1], amdahl.speedup(x)[0])
    labels = ax.get_legend_handles_labels()[1]
    assert "USL prediction" in labels and any(lbl.startswith("measured") for lbl in labels)


def test_other_figures_draw_their_data() -> None:
    frame = _frame(_chunk_rows(0.01, 5e-4, 2e9, noise=0.02), "array-sum")
    fit = analysis.fit_overhead(frame)
    fig = plots.chunk_figure(frame, fit)
    assert len(fig.axes[0].get_lines()) >= 2 and fig.axes[1].get_yscale() == "log"
    table = roofline.roofline_fraction(frame, {"bytes": 4e9})
    bars = plots.roofline_figure(table).axes[0].patches
    assert [b.get_width() for b in bars] == pytest.approx(table["fraction"].tolist())
