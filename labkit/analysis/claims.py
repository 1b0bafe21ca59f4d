"""Claims in words: a ratio and its interval as a sentence, and how many runs reached a target.

The rule, for every study: a sentence claims a direction (faster or slower, sooner or later,
more or less, rose or fell, higher or lower) only when the ratio's 95% interval excludes 1
(no change). Where the interval holds 1 it says the runs cannot tell, and what would narrow
it. Where there is no interval (too few runs, repeats that do not vary) it gives the figure,
labelled an estimate, says why there is no interval and claims no direction. A ratio that
was not measured is "not measured", never a number. An interval is never printed as if it
had zero width: its ends get as many digits as it takes for them to differ (and, where a
direction is claimed, to differ from 1). :func:`ratio_words` is the one place that says it.
"""

from __future__ import annotations

import math

from labkit.common.format import format_number

from .intervals import Estimate, direction, figures


def ratio_words(
    est: Estimate,
    what: str = "",
    words: tuple[str, str] = ("faster", "slower"),
    *,
    label: str = "ratio",
    invert: bool = False,
    narrow: str = "more repeats",
) -> str:
    """A ratio in words: ``words[0]`` (above 1) or ``words[1]`` (below 1) only where its 95%
    interval excludes 1.

    Parameters
    ----------
    est : Estimate
        The ratio, its interval (NaN where not available) and, when it is not, why.
    what : str
        What the ratio is of, said after the figure: ``"the clean runs' median"`` gives
        ``"2× the clean runs' median"``. Without it the figure is ``"{label} 2×"``.
    words : (str, str)
        The direction above 1 and below 1.
    label : str, default "ratio"
        The ratio's name where ``what`` is not given, and beside an inverted figure.
    invert : bool, default False
        Say a ratio as "2× faster" rather than "2× …: faster", and one below 1 inverted,
        "2× slower (speedup 0.5×, …)", with ``label`` naming the ratio itself.
    narrow : str, default "more repeats"
        What would narrow an interval that holds 1.

    >>> ratio_words(Estimate(1.4, 1.2, 1.7), "the rounds", ("more rounds", "fewer rounds"))
    '1.4× the rounds (95% interval 1.2–1.7×): more rounds'
    >>> ratio_words(Estimate(0.5, 0.4, 0.6), label="speedup", invert=True)
    '2× slower (speedup 0.5×, 95% interval 0.4–0.6×)'
    >>> ratio_words(Estimate(2.0, 1.6, 2.4), invert=True)
    '2× faster (95% interval 1.6–2.4×)'
    >>> ratio_words(Estimate(1.1, 0.9, 1.3), "the time")
    '1.1× the time (95% interval 0.9–1.3×, which holds 1): the runs cannot tell; more repeats would narrow it'
    >>> ratio_words(Estimate(1.7, math.nan, math.nan, "interval not available: one run per point; use repeats >= 5"))
    'ratio 1.7× (an estimate: interval not available: one run per point; use repeats >= 5): no direction claimed'
    >>> ratio_words(Estimate(math.nan, math.nan, math.nan, "target not reached"), "the time")
    'the time: not measured (target not reached)'
    >>> ratio_words(Estimate(1.0002, 1.0001, 1.0003), "the time", ("slower", "faster"))
    '1.0002× the time (95% interval 1.0001–1.0003×): slower'
    """
    value, lo, hi, note = est
    if math.isnan(value):
        note = note.removeprefix("not measured").lstrip(": ")
        detail = f" ({note})" if note else ""
        return f"{what}: not measured{detail}" if what else f"not measured{detail}"
    said = direction(lo, hi)
    if said == "unknown":
        v = format_number(value)
        figure = f"{v}× {what}" if what else f"{label} {v}×"
        return f"{figure} (an estimate: {note or 'interval not available'}): no direction claimed"
    v, a, b = figures(value, lo, hi, said)
    span = f"95% interval {a}–{b}×"
    figure = f"{v}× {what}" if what else f"{label} {v}×"
    if said == "unclear":
        return f"{figure} ({span}, which holds 1): the runs cannot tell; {narrow} would narrow it"
    if not invert:
        return f"{figure} ({span}): {words[0] if said == 'up' else words[1]}"
    if said == "up":
        return f"{v}× {words[0]} ({span})"
    return f"{format_number(1 / value)}× {words[1]} ({label} {v}×, {span})"


def reached_words(reached: int, runs: int) -> str:
    """How many runs reached the target, in words."""
    if reached == runs:
        return f"reached the target in all {runs} runs" if runs > 1 else "reached the target in its one run"
    if reached == 0:
        return f"did not reach the target in any of {runs} runs" if runs > 1 else "did not reach the target"
    return f"reached the target in {reached} of {runs} runs"
