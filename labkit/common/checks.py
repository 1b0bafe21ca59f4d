"""The checks every part makes of a count or a duration it is given, before any work starts.

One wording everywhere: a count that is not an integer is a :class:`ParameterTypeError`
("int"), one below its least value a :class:`ParameterError` ("an integer >= 1"); a
duration is a finite number of seconds above 0 (or at least 0), else a ParameterError.

>>> count("workers", 2), seconds("timeout_s", 1)
(2, 1.0)
>>> count("workers", 0)
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: workers=0 is not allowed: an integer >= 1
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import ParameterError, ParameterTypeError


def count(name: str, value: Any, *, least: int = 1, none: bool = False) -> Any:
    """``value`` as an int (None where ``none`` allows it), or an error naming ``name``."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(name, value, "int" + (" or None" if none else ""))
    if value < least:
        raise ParameterError(name, value, f"an integer >= {least}")
    return int(value)


def seconds(name: str, value: Any, *, zero: bool = False, none: bool = False) -> Any:
    """``value`` as a float of seconds, finite and > 0 (>= 0 with ``zero``; None where ``none``
    allows it), or a ParameterError naming ``name``."""
    if value is None and none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        allowed = f"a finite number of seconds {'>= 0' if zero else '> 0'}"
        raise ParameterError(name, value, f"None or {allowed}" if none else allowed)
    return float(value)
