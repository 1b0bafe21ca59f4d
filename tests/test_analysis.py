"""The analysis and the fits on trials with known answers, stored in a real ResultStore.

Every frame here goes through ``ResultStore.add_trial`` and ``trials_frame``, exactly as a
sweep's trials do; only the wall times are made up, from a model with known parameters.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from labkit import DataError, ParameterError, analysis, fits, plots, recommend, roofline
from labkit.analysis.fits import amdahl_throughput, usl_throughput

try:
    from .trials import trials_frame as _frame
except ImportError:
    from trials import trials_frame as _frame  # type: ignore[no-redef]

MiB = 2**20


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
    assert (table["unit"] == "items/s").all()  # the unit of the synthetic frame's throughput
    assert table["predicted"].str.fullmatch(r"[\d.]+ (k )?items/s \([\d.]+ (k )?items/s–[\d.]+ (k )?items/s\)").all()
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


def _ratio_frame(ratio: float, *, noise: float, repeats: int, seed: int = 0, rate: float = 100.0) -> Any:
    """Trials at 1 and 2 workers whose median throughputs differ by ``ratio``, with lognormal noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for w, x in ((1, rate), (2, rate * ratio)):
        walls = 1000.0 / (x * np.exp(rng.normal(0, noise, repeats)))
        rows.append({"workers": w, "wall_s": list(walls), "amount": 1000.0, "unit": "items"})
    return _frame(rows)


# --------------------------------------------------------------- no zero widths


def test_too_few_worker_counts_are_refused_before_fitting() -> None:
    # Three counts for three parameters: the curve would pass through every point.
    with pytest.raises(ParameterError, match="at least 4 distinct worker counts for a USL fit") as e:
        fits.fit_usl([1, 2, 4], [100, 170, 260])
    assert e.value.name == "workers" and e.value.value == [1, 2, 4]
    with pytest.raises(ParameterError, match="at least 3 distinct worker counts for an? Amdahl fit") as e:
        fits.fit_amdahl([1, 2, 2], [100, 170, 175])
    assert e.value.name == "workers"
    # From a frame (what notebooks call), the fit is "not available", with the reason.
    frame = _usl_frame([1, 2, 4], 0.05, 0.002, noise=0.02)
    usl = analysis.fit_usl(frame)
    assert not usl.available
    assert usl.describe() == (
        "USL fit over 1–4 workers (synthetic): not available: needs 4 worker counts, these trials have 3 (1, 2, 4)."
    )
    table = analysis.predict_throughput(usl, [1, 2, 4, 8])
    assert table[["throughput", "throughput_lo", "speedup_hi"]].isna().all().all()
    assert table["note"].str.startswith("not available: needs 4 worker counts").all()
    assert (table["predicted"] == "not available").all()
    assert analysis.fit_amdahl(frame).available  # Amdahl needs 3
    assert "no USL fit (needs 4 worker counts" in recommend.recommend_workers(frame, usl=usl).describe()


def test_exact_data_get_no_interval_rather_than_one_of_zero_width() -> None:
    fit = analysis.fit_usl(_usl_frame([1, 2, 4, 8], 0.05, 0.002, repeats=2))
    assert fit.sigma == pytest.approx(0.05, rel=1e-6)
    assert all(math.isnan(v) for v in (*fit.sigma_ci, *fit.kappa_ci, *fit.peak_workers_ci))
    assert "no run-to-run variation" in fit.note
    text = fit.describe()
    assert "σ = 0.05 (interval not available)" in text and "no peak or ceiling is claimed" in text
    assert "peaks at" not in text
    # Identical repeats: the ratio of medians has no interval either.
    r = analysis.intervals.ratio_estimate([2.0] * 6, [1.0] * 6)
    assert r.value == 2.0 and math.isnan(r.lo) and math.isnan(r.hi) and "do not vary" in r.note


