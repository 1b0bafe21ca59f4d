"""Decisions from trials: a recommendation against every alternative, a roofline fraction that
carries the probe's uncertainty, a break-even that stays not available rather than 0.

Frames go through ``ResultStore.add_trial`` and ``trials_frame``, as a sweep's trials do;
only the wall times are made up. No assertion here is about time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from labkit import analysis, recommend, roofline
from labkit.analysis.overhead import _overhead_from_arrays

try:
    from .trials import trials_frame as _frame
except ImportError:
    from trials import trials_frame as _frame  # type: ignore[no-redef]


def _workers(medians: dict[int, tuple[float, float]], repeats: int = 7, seed: int = 0) -> Any:
    """Trials at each worker count: ``{workers: (median throughput, lognormal noise)}``."""
    rng = np.random.default_rng(seed)
    rows = [
        {"workers": w, "wall_s": list(1 / (x * np.exp(rng.normal(0, noise, repeats)))), "amount": 1.0, "unit": "items"}
        for w, (x, noise) in medians.items()
    ]
    return _frame(rows)


def _throughputs(frame: Any, workers: int) -> np.ndarray:
    return frame.loc[frame["workers"] == workers, "throughput"].to_numpy(float)


# ------------------------------------------------------------ recommend_workers


def test_a_value_is_not_recommended_while_a_noisy_alternative_could_beat_it() -> None:
    # 4 workers have the highest median and 8 are tight just below them: the old rule
    # compared only that runner-up and recommended 4. 16 workers ran noisily: their ratio
    # to 4 reaches far above 1 + margin, so 16 could still be the faster by more than 5%.
    frame = _workers({1: (1.0, 0.01), 2: (1.9, 0.01), 4: (3.0, 0.01), 8: (2.97, 0.01), 16: (2.9, 0.35)}, seed=3)
    wide = analysis.ratio_estimate(_throughputs(frame, 16), _throughputs(frame, 4))
    assert wide.lo < 1 < 1.05 < wide.hi, wide  # what the old rule never looked at
    rec = recommend.recommend_workers(frame)
    text = rec.describe()
    assert rec.value is None and rec.value != 4 and not rec.decided, text
    assert text.startswith("Cannot tell for synthetic: 4 workers ran at ") and "of 16 workers" in text
    assert "intervals adjusted for 4 comparisons: each at 98.8%" in text
    assert "More repeats of 4 workers and 16 workers" in text
    assert math.isnan(rec.throughput)


def test_a_clear_case_still_recommends_the_fewest_workers_within_the_margin() -> None:
    frame = _workers({1: (1.0, 0.005), 2: (1.9, 0.005), 4: (3.0, 0.005), 8: (3.02, 0.005)})
    rec = recommend.recommend_workers(frame)
    text = rec.describe()
    assert rec.value == 4 and rec.best == 8, text
    assert "of the best measured (8 workers): its whole interval is above 95%" in text
    assert "no other value could be faster by more than the 5% margin (intervals adjusted for 3 comparisons" in text
    assert "outside load not measured for 28" in text  # unknown load is admitted, and said
    # The best by median is itself recommended where every cheaper value is clearly slower.
    best = recommend.recommend_workers(_workers({1: (1.0, 0.005), 2: (1.9, 0.005), 4: (3.0, 0.005)}))
    assert best.value == 4 and "every smaller count ran below 95% of it" in best.describe()


def test_trials_under_load_claim_nothing() -> None:
    frame = _workers({1: (1.0, 0.005), 2: (1.9, 0.005), 4: (3.0, 0.005)})
    loaded = recommend.recommend_workers(frame.assign(under_load=True))
    text = loaded.describe()
    assert loaded.value is None and text.startswith("Cannot tell for synthetic: ")
    assert "left out 21 of 21 trials that ran under outside load" in text and "not measured" in text
    # One count loaded: that count was not measured, and it could be the better one.
    partial = recommend.recommend_workers(frame.assign(under_load=frame["workers"].eq(4)))
    assert partial.value is None and "4 workers not measured (left out 7 of 21" in partial.describe()
    # Clean trials beside loaded ones: the decision comes from the clean ones, and says what was left out.
    extra = frame[frame["workers"] == 1].assign(under_load=True, trial_id=lambda f: f["trial_id"] + 1000)
    mixed = recommend.recommend_workers(pd.concat([frame.assign(under_load=False), extra]))
    assert mixed.value == 4 and "left out 7 of 28 trials that ran under outside load" in mixed.describe()


def test_the_usl_clause_says_slower_only_past_the_peak_interval() -> None:
    frame = _workers({w: (x, 0.02) for w, x in {1: 1.0, 2: 1.9, 4: 3.4, 8: 4.6, 16: 4.0, 32: 2.6}.items()}, seed=1)
    rec = recommend.recommend_workers(frame, usl=analysis.fit_usl(frame)).describe()
    assert "the USL fit puts the peak at N* ≈" in rec
    assert "more workers than that make it slower" not in rec
    if "make it slower" in rec:
        assert "(the interval's upper end) make it slower" in rec


# --------------------------------------------------------------------- roofline


def _bytes_frame() -> Any:
    rng = np.random.default_rng(2)
    walls = list(1.0 / np.exp(rng.normal(0, 0.02, 7)))
    return _frame([{"workers": 1, "wall_s": walls, "amount": 2e9, "unit": "bytes", "workload": "array-sum"}])


def test_a_limit_with_repeats_widens_the_fraction_s_interval() -> None:
    frame = _bytes_frame()
    repeats = 4e9 * np.exp(np.random.default_rng(5).normal(0, 0.05, 7))
    exact = roofline.roofline_fraction(frame, roofline.hardware_limits(bandwidth=float(np.median(repeats))))
    noisy = roofline.roofline_fraction(frame, roofline.hardware_limits(bandwidth=repeats))
    assert exact["fraction"].iloc[0] == noisy["fraction"].iloc[0]
    assert noisy["fraction_hi"].iloc[0] - noisy["fraction_lo"].iloc[0] > (
        exact["fraction_hi"].iloc[0] - exact["fraction_lo"].iloc[0]
    )
    assert exact["limit_spread"].iloc[0] == "exact" and noisy["limit_spread"].iloc[0] == "repeats"
    assert "from the runs' and the probe's repeats" in roofline.describe_roofline(noisy)


def test_a_probed_limit_without_repeats_is_an_estimate_with_no_verdict() -> None:
    limits = roofline.HardwareLimits({"bytes": 2.1e9}, unsized={"bytes": "the probe kept its best and median"})
    table = roofline.roofline_fraction(_bytes_frame(), limits)
    assert table["limit_spread"].iloc[0] == "not measured"
    assert "the limit's uncertainty is not measured" in table["note"].iloc[0]
    text = roofline.describe_roofline(table)
    assert "from the runs alone" in text and "no verdict on the fraction is claimed" in text
    assert "close to that limit" not in text  # ~95% of a limit whose own spread is unknown


# -------------------------------------------------------------------- overhead


def test_an_undefined_break_even_stays_not_available() -> None:
    # No cost per task and almost none per byte: some refits put both at 0, where the
    # break-even is 0 × ∞. Those refits are not a break-even of 0.
    t = np.array([10, 100, 1000] * 3, float)
    b = np.repeat([1e8, 4e8, 2e8], 3)
    w = (0.05 + b / 1e12) * np.exp(np.random.default_rng(3).normal(0, 0.05, t.size))
    fit = _overhead_from_arrays(t, b, w)
    assert all(math.isnan(v) for v in fit.break_even_bytes_ci)
    assert "0 × ∞" in fit.break_even_note and "interval not available" in fit.break_even_note
    assert "smaller than 0" not in fit.describe()


def test_no_interval_prints_as_if_it_had_zero_width() -> None:
    from labkit.analysis.models import percent_apart, show_apart

    assert percent_apart(0.95, 0.9501, 0.9504) == "95% (95.01–95.04%)"
    assert show_apart(1.0, 0.99991, 1.00004) == "1 (0.9999–1)"


def test_the_throughput_figure_marks_the_trials_under_outside_load() -> None:
    from labkit import plots

    frame = _frame([{"workers": w, "wall_s": [1.0 / w] * 4, "amount": 1.0, "unit": "items"} for w in (1, 2)])
    plain = plots.scaling_figure(frame)
    assert "ran under outside load" not in plain.axes[0].get_legend_handles_labels()[1]
    loaded = plots.scaling_figure(frame.assign(under_load=frame["repeat"].eq(0)))
    labels = loaded.axes[0].get_legend_handles_labels()[1]
    assert labels.count("ran under outside load") == 1
    marks = [c for c in loaded.axes[0].collections if c.get_label() == "ran under outside load"]
    assert len(marks[0].get_offsets()) == 2  # one circle per loaded trial: repeat 0 at 1 and 2 workers
