"""Probe results kept in the store, keyed by environment fingerprint, cluster shape and parameters.

A probe measures the machine's limits only when nothing else loaded it: one flagged
``under_load`` (see :mod:`labkit.probes.run`) is never cached, and a flagged record found in
the store (put there by other means) is never served. The cores' own scaling ceiling
(:class:`ConcurrencyCeiling`) is also kept on its own, per machine and software only (it does
not depend on the cluster's shape): :func:`cached_ceiling` is where a conclusion finds it.
"""

from __future__ import annotations

from typing import Any

from labkit.common.errors import ParameterError

from .concurrency import LoadWatch
from .records import ConcurrencyCeiling, HardwareProbe
from .run import run_probes

CEILING_PREFIX = "concurrency:"


def cached_probes(
    lab: Any = None, store: Any = None, *, refresh: bool = False, watch: LoadWatch | None = None, **params: Any
) -> HardwareProbe:
    """:func:`run_probes`, cached in the result store per environment and cluster shape.

    The key is the environment fingerprint (host, CPU, memory, GPUs, package versions),
    the cluster's workers and threads, and the probe parameters: a probe is re-run when
    any of them changes, or with ``refresh=True``. A probe taken under outside load is
    returned but not cached; a cached one flagged so is measured again. Its concurrency
    ceiling, when not under load, is kept for :func:`cached_ceiling` too. ``watch`` reads the
    outside load (:data:`~labkit.probes.concurrency.LoadWatch`; ``labkit probe`` gives one):
    without it the load is not measured, and the probe is cached with ``under_load`` None.
    """
    import json

    from labkit.cluster.env import capture, fingerprint

    shape = {} if lab is None else {k: v for k, v in lab.info().items() if k in ("workers", "threads", "memory_limit")}
    snap = capture()
    key = "probe:" + fingerprint(snap) + ":" + json.dumps({**shape, **params}, sort_keys=True)
    with _opened(store) as db:
        probe = None if refresh else _served(db.cache_get(key))
        if probe is None:
            probe = run_probes(None if lab is None else lab.client, watch=watch, **params)
            if probe.under_load is not True:
                db.cache_put(key, probe.to_dict())
        if probe.concurrency is not None:
            keep_ceiling(db, probe.concurrency, snap)
        return probe


def _served(hit: Any) -> HardwareProbe | None:
    """The cached probe, or None: none, an older format, or one taken under outside load."""
    if hit is None:
        return None
    try:
        probe = HardwareProbe.from_dict(hit)
    except ParameterError:  # an older probe format: measure again
        return None
    return None if probe.under_load is True else probe


def ceiling_key(snap: dict[str, Any] | None = None) -> str:
    """The store's cache key of this machine's concurrency ceiling: machine and software (``snap``:
    a :func:`labkit.cluster.env.capture` snapshot, by default this process's)."""
    from labkit.cluster.env import capture, fingerprint

    return CEILING_PREFIX + fingerprint(capture() if snap is None else snap)


def keep_ceiling(store: Any, ceiling: ConcurrencyCeiling, snap: dict[str, Any] | None = None) -> bool:
    """Cache ``ceiling`` as the machine's, unless it was taken under outside load; whether it was kept."""
    if ceiling.under_load is True:
        return False
    with _opened(store) as db:
        db.cache_put(ceiling_key(snap), ceiling.to_dict())
    return True


def cached_ceiling(store: Any = None, snap: dict[str, Any] | None = None) -> ConcurrencyCeiling | None:
    """This machine's cached concurrency ceiling (``snap``: the run's environment), or None: not
    measured, unreadable, or flagged ``under_load`` (never served as a ceiling)."""
    with _opened(store) as db:
        hit = db.cache_get(ceiling_key(snap))
    if hit is None:
        return None
    try:
        ceiling = ConcurrencyCeiling.from_dict(hit)
    except (KeyError, TypeError, ValueError):
        return None
    return None if ceiling.under_load is True else ceiling


class _opened:
    """``store`` as an open ResultStore: the one given, or one opened (and closed) on its path."""

    def __init__(self, store: Any) -> None:
        from labkit.store import ResultStore

        self.own = not isinstance(store, ResultStore)
        self.db = ResultStore(store) if self.own else store

    def __enter__(self) -> Any:
        return self.db

    def __exit__(self, *exc: object) -> None:
        if self.own:
            self.db.close()
