"""CUDA GPUs: what this process can see, the dask-cuda cluster, and NVML energy readings.

Every dask-cuda and NVML call in labkit lives here (CuPy's array calls are in
:mod:`labkit.cluster.backends`). The paths are written against the documented APIs of
CuPy, dask-cuda (``LocalCUDACluster``) and Dask's own NVML wrapper
(``distributed.diagnostics.nvml``); where a piece is missing, :func:`gpu_status` says which.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from labkit.common.errors import BackendUnavailable

GPU_INSTALL_HINT = "install the GPU extra: pip install 'labkit[gpu]' (cupy, dask-cuda, nvidia-ml-py)"


@dataclass(frozen=True)
class GPUStatus:
    """What this process can see of CUDA GPUs, and why not when it sees none."""

    devices: int
    names: tuple[str, ...] = ()
    memory_total: tuple[int, ...] = ()
    missing: tuple[str, ...] = field(default=())

    @property
    def available(self) -> bool:
        return self.devices > 0 and not self.missing

    @property
    def reason(self) -> str:
        """One sentence on what is missing (empty when a GPU is usable)."""
        return "; ".join(self.missing)


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - ImportError, or a CUDA library failing to load
        return None


def _nvml_devices() -> tuple[int, tuple[str, ...], tuple[int, ...], str]:
    """Device count, names and memory through Dask's NVML wrapper."""
    from distributed.diagnostics import nvml

    try:
        count = nvml.device_get_count()
    except Exception as e:  # noqa: BLE001 - NVML reports many kinds of failure
        return 0, (), (), f"NVML failed: {e}"
    if count == 0:
        state = getattr(nvml, "NVML_STATE", None)
        why = {
            "DISABLED_PYNVML_NOT_AVAILABLE": "nvidia-ml-py (pynvml) is not installed",
            "DISABLED_LIBRARY_NOT_FOUND": "the NVIDIA driver's NVML library was not found (no NVIDIA driver)",
            "DISABLED_CONFIG": "NVML is disabled by the dask config 'distributed.diagnostics.nvml'",
            "DISABLED_WSL_INSUFFICIENT_DRIVER": "the NVIDIA driver is too old for WSL",
        }.get(getattr(state, "name", ""), "NVML reports no CUDA device")
        return 0, (), (), why
    import pynvml

    names, mems = [], []
    for i in range(count):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        name = pynvml.nvmlDeviceGetName(h)
        names.append(name.decode() if isinstance(name, bytes) else str(name))
        mems.append(int(pynvml.nvmlDeviceGetMemoryInfo(h).total))
    return count, tuple(names), tuple(mems), ""


#: The CUDA driver's library (``libcuda``), which CuPy needs at run time, by platform.
CUDA_DRIVER_LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")


def cuda_driver() -> str:
    """``""`` where the CUDA driver's library loads in this process, else why not (in words).

    CuPy imports without a driver and fails at its first kernel; this says so up front.
    """
    import ctypes

    for name in CUDA_DRIVER_LIBRARIES:
        try:
            ctypes.CDLL(name)
            return ""
        except OSError:
            continue
    return f"no CUDA driver: none of {', '.join(CUDA_DRIVER_LIBRARIES)} could be loaded (install the NVIDIA driver)"


def gpu_status(*, need_dask_cuda: bool = False) -> GPUStatus:
    """Report the CUDA GPUs this process can use and, if none, everything that is missing:
    CuPy, dask-cuda (with ``need_dask_cuda``), the CUDA driver, and a visible device."""
    missing = []
    if _import("cupy") is None:
        missing.append("CuPy is not installed")
    if need_dask_cuda and _import("dask_cuda") is None:
        missing.append("dask-cuda is not installed")
    driver = cuda_driver()
    if driver:
        missing.append(driver)
    count, names, mems, why = _nvml_devices()
    if count == 0:
        missing.append(f"no CUDA device is visible ({why})")
    return GPUStatus(count, names, mems, tuple(missing))


def start_gpu_cluster(
    *,
    workers: int | None,
    threads_per_worker: int | None,
    memory_limit: str | int | None,
    dashboard_address: str | None,
    **kwargs: Any,
) -> Any:
    """Start dask-cuda's ``LocalCUDACluster`` (one worker per visible GPU by default).

    Raises :class:`BackendUnavailable` naming what is missing when dask-cuda, CuPy or a
    CUDA device is absent.
    """
    status = gpu_status(need_dask_cuda=True)
    if not status.available:
        raise BackendUnavailable(
            f"gpu=True cannot start a GPU cluster: {status.reason}. {GPU_INSTALL_HINT}; "
            "a GPU cluster also needs an NVIDIA GPU and its driver."
        )
    from dask_cuda import LocalCUDACluster

    options: dict[str, Any] = {"dashboard_address": dashboard_address, **kwargs}
    if workers is not None:
        options["n_workers"] = workers
    if threads_per_worker is not None:
        options["threads_per_worker"] = threads_per_worker
    if memory_limit is not None:
        options["memory_limit"] = memory_limit
    return LocalCUDACluster(**options)


def gpu_energy_readers() -> dict[str, Callable[[], float]]:
    """Every NVML reading of the visible GPUs' energy that works here, summed over the GPUs.

    ``"energy"``: joules since the driver loaded (``nvmlDeviceGetTotalEnergyConsumption``,
    Volta and newer); ``"power"``: watts now (``nvmlDeviceGetPowerUsage``), to be integrated
    by the caller. Empty without NVML, a driver, a GPU, or either reading.
    """
    try:
        from distributed.diagnostics import nvml

        count = nvml.device_get_count()
        if count < 1:
            return {}
        import pynvml

        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    except Exception:  # noqa: BLE001 - no NVML, no driver, no GPU: not measured
        return {}
    readers = {
        "energy": lambda: sum(pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles) / 1e3,  # mJ -> J
        "power": lambda: sum(pynvml.nvmlDeviceGetPowerUsage(h) for h in handles) / 1e3,  # mW -> W
    }
    working = {}
    for mode, reader in readers.items():
        try:
            reader()
            working[mode] = reader
        except Exception:  # noqa: BLE001 - NVMLError_NotSupported and kin
            continue
    return working


def gpu_power_reader() -> tuple[str | None, Callable[[], float] | None]:
    """A reader of the visible GPUs' energy through NVML, and what it reads.

    ``("energy", f)``: ``f()`` is joules since the driver loaded (Volta and newer);
    ``("power", f)``: ``f()`` is watts now, to be integrated by the caller;
    ``(None, None)`` without NVML, a driver, a GPU, or either counter. The energy counter
    is preferred where both work (see :func:`gpu_energy_readers`).
    """
    readers = gpu_energy_readers()
    for mode in ("energy", "power"):
        if mode in readers:
            return mode, readers[mode]
    return None, None


def gpu_info() -> list[dict[str, Any]]:
    """Name and memory of each visible GPU (empty without one), for environment records."""
    status = gpu_status()
    return [{"name": n, "memory_total": m} for n, m in zip(status.names, status.memory_total)]
