"""The cost study's sweeps: each of several workloads over the same worker counts, on one device.

>>> [s.experiment for s in sweeps({"array-sum": {"size_mb": 8.0}}, [1, 2], "numpy", experiment="demo")]
['demo/array-sum/cpu']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labkit.analysis.cost import device_of
from labkit.common.errors import ParameterError
from labkit.experiment import Sweep

if TYPE_CHECKING:
    from labkit.experiment import Results


def sweeps(
    workloads: Mapping[str, Mapping[str, Any]], workers: list[int], backend: str, *, experiment: str, **options: Any
) -> list[Sweep]:
    """One :class:`~labkit.experiment.Sweep` per workload over ``workers``, with ``backend`` set.

    Parameters
    ----------
    workloads : mapping
        Workload name to its parameters (``{"matmul": {"n": 512, "chunk": 128}}``).
    workers : list of int
        The worker counts of every sweep's grid.
    backend : str
        ``"numpy"`` or ``"cupy"``: the device the workloads run on.
    experiment : str
        Each sweep's trials are stored under ``{experiment}/{workload}/{device}``.
    **options
        Passed to every Sweep (``repeats``, ``warmup``, ``store``, ``budget_s``, ``timeout_s`` ...).
    """
    if not isinstance(workloads, Mapping) or not workloads:
        raise ParameterError(
            "workloads", workloads, 'a mapping of workload names to parameters, e.g. {"matmul": {"n": 512}}'
        )
    out = []
    for name, params in workloads.items():
        if not isinstance(params, Mapping):
            raise ParameterError(f"workloads[{name!r}]", params, "a mapping of the workload's parameters")
        out.append(
            Sweep(
                name,
                grid={"workers": list(workers)},
                params={**params, "backend": backend},
                experiment=f"{experiment}/{name}/{device_of(backend)}",
                **options,
            )
        )
    return out


def run_all(planned: list[Sweep], lab: Any) -> list[Results]:
    """Run each sweep on ``lab``, in order; their Results."""
    return [s.run(lab) for s in planned]
