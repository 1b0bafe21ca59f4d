"""Trustworthy timing: the median's interval, adaptive repeats, warm-up detection."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.analysis.intervals import MIN_REPEATS
from labkit.common.errors import ParameterError, ParameterTypeError
from labkit.experiment.timing import Budget, Repeats, Warmup, ci_available, spread


def test_median_interval_covers_the_true_median():
    """Over many samples from a known distribution, the 95% interval covers close to 95% of the time.

    400 draws: a binomial 95% band around 0.95 is about ±0.022; BCa for a median from 15 runs
    is known to sit a little below nominal, so the floor is 0.88."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(400):
        x = rng.lognormal(0.0, 0.3, size=15)  # true median exp(0) = 1
        s = spread(x)
        hits += s["ci_lo"] <= 1.0 <= s["ci_hi"]
    assert 0.88 <= hits / 400 <= 0.995


def test_interval_needs_the_analysis_minimum_of_runs():
    """The timing policy and the analysis share one median interval, from the same number of runs."""
    assert not ci_available(MIN_REPEATS - 1) and ci_available(MIN_REPEATS)
    s = spread([3.0, 1.0, 2.0, 6.0, 5.0, 4.0])
    assert s["median"] == 3.5 and 1.0 <= s["ci_lo"] < 3.5 < s["ci_hi"] <= 6.0
    assert spread([1.0, 1.0, 1.0])["ci_rel"] is None
    assert spread([1.0] * 8)["ci_rel"] is None  # repeats that do not vary: no zero-width interval


def test_fixed_and_adaptive_repeats():
    fixed = Repeats.parse(4)
    assert not fixed.adaptive and not fixed.enough([1.0] * 3) and fixed.enough([1.0] * 4)
    auto = Repeats.parse("auto", target=0.03, maximum=12)
    tight = [1.0, 1.005, 0.995, 1.0, 1.01, 0.99]
    assert auto.enough(tight)
    noisy = [1.0, 1.3, 0.8, 1.2, 0.9, 1.1, 0.7]
    assert not auto.enough(noisy)
    assert auto.enough(noisy + [1.0] * 5)  # the cap


@pytest.mark.parametrize(
    "value, kwargs, error, words",
    [
        (0, {}, ParameterError, "repeats=0"),
        ("many", {}, ParameterTypeError, "int or 'auto'"),
        ("auto", {"target": 0}, ParameterError, "ci_target=0"),
        ("auto", {"maximum": 3}, ParameterError, "max_repeats=3"),
    ],
)
def test_bad_repeats(value, kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(")):
        Repeats.parse(value, **kwargs)


def test_auto_warmup_runs_until_two_runs_agree():
    durations = iter([2.0, 1.4, 1.02, 1.0, 1.0, 1.0])
    assert Warmup.parse("auto").run(lambda: next(durations)) == [2.0, 1.4, 1.02, 1.0]
    steady = iter([1.0] * 9)
    assert Warmup.parse("auto").run(lambda: next(steady)) == [1.0, 1.0]
    never = iter([5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    assert len(Warmup.parse("auto").run(lambda: next(never))) == 5  # capped
    assert Warmup.parse(0).run(lambda: 1 / 0) == []
    with pytest.raises(ParameterError, match="warmup=-1"):
        Warmup.parse(-1)


def test_a_budget_is_spent_once_and_remembers_when():
    assert not Budget(None).spent() and Budget(None).spent_after is None
    budget = Budget(1e-6)
    while not budget.spent():
        pass
    first = budget.spent_after
    assert first >= 1e-6 and budget.spent() and budget.spent_after == first  # stays spent, at the same time
    roomy = Budget(3600)
    assert not roomy.spent() and roomy.spent_after is None


@pytest.mark.parametrize("value", [0, -1, float("nan"), True, "60"])
def test_bad_budgets_are_refused_like_timeouts(value):
    with pytest.raises(ParameterError, match="None or a number of seconds > 0"):
        Budget(value)