def test_one_run_per_point_gives_no_speedup_interval_and_no_direction() -> None:
    value, lo, hi, _ = analysis.ratio_estimate([1.7], [1.0])
    assert value == pytest.approx(1.7) and math.isnan(lo) and math.isnan(hi)
    frame = _ratio_frame(1.7, noise=0.0, repeats=1)
    table = analysis.strong_scaling(frame)
    two = table[table["workers"] == 2].iloc[0]
    assert math.isnan(two["speedup_lo"]) and math.isnan(two["efficiency_hi"])
    assert two["note"] == "interval not available: one run per point; use repeats >= 5"
    text = analysis.describe_scaling(frame)
    assert "interval not available: one run per point; use repeats >= 5" in text
    assert "faster" not in text and "slower" not in text and "1.7× the speed of 1 (an estimate" in text
    # Fewer repeats than an interval can be trusted with: not available either, and said so.
    assert "3 runs per point; use repeats >= 5" in analysis.describe_scaling(_ratio_frame(1.7, noise=0.02, repeats=3))


def test_a_count_with_one_run_among_counts_with_repeats_is_resampled_too() -> None:
    # 8 workers measured once, the others 5 times: every run's residual takes part in the
    # refits, so the band at 8 workers is as real as the others' (it used to be a point).
    rng = np.random.default_rng(8)
    n = np.array([1.0] * 5 + [2.0] * 5 + [4.0] * 5 + [8.0])
    x = usl_throughput(n, 100.0, 0.05, 0.002) * np.exp(rng.normal(0, 0.02, n.size))
    fit = fits.fit_usl(n, x)
    mid, lo, hi = fit.predict([1, 2, 4, 8])
    assert np.all(lo < mid) and np.all(mid < hi)
    width = (hi - lo) / mid
    assert width[3] > width[0] > 0.005
    assert fit.sigma_ci[0] < fit.sigma < fit.sigma_ci[1] and fit.kappa_ci[0] < fit.kappa < fit.kappa_ci[1]


# -------------------------------------------------------------- words and intervals


def test_a_speedup_is_called_faster_or_slower_only_when_its_interval_excludes_1() -> None:
    faster = _ratio_frame(1.6, noise=0.03, repeats=7, seed=1)
    row = analysis.strong_scaling(faster).iloc[1]
    assert 1 < row["speedup_lo"] < 1.6 < row["speedup_hi"] < 1.8
    text = analysis.describe_scaling(faster)
    assert text.startswith("2 workers ran 1.6") and "× faster than 1 (95% interval" in text
    slower = analysis.describe_scaling(_ratio_frame(0.7, noise=0.03, repeats=7, seed=2))
    assert "× slower than 1 (speedup 0.7" in slower and "faster" not in slower
    # 3% apart with 10% noise: the interval holds 1, so neither word is used.
    same_frame = _ratio_frame(1.03, noise=0.10, repeats=7, seed=3)
    row = analysis.strong_scaling(same_frame).iloc[1]
    assert row["speedup_lo"] < 1 < row["speedup_hi"]
    same = analysis.describe_scaling(same_frame)
    assert "which holds 1): the runs cannot tell; more repeats" in same
    assert "faster" not in same and "slower" not in same


def test_trials_under_outside_load_never_decide_a_direction() -> None:
    import pandas as pd

    # Quiet runs: 2 workers 1.6× faster. Under load (a hog beside the 2-worker runs) the
    # same comparison reads 0.6×: no sentence may claim a direction from those trials.
    quiet = _ratio_frame(1.6, noise=0.03, repeats=7, seed=1).assign(under_load=False)
    loaded = _ratio_frame(0.6, noise=0.03, repeats=7, seed=2).assign(under_load=True)
    every = loaded.assign(under_load=lambda f: f["workers"].eq(2))  # only the 2-worker side loaded
    text = analysis.describe_scaling(every)
    assert "): no direction claimed" in text and "7 of its 14 trials ran while other work loaded" in text
    assert "faster" not in text and "slower" not in text
    # With enough clean trials on both sides the claim comes from them alone, and says so.
    loaded["trial_id"] = loaded["trial_id"] + 1000
    loaded["repeat"] = loaded["repeat"] + 100
    mixed = pd.concat([quiet, loaded], ignore_index=True)
    text = analysis.describe_scaling(mixed)
    assert text.startswith("Leaving out the 14 of 28 trials that ran under outside load, 2 workers ran 1.6")
    assert "× faster than 1 (95% interval" in text
    # Unknown load (not measured) is not treated as load.
    unknown = _ratio_frame(1.6, noise=0.03, repeats=7, seed=1).assign(under_load=None)
    assert "× faster than 1" in analysis.describe_scaling(unknown)


