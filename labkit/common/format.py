"""Numbers in words: rates, figures with intervals, worker counts, probe units.

Every sentence and table labkit prints goes through these, so the same value reads the
same everywhere.
"""

from __future__ import annotations

import math

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_UNIT_NAMES = {"bytes": "B", "flops": "FLOP"}


def format_rate(value: float | None, unit: str) -> str:
    """A throughput with a decimal prefix, as STREAM reports.

    >>> format_rate(1.6e9, "bytes")
    '1.6 GB/s'
    >>> format_rate(2500.0, "items")
    '2.5 k items/s'
    >>> format_rate(None, "bytes")
    'n/a'
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s), (1.0, ""))
    short = _UNIT_NAMES.get(unit)
    if short:
        return f"{value / scale:.3g} {prefix}{short}/s"
    return f"{value / scale:.3g} {prefix + ' ' if prefix else ''}{unit}/s"


def format_number(value: float) -> str:
    """A figure in 3 significant digits, without exponents in the everyday range.

    >>> format_number(0.10234), format_number(12345.6), format_number(float("inf"))
    ('0.102', '12,346', '∞')
    """
    if math.isinf(value):
        return "∞"
    if value == 0 or 1e-3 <= abs(value) < 1e3:
        return f"{value:.3g}"
    return f"{value:,.0f}" if 1e3 <= abs(value) < 1e7 else f"{value:.2e}"


def format_interval(value: float, lo: float, hi: float) -> str:
    """A figure and its interval.

    >>> format_interval(0.102, 0.095, 0.11)
    '0.102 (0.095–0.11)'
    """
    return f"{format_number(value)} ({format_number(lo)}–{format_number(hi)})"


def format_workers(n: float) -> str:
    """``'1 worker'``, ``'2.5 workers'``.

    >>> format_workers(1), format_workers(4)
    ('1 worker', '4 workers')
    """
    return f"{format_number(n)} worker{'' if n == 1 else 's'}"


def format_probe_value(value: float, unit: str) -> str:
    """A hardware figure in the units people quote: seconds scaled, GB/s, GFLOP/s.

    >>> format_probe_value(1.6e10, "B/s"), format_probe_value(2.5e-5, "s")
    ('16 GB/s', '25 µs')
    """
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value * 1e9:.3g} ns"
    base = "GFLOP/s" if unit == "flop/s" else "GB/s"
    return f"{value / 1e9:.3g} {base}"
