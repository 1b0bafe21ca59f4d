"""Probe results kept in the store, keyed by environment fingerprint, cluster shape and parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

from .records import HardwareProbe

if TYPE_CHECKING:
    pass

from .run import run_probes


def cached_probes(lab: Any = None, store: Any = None, *, refresh: bool = False, **params: Any) -> HardwareProbe:
    """:func:`run_probes`, cached in the result store per environment and cluster shape.

    The key is the environment fingerprint (host, CPU, memory, GPUs, package versions),
    the cluster's workers and threads, and the probe parameters: a probe is re-run when
    any of them changes, or with ``refresh=True``.
    """
    import json

    from labkit.cluster.env import capture, fingerprint
    from labkit.store import ResultStore

    shape = {} if lab is None else {k: v for k, v in lab.info().items() if k in ("workers", "threads", "memory_limit")}
    key = "probe:" + fingerprint(capture()) + ":" + json.dumps({**shape, **params}, sort_keys=True)
    own = not isinstance(store, ResultStore)
    db = ResultStore(store) if own else store
    try:
        hit = None if refresh else db.cache_get(key)
        if hit is not None:
            try:
                return HardwareProbe.from_dict(hit)
            except ParameterError:  # an older probe format: measure again
                pass
        probe = run_probes(None if lab is None else lab.client, **params)
        db.cache_put(key, probe.to_dict())
        return probe
    finally:
        if own:
            db.close()