def test_weak_scaling_calls_it_below_ideal_only_when_the_interval_says_so() -> None:
    # T(w, n) = n / (w · 1 GB/s) · (1 + loss (w - 1)), with 2% noise and 6 repeats.
    def rows(loss: float, seed: int) -> list[dict[str, Any]]:
        rng = np.random.default_rng(seed)
        out = []
        for w, size in zip((1, 2, 4), analysis.weak_sizes(64.0, [1, 2, 4])):
            t = size * MiB / (w * 1e9) * (1 + loss * (w - 1))
            walls = list(t * np.exp(rng.normal(0, 0.02, 6)))
            out.append({"workers": w, "wall_s": walls, "amount": size * MiB, "unit": "bytes", "size_mb": size})
        return out

    frame = _frame(rows(0.1, 0), "array-sum")
    table = analysis.weak_scaling(frame, "size_mb")
    assert table["workers"].tolist() == [1, 2, 4] and table["size_mb"].tolist() == [64.0, 128.0, 256.0]
    np.testing.assert_allclose(table["efficiency"], [1.0, 1 / 1.1, 1 / 1.3], rtol=0.03)
    top = table.iloc[-1]
    assert top["efficiency_lo"] < top["efficiency"] < top["efficiency_hi"] < 1
    assert math.isnan(table["efficiency_lo"].iloc[0]) and "by definition" in table["note"].iloc[0]
    text = analysis.describe_weak_scaling(frame, "size_mb")
    assert "4 workers on 4× the work (size_mb=256)" in text and "below ideal" in text
    ideal = analysis.describe_weak_scaling(_frame(rows(0.0, 1), "array-sum"), "size_mb")
    assert "these runs cannot tell it from ideal" in ideal and "below" not in ideal


def test_usl_fit_on_data_without_coherency_claims_no_peak() -> None:
    # Amdahl's law (κ = 0) with 3% noise: least squares puts κ at 0, and its interval reaches 0.
    frame = _usl_frame(WIDE, 0.1, 0.0, noise=0.03, seed=4)
    fit = analysis.fit_usl(frame)
    assert fit.kappa_ci[0] == 0.0 < fit.kappa_ci[1] < 2e-4
    assert fit.sigma_ci[0] > 0.05
    text = fit.describe()
    assert "no peak was resolved" in text and "peaks at" not in text and "make it slower" not in text
    assert "Contention keeps throughput below λ/σ = 4.97 k items/s" in text  # 500/0.1 is the truth
    assert fit.ceiling_ci[0] < 5000 < fit.ceiling_ci[1]
    rec = recommend.recommend_workers(frame, usl=fit).describe()
    assert "the USL fit resolves no peak (κ's interval includes 0)" in rec
    # With coherency, the peak is claimed, with its interval.
    peaked = analysis.fit_usl(_usl_frame(WIDE, 0.05, 0.002, noise=0.03, seed=5))
    assert peaked.kappa_ci[0] > 0
    truth = math.sqrt((1 - 0.05) / 0.002)  # N* = sqrt((1 - σ) / κ) = 21.8 for the curve the runs came from
    lo, hi = peaked.peak_workers_ci
    assert lo <= truth <= hi, (lo, hi)  # the interval covers the truth; the point estimate may land anywhere in it
    said = re.search(r"Throughput peaks at N\* ≈ ([0-9.]+) \(([0-9.]+)–([0-9.]+)\) workers", peaked.describe())
    assert said is not None, peaked.describe()
    assert float(said[2]) <= float(said[1]) <= float(said[3]) and float(said[2]) < float(said[3])


