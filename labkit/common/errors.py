"""The errors labkit raises: one hierarchy, bad arguments also ``ValueError`` or ``TypeError``.

A small hierarchy in the manner of papermill's ``exceptions.py``: every error labkit raises
is a :class:`LabkitError`; those caused by a bad argument are also ``ValueError`` or
``TypeError`` so that callers can catch them the usual way.
"""

from __future__ import annotations


class LabkitError(Exception):
    """Base class of every error labkit raises."""


class ParameterError(LabkitError, ValueError):
    """A parameter has a value that is not allowed.

    The message names the parameter, the value given, and what is allowed.
    """

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name}={value!r} is not allowed: {allowed}")


class ParameterTypeError(LabkitError, TypeError):
    """A parameter has a value of the wrong type."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"{name}={value!r} has type {type(value).__name__}; expected {expected}")


class BackendUnavailable(LabkitError, RuntimeError):
    """An array backend or a GPU was asked for but this machine cannot provide it."""


class ClusterError(LabkitError, RuntimeError):
    """The cluster could not be started, connected to, or scaled as asked."""


class TrialTimeout(LabkitError, TimeoutError):
    """A trial ran longer than its ``timeout_s``."""
