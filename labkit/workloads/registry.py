"""The workload registry, in the manner of papermill's engine registry.

A workload is a named unit of work with default parameters and a two-step protocol:
``setup(lab, **params) -> state`` builds and persists inputs (not timed) and
``run(state) -> Work`` does the measured work, blocking until it is really done.
An optional ``teardown(state)`` releases what ``setup`` made, an optional
``check_params(params)`` refuses parameters that do not fit together, and an optional
``tasks(params, workers) -> int`` says how many Dask tasks one run submits (the overhead
model in :mod:`labkit.analysis.fits` uses it).

The short form for a user's own code is a decorated function, timed whole::

    @labkit.workload("my-sum")
    def my_sum(lab, n: int = 1000):
        total = lab.client.submit(sum, range(n)).result()
        return Work(n, "items")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from labkit.common.errors import LabkitError, ParameterError, ParameterTypeError, did_you_mean

UNITS = ("bytes", "flops", "items", "samples", "tasks", "trials", "rows", "tokens")


@dataclass(frozen=True)
class Work:
    """How much work one timed run did: throughput is ``amount / wall time``."""

    amount: float
    unit: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, (int, float)) or self.amount < 0:
            raise ParameterError("Work.amount", self.amount, "a number >= 0")
        if not isinstance(self.unit, str) or not self.unit:
            raise ParameterError("Work.unit", self.unit, f"a unit name such as {', '.join(UNITS)}")


@dataclass
class ClientState:
    """The state of a workload whose setup makes nothing: the client and the parameters."""

    client: Any
    params: dict[str, Any]


@runtime_checkable
class Workload(Protocol):
    """What the Sweep needs of a workload."""

    name: str
    defaults: dict[str, Any]

    def setup(self, lab: Any, **params: Any) -> Any: ...

    def run(self, state: Any) -> Work: ...


class BaseWorkload:
    """Convenience base class: validation of parameters against ``defaults`` and ``choices``.

    Subclasses set ``name``, ``defaults`` (every parameter with its default; the default's
    type is the parameter's type), optionally ``choices`` (allowed values per parameter),
    ``minimum`` and ``maximum`` (smallest and largest allowed value per numeric parameter),
    and implement ``setup`` and ``run``. Whatever they declare, a numeric parameter is
    refused when it is not finite (NaN, ±inf) or does not fit in 64 bits, and a text one
    when it holds a NUL character.
    """

    name: str = ""
    description: str = ""
    defaults: dict[str, Any] = {}
    choices: dict[str, tuple[Any, ...]] = {}
    minimum: dict[str, float] = {}
    maximum: dict[str, float] = {}

    def setup(self, lab: Any, **params: Any) -> Any:
        raise NotImplementedError

    def run(self, state: Any) -> Work:
        raise NotImplementedError

    def teardown(self, state: Any) -> None:
        """Release what ``setup`` made (default: drop references, Dask frees the data)."""

    def check_params(self, params: dict[str, Any]) -> None:
        """Refuse parameters that are each allowed but do not fit together (default: none).

        ``params`` holds every parameter of one point; raise
        :class:`~labkit.common.errors.ParameterError` naming the parameter. The Sweep calls
        it for every grid point before any cluster work starts.
        """

    def __repr__(self) -> str:
        return f"<workload {self.name!r} defaults={self.defaults}>"


def _expected_type(default: Any) -> tuple[type, ...]:
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (int, float)
    if default is None:
        return (object,)
    return (type(default),)


def check_value(workload: Any, key: str, value: Any) -> None:
    """Raise if ``value`` is not an allowed value of parameter ``key`` of ``workload``."""
    defaults = workload.defaults
    label = f"{workload.name}.{key}"
    if key not in defaults:
        allowed = ", ".join(sorted(defaults)) or "none"
        hint = did_you_mean(key, defaults)
        raise ParameterError(key, value, f"{hint}workload {workload.name!r} has parameters: {allowed}")
    types = _expected_type(defaults[key])
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise ParameterTypeError(label, value, names)
    _check_representable(label, value)
    choices = getattr(workload, "choices", {}).get(key)
    if choices is not None and value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ParameterError(label, value, f"{hint}one of {', '.join(map(repr, choices))}")
    low = getattr(workload, "minimum", {}).get(key)
    if low is not None and value < low:
        raise ParameterError(label, value, f"a value >= {low}")
    high = getattr(workload, "maximum", {}).get(key)
    if high is not None and value > high:
        raise ParameterError(label, value, f"a value <= {high}")


#: The integers NumPy, Dask and SQLite hold (int64): a parameter beyond them cannot reach a worker intact.
INT64 = (-(2**63), 2**63 - 1)


def _check_representable(label: str, value: Any) -> None:
    """Refuse a number that is not finite or does not fit in 64 bits, and text with a NUL."""
    import math

    if isinstance(value, bool):
        return
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ParameterError(label, value, "a number that fits in 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(label, value, "a finite number")
    if isinstance(value, str) and "\x00" in value:
        raise ParameterError(label, value, "text without NUL characters")


def resolve_params(workload: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``params``, each value checked."""
    if not isinstance(params, dict):
        raise ParameterTypeError("params", params, "dict of parameter name -> value")
    for key, value in params.items():
        check_value(workload, key, value)
    return {**workload.defaults, **params}


class FunctionWorkload(BaseWorkload):
    """The short form: a function ``fn(lab, **params) -> Work`` timed whole."""

    def __init__(self, name: str, fn: Callable[..., Any], description: str = "") -> None:
        self.name = name
        self.fn = fn
        self.description = description or (inspect.getdoc(fn) or "").split("\n")[0]
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if not params:
            raise LabkitError(f"workload function {fn.__name__} must take the lab as its first argument")
        missing = [p.name for p in params[1:] if p.default is inspect.Parameter.empty]
        if missing:
            raise LabkitError(
                f"workload function {fn.__name__}: every parameter after the lab needs a default "
                f"(its type is the parameter's type); missing for {', '.join(missing)}"
            )
        self.defaults = {p.name: p.default for p in params[1:]}

    def setup(self, lab: Any, **params: Any) -> Any:
        return (lab, params)

    def run(self, state: Any) -> Work:
        lab, params = state
        out = self.fn(lab, **params)
        if isinstance(out, Work):
            return out
        if isinstance(out, tuple) and len(out) == 2:
            return Work(*out)
        raise LabkitError(f"workload {self.name!r} returned {type(out).__name__}; return Work(amount, unit)")


_REGISTRY: dict[str, Workload] = {}
_ORIGIN: dict[str, tuple[str, str]] = {}  # name -> (module, qualname) of what registered it
ENTRY_POINT_GROUP = "labkit.workloads"


def _origin(obj: Any) -> tuple[str, str]:
    target = getattr(obj, "fn", obj)
    target = target if inspect.isclass(target) or inspect.isfunction(target) else type(target)
    return getattr(target, "__module__", ""), getattr(target, "__qualname__", "")


def register(workload: Workload, *, replace: bool = False) -> Workload:
    """Add a workload object to the registry under its ``name``.

    A name already taken raises :class:`~labkit.common.errors.LabkitError` unless
    ``replace=True``, so that a plugin or a typo cannot silently shadow another workload.
    """
    name = getattr(workload, "name", None)
    if not isinstance(name, str) or not name:
        raise LabkitError(f"workload {workload!r} has no name")
    for attr in ("defaults", "setup", "run"):
        if not hasattr(workload, attr):
            raise LabkitError(f"workload {name!r} has no {attr!r}: see labkit.workloads.Workload")
    if name in _REGISTRY and not replace:
        module, qualname = _ORIGIN.get(name, ("", ""))
        raise LabkitError(
            f"a workload named {name!r} is already registered (by {module}.{qualname}); "
            "choose another name, or pass replace=True to replace it"
        )
    _REGISTRY[name] = workload
    _ORIGIN[name] = _origin(workload)
    return workload


def workload(name: str, *, description: str = "", replace: bool = False) -> Callable[[Any], Any]:
    """Decorator registering a function (short form) or a workload class under ``name``.

    Running the same definition again (a notebook cell re-run) replaces it; another
    definition under a taken name raises unless ``replace=True``.
    """

    def decorate(obj: Any) -> Any:
        again = _ORIGIN.get(name) == _origin(obj)
        if inspect.isclass(obj):
            instance = obj()
            instance.name = name
            register(instance, replace=replace or again)
        else:
            register(FunctionWorkload(name, obj, description), replace=replace or again)
        return obj

    return decorate


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> dict[str, str]:
    """Register the workloads other packages declare in the ``labkit.workloads`` entry-point group.

    Each entry point names a workload object, a workload class (instantiated), or a plain
    function (timed whole, as with :func:`workload`); its name is the workload's name. A
    package declares one in its ``pyproject.toml``::

        [project.entry-points."labkit.workloads"]
        my-sum = "my_package.workloads:MySum"

    labkit's own workloads are in the same group and load first, so a plugin cannot take a
    built-in's name. Called once, on the first :func:`get` or :func:`names`. A plugin that fails to load,
    or whose name is taken, is skipped with a warning. Returns ``name -> why`` for each
    skipped one.
    """
    import warnings
    from importlib.metadata import entry_points

    skipped = {}
    # labkit's own first: a plugin cannot take a built-in's name, whatever order the
    # installed packages list their entry points in.
    found = sorted(entry_points(group=group), key=lambda ep: not ep.value.startswith("labkit."))
    for ep in found:
        try:
            obj = ep.load()
            if inspect.isclass(obj):
                obj = obj()
            if inspect.isfunction(obj):
                obj = FunctionWorkload(ep.name, obj, "")
            if getattr(obj, "name", ep.name) != ep.name:
                obj.name = ep.name
            register(obj)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break labkit
            skipped[ep.name] = f"{type(e).__name__}: {e}"
            warnings.warn(f"labkit: workload plugin {ep.name!r} ({ep.value}) skipped: {e}", stacklevel=2)
    return skipped


_plugins_loaded = False


def _load_plugins_once() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        load_entry_points()


def get(name: str) -> Workload:
    """The registered workload called ``name``."""
    _load_plugins_once()
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    raise ParameterError("workload", name, f"one of {', '.join(map(repr, names()))}")


def names() -> list[str]:
    """Names of all registered workloads, sorted."""
    _load_plugins_once()
    return sorted(_REGISTRY)