def test_amdahl_ceiling_only_when_the_serial_fraction_is_resolved() -> None:
    linear = analysis.fit_amdahl(_usl_frame([1, 2, 4, 8], 0.0, 0.0, noise=0.03, seed=6))
    assert linear.serial_fraction_ci[0] == 0.0
    assert "its interval includes 0, so these runs set no ceiling" in linear.describe()
    serial = analysis.fit_amdahl(_usl_frame([1, 2, 4, 8], 0.2, 0.0, noise=0.03, seed=6))
    assert serial.serial_fraction_ci[0] > 0.1
    assert "no number of workers can make it more than 5" in serial.describe()
    lo, hi = serial.max_speedup_ci
    assert lo < 5 < hi


# --------------------------------------------------------------------- overhead


def _chunk_rows(
    a: float, b: float, bw: float, *, noise: float = 0.0, seed: int = 0, repeats: int = 3
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for size in (16.0, 64.0):
        for chunk in (0.0625, 0.25, 1.0, 4.0, 16.0):
            tasks = math.ceil(size / chunk)
            t = a + b * tasks + size * MiB / bw
            rows.append(
                {
                    "workers": 2,
                    "wall_s": list(t * np.exp(rng.normal(0, noise, repeats))),
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
    mid, _, _ = fit.predict(100, 64 * MiB)
    assert mid[0] == pytest.approx(0.01 + 0.05 + 64 * MiB / 2e9, rel=1e-3)
    assert "no run-to-run variation" in fit.note and "Intervals not available" in fit.describe()
    noisy = analysis.fit_overhead(_frame(_chunk_rows(0.01, 5e-4, 2e9, noise=0.03), "array-sum"))
    assert noisy.per_task_s == pytest.approx(5e-4, rel=0.1)
    assert 0 < noisy.per_task_s_ci[0] <= 5e-4 <= noisy.per_task_s_ci[1]
    assert noisy.bandwidth_ci[0] <= 2e9 <= noisy.bandwidth_ci[1] < np.inf
    mid, lo, hi = noisy.predict(100, 64 * MiB)
    assert lo[0] < mid[0] < hi[0]
    text = noisy.describe()
    assert "µs) per task" in text and "Per-task overhead outweighs the data's own time for tasks smaller than" in text


def test_overhead_without_a_per_task_cost_does_not_claim_one() -> None:
    fit = analysis.fit_overhead(_frame(_chunk_rows(0.05, 0.0, 2e9, noise=0.03, seed=1), "array-sum"))
    assert fit.per_task_s_ci[0] == 0.0
    text = fit.describe()
    assert "per task (not resolved: its interval includes 0)" in text
    assert "outweighs" not in text and "not resolved" in text


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


def _chunk_frame(medians: dict[float, float], noise: float = 0.01, repeats: int = 7, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    rows = [
        {
            "workers": 2,
            "wall_s": list(1 / (m * np.exp(rng.normal(0, noise, repeats)))),
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


def test_recommended_chunk_is_the_largest_within_the_margin_of_the_fastest() -> None:
    # 4 MiB is clearly the fastest; 16 MiB clearly slower: 4 is recommended.
    rec = recommend.recommend_chunk(_chunk_frame({0.25: 1.0, 1.0: 5.0, 4.0: 9.5, 16.0: 6.0}))
    assert rec.parameter == "chunk_mb" and rec.value == 4.0 and rec.best == 4.0
    assert rec.throughput == pytest.approx(9.5, rel=0.02) and rec.throughput_lo < rec.throughput < rec.throughput_hi
    assert "the fastest measured; every larger chunk_mb ran below 95% of it (chunk_mb=16 at 63% (" in rec.describe()
    # 16 MiB within 1% of 4 MiB, on quiet runs: the larger (fewer tasks) is recommended.
    rec = recommend.recommend_chunk(_chunk_frame({0.25: 1.0, 1.0: 5.0, 4.0: 9.1, 16.0: 9.0}, noise=0.005))
    assert rec.value == 16.0 and rec.best == 4.0
    assert "its whole interval is above 95%, within the 5% margin of practical equivalence" in rec.describe()
    # The same medians on noisy runs: the runs cannot tell, and the recommendation says so.
    rec = recommend.recommend_chunk(_chunk_frame({0.25: 1.0, 1.0: 5.0, 4.0: 9.1, 16.0: 9.0}, noise=0.15))
    assert rec.value is None and not rec.decided
    text = rec.describe()
    assert text.startswith("Cannot tell for array-sum") and "chunk_mb=16" in text and "chunk_mb=4" in text


def _workers_frame(medians: dict[int, float], noise: float, repeats: int = 7, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    return _frame(
        [
            {
                "workers": w,
                "wall_s": list(1 / (x * np.exp(rng.normal(0, noise, repeats)))),
                "amount": 1.0,
                "unit": "items",
            }
            for w, x in medians.items()
        ]
    )


def test_recommended_workers_are_the_fewest_within_the_margin_of_the_best() -> None:
    medians = {1: 1.0, 2: 1.9, 4: 3.0, 8: 3.02}
    frame = _workers_frame(medians, noise=0.005)
    rec = recommend.recommend_workers(frame)
    assert rec.value == 4 and rec.best == 8 and rec.margin == 0.05
    assert "of the best measured (8 workers): its whole interval is above 95%" in rec.describe()
    with_fit = recommend.recommend_workers(frame, usl=analysis.fit_usl(frame))
    assert with_fit.value == 4 and "USL fit" in with_fit.describe()
    # A wider margin: 2 workers' 63% clears the floor 1/(1 + 0.7) = 59% of the best, but not
    # 1/(1 + 0.4) = 71% (the one margin convention, intervals.equivalence_band).
    assert recommend.recommend_workers(frame, margin=0.7).value == 2
    assert recommend.recommend_workers(frame, margin=0.4).value == 4
    with pytest.raises(ParameterError, match="margin"):
        recommend.recommend_workers(frame, margin=1.5)


def test_noisy_runs_do_not_recommend_fewer_workers_because_the_interval_is_wide() -> None:
    # 4 workers are at 97% of 8 here too, but the runs vary by 20%: the ratio's interval
    # is wide. The old rule ("the interval reaches 1") took that as a licence for fewer
    # workers; a wide interval is no evidence of equivalence, so nothing is decided.
    frame = _workers_frame({1: 1.0, 2: 1.9, 4: 3.0, 8: 3.1}, noise=0.2, seed=1)
    rec = recommend.recommend_workers(frame)
    lo, hi = analysis.ratio_estimate(
        frame.loc[frame["workers"] == 4, "throughput"], frame.loc[frame["workers"] == 8, "throughput"]
    )[1:3]
    assert lo < 0.95 < 1 < hi  # what the old rule read as "within noise"
    assert rec.value is None and "Cannot tell" in rec.describe() and "More repeats" in rec.describe()
    assert math.isnan(rec.throughput)
    # Too few repeats for any interval: cannot tell either, and it says why.
    few = recommend.recommend_workers(_workers_frame({1: 1.0, 2: 1.9}, noise=0.01, repeats=3))
    assert few.value is None and "3 runs per point; use repeats >= 5" in few.describe()


# ------------------------------------------------------------------- bad input


def test_degenerate_inputs_raise_errors_naming_the_problem() -> None:
    """Bad arguments raise ParameterError naming the parameter; trials that cannot answer raise DataError."""
    one_point = _usl_frame([4], 0.1, 0.0)
    assert "needs 4 worker counts, these trials have 1 (4)" in analysis.fit_usl(one_point).describe()
    assert not analysis.fit_amdahl(one_point).available
    with pytest.raises(DataError, match="two worker counts"):
        analysis.karp_flatt(one_point)
    zero_time = _frame(
        [
            {"workers": w, "wall_s": [0.0 if w == 2 else 1.0 / w] * 2, "amount": 1.0, "unit": "items"}
            for w in (1, 2, 4, 8)
        ]
    )
    with pytest.raises(ParameterError, match=r"workers=\[2\]") as e:
        analysis.fit_usl(zero_time)
    assert e.value.name == "throughput"
    nan_time = _frame(
        [{"workers": w, "wall_s": [float("nan"), 1.0 / w], "amount": 1.0, "unit": "items"} for w in (1, 2, 4)]
    )
    with pytest.raises(ParameterError, match="finite values > 0"):
        analysis.fit_amdahl(nan_time)
    with pytest.raises(DataError, match="no trial with status ok") as data_error:
        analysis.fit_usl(one_point.assign(status="error"))
    assert "is not allowed" not in str(data_error.value) and not isinstance(data_error.value, ParameterError)
    with pytest.raises(ParameterError, match="n_boot"):
        fits.fit_usl([1, 2, 4, 8], [1.0, 1.9, 3.5, 6.0], n_boot=10)
    same_bytes = _frame([r for r in _chunk_rows(0.01, 1e-4, 1e9) if r["size_mb"] == 16.0], "array-sum")
    with pytest.raises(ParameterError, match="tasks and bytes varied independently"):
        analysis.fit_overhead(same_bytes)
    with pytest.raises(ParameterError, match="finite limit > 0") as e:
        roofline.roofline_fraction(one_point, {"items": float("nan")})
    assert e.value.name == "limits['items']"
    with pytest.raises(ParameterError, match="a limit for a unit"):
        roofline.roofline_fraction(one_point, {"bytes": 1e9})
    with pytest.raises(DataError, match="weak_sizes"):
        analysis.weak_scaling(
            _frame([{"workers": w, "wall_s": [1.0], "amount": 1.0, "unit": "items", "size": 1} for w in (1, 2)]), "size"
        )
    with pytest.raises(ParameterError, match="at least two measured values"):
        recommend.recommend_chunk(_chunk_frame({4.0: 1.0}))


# ----------------------------------------------------------------------- plots


def test_fit_figure_draws_the_fitted_curves_and_predictions() -> None:
    frame = _usl_frame([1, 2, 4, 8], 0.05, 0.01, noise=0.01, repeats=5)
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


def test_figures_draw_what_is_not_available_without_failing() -> None:
    # Three worker counts (no USL fit) and one run per point (no intervals): figures still draw.
    frame = _usl_frame([1, 2, 4], 0.05, 0.01, noise=0.02, repeats=1)
    usl, amdahl = analysis.fit_usl(frame), analysis.fit_amdahl(frame)
    assert not usl.available and amdahl.available
    lines = {line.get_label(): line for line in plots.fit_figure(frame, usl=usl, amdahl=amdahl).axes[0].get_lines()}
    assert np.isnan(lines["USL fit"].get_data()[1]).all()  # nothing to draw
    assert np.isfinite(lines["Amdahl fit"].get_data()[1]).all()
    assert len(plots.scaling_figure(frame).axes) == 3


def test_wide_intervals_run_off_the_axes_instead_of_squashing_the_data() -> None:
    # Very noisy runs: the intervals of speedup and efficiency reach far beyond the estimates.
    frame = _usl_frame([1, 2, 4], 0.05, 0.01, noise=0.9, repeats=5, seed=3)
    table = analysis.strong_scaling(frame)
    assert table["speedup_hi"].max() > 1.3 * max(4, table["speedup"].max())  # the case in point
    fig = plots.scaling_figure(frame)
    speed, eff = fig.axes[1], fig.axes[2]
    assert speed.get_ylim()[1] == pytest.approx(1.3 * max(4.0, table["speedup"].max()))
    assert eff.get_ylim()[1] == pytest.approx(max(1.1, 1.3 * table["efficiency"].max()))
    assert any("run past the top" in t.get_text() for t in speed.texts)
    quiet = plots.scaling_figure(_usl_frame([1, 2, 4], 0.05, 0.01, noise=0.01, repeats=5))
    assert not any("run past the top" in t.get_text() for t in quiet.axes[1].texts)


def test_other_figures_draw_their_data() -> None:
    frame = _frame(_chunk_rows(0.01, 5e-4, 2e9, noise=0.02, repeats=5), "array-sum")
    fit = analysis.fit_overhead(frame)
    fig = plots.chunk_figure(frame, fit)
    assert len(fig.axes[0].get_lines()) >= 2 and fig.axes[1].get_yscale() == "log"
    table = roofline.roofline_fraction(frame, {"bytes": 4e9})
    bars = plots.roofline_figure(table).axes[0].patches
    assert [b.get_width() for b in bars] == pytest.approx(table["fraction"].tolist())
