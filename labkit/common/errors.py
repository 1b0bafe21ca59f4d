"""The errors labkit raises: one hierarchy, bad arguments also ``ValueError`` or ``TypeError``.

A small hierarchy in the manner of papermill's ``exceptions.py``: every error labkit raises
is a :class:`LabkitError`; those caused by a bad argument are also ``ValueError`` or
``TypeError`` so that callers can catch them the usual way.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable

#: How values are shown in messages: short enough for one line, whatever was passed.
_SHOW = reprlib.Repr()
_SHOW.maxlevel = 4
_SHOW.maxtuple = _SHOW.maxlist = _SHOW.maxarray = _SHOW.maxdict = _SHOW.maxset = _SHOW.maxfrozenset = 24
_SHOW.maxstring = _SHOW.maxother = 200


def show(value: object) -> str:
    """A value as an error message shows it: its ``repr``, shortened in the middle when long,
    and never an error of its own (a huge integer, a ``__repr__`` that raises).

    >>> show("x" * 500)[:12], len(show("x" * 500)) < 250
    ("'xxxxxxxxxxx", True)
    >>> show(10**5000)
    '<int of about 5000 digits>'
    """
    try:
        return _SHOW.repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        if isinstance(value, int):
            return f"<int of about {value.bit_length() * 0.30103:.0f} digits>"
        return f"<{type(value).__name__}>"
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the error being reported
        return f"<{type(value).__name__}>"


def one_line(text: str) -> str:
    """``text`` with its line breaks (and the spaces around them) folded into single spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _name(name: object) -> str:
    """A parameter's name as a message shows it: as written, or quoted with escapes when it
    holds a line break or another unprintable character."""
    text = str(name)
    return text if text.isprintable() else show(text)


class LabkitError(Exception):
    """Base class of every error labkit raises."""


def did_you_mean(given: object, names: Iterable[object]) -> str:
    """``"did you mean 'repeats'? "`` where ``given`` is close to one of ``names`` (difflib's
    ratio ≥ 0.7), else "": the start of an allowed-values sentence.

    >>> did_you_mean("repeat", ["repeats", "warmup"]), did_you_mean("zzz", ["repeats"])
    ("did you mean 'repeats'? ", '')
    """
    import difflib

    by_text = {str(n): n for n in names}
    close = difflib.get_close_matches(str(given), list(by_text), n=1, cutoff=0.7)
    return f"did you mean {by_text[close[0]]!r}? " if close else ""


class ParameterError(LabkitError, ValueError):
    """A parameter has a value that is not allowed.

    The message names the parameter, the value given (shortened when long), and what is
    allowed, on one line.
    """

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{_name(name)}={show(value)} is not allowed: {one_line(allowed)}")


class ParameterTypeError(LabkitError, TypeError):
    """A parameter has a value of the wrong type."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"{_name(name)}={show(value)} has type {type(value).__name__}; expected {one_line(expected)}")


class DataError(LabkitError, ValueError):
    """The trials cannot answer what was asked of them (none finished, too few worker counts).

    Not a bad parameter: the message says what the data lack, and what would supply it.

    >>> str(DataError("no trial finished with status ok", "run the sweep, or look at Results.failures"))
    'no trial finished with status ok; run the sweep, or look at Results.failures'
    """

    def __init__(self, problem: str, remedy: str = "") -> None:
        self.problem = problem
        self.remedy = remedy
        super().__init__(one_line(f"{problem}; {remedy}" if remedy else problem))


class BackendUnavailable(LabkitError, RuntimeError):
    """An array backend or a GPU was asked for but this machine cannot provide it."""


class ClusterError(LabkitError, RuntimeError):
    """The cluster could not be started, connected to, or scaled as asked."""


class TrialTimeout(LabkitError, TimeoutError):
    """A trial ran longer than its ``timeout_s``."""
