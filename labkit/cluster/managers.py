"""Adopting a cluster built by a cluster manager: what ``Lab(cluster=...)`` checks and may do.

A *cluster manager* is whatever builds Dask clusters: ``distributed.LocalCluster``,
dask-jobqueue (SLURM, PBS, SGE, LSF, HTCondor and its local job path), dask-kubernetes,
dask-gateway, dask-cloudprovider, Coiled. Their cluster objects share one interface, and
that interface is all a Lab uses: ``scheduler_address`` (the Client connects there, with
the object's own ``security`` where it carries one), ``scale(n)``, ``adapt(...)`` and
``close()``. :func:`check_cluster` refuses an object without it before anything connects.

What a Lab does to a cluster it adopted (:data:`ADOPTED`):

* it scales it only when asked: ``lab.scale(n)``, ``lab.adapt(...)``, a Sweep whose grid
  has ``workers``, a study that scales (each says so);
* it never closes it: ``lab.close()`` removes the scheduler plugins labkit added and closes
  the Lab's Client; the cluster keeps the workers it has then, and its adaptive mode if
  ``lab.adapt`` turned it on (:func:`stop_adapt` turns that off).

>>> check_cluster(42)
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: cluster=42 is not allowed: a Dask cluster object: it lacks scheduler_address, scale, adapt, close
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from labkit.common.errors import ClusterError, ParameterError

#: The interface a Lab uses on an adopted cluster object.
INTERFACE = ("scheduler_address", "scale", "adapt", "close")

#: What a Lab may do to a cluster it adopted, in words (shown by ``Lab`` and the notebooks).
ADOPTED = (
    "labkit scales an adopted cluster only when asked (lab.scale, lab.adapt, a sweep over workers) "
    "and never closes it: closing the Lab closes its Client and removes labkit's scheduler plugins"
)


def check_cluster(cluster: Any) -> None:
    """A ParameterError naming what ``cluster`` lacks of a Dask cluster object's interface."""
    missing = [name for name in INTERFACE if not hasattr(cluster, name)]
    missing += [name for name in INTERFACE[1:] if name not in missing and not callable(getattr(cluster, name))]
    if missing:
        raise ParameterError("cluster", cluster, f"a Dask cluster object: it lacks {', '.join(missing)}")


def manager_of(cluster: Any) -> str:
    """The cluster object's class, as ``module.Class`` (``dask_jobqueue.local.LocalCluster``)."""
    kind = type(cluster)
    return f"{kind.__module__}.{kind.__qualname__}"


def adapt_options(cluster: Any, interval_s: float | None = None) -> dict[str, Any]:
    """Keywords for ``cluster.adapt`` that set how often it decides, where the manager takes
    them from the client (Dask's ``Adaptive``: ``interval``); ``{}`` where the manager
    decides on its own side (a gateway's ``adaptive_period``)."""
    if interval_s is None:
        return {}
    params = inspect.signature(cluster.adapt).parameters
    from distributed.deploy import Cluster

    if isinstance(cluster, Cluster) or "interval" in params:
        return {"interval": f"{interval_s}s"}
    return {}


def stop_adapt(cluster: Any, handle: Any = None, timeout_s: float = 120.0) -> None:
    """Turn off adaptive scaling that ``cluster.adapt`` turned on; the cluster keeps its workers.

    ``handle`` is what ``adapt`` returned: Dask's ``Adaptive`` is stopped on the cluster's
    event loop, after any decision it had in flight; a manager that adapts on its own side
    (a gateway) is told ``adapt(active=False)``.
    """
    if handle is not None and hasattr(handle, "stop") and hasattr(cluster, "sync"):

        async def stop() -> None:  # Adaptive.stop() leaves a decision in flight to scale after it
            handle.stop(reason="labkit turned adaptive scaling off")
            while getattr(handle, "_adapting", False):
                await asyncio.sleep(0.02)

        cluster.sync(stop, callback_timeout=timeout_s)
        return
    if "active" in inspect.signature(cluster.adapt).parameters:
        cluster.adapt(active=False)
        return
    raise ClusterError(
        f"cannot turn adaptive scaling off on {manager_of(cluster)}: adapt() returned no handle to stop "
        "and takes no active=False; scale the cluster to a fixed size instead"
    )
