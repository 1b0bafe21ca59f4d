"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, through one code path.

Workload code is written once against an array module ``xp`` and runs on either backend::

    xp = array_module("numpy")          # or "cupy" on a machine with a GPU
    x = random_array((1_000_000,), chunks=100_000, backend="numpy")
    total = x.sum().compute()

CuPy calls live here (``cupy.cuda.get_current_stream().synchronize``); GPU discovery, NVML
and dask-cuda live in :mod:`labkit.cluster.gpu`. Asking for CuPy where it cannot run raises
:class:`~labkit.common.errors.BackendUnavailable` saying what is missing.

>>> check_backend("numpy")
'numpy'
>>> float(random_array((10,), chunks=5).sum().compute()) > 0
True
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from labkit.common.errors import BackendUnavailable, ParameterError

from .gpu import GPU_INSTALL_HINT, gpu_status

if TYPE_CHECKING:
    import dask.array as da

BACKENDS = ("numpy", "cupy")


def check_backend(name: object, *, parameter: str = "backend") -> str:
    """Validate a backend name and that this machine can run it; return the name."""
    if name not in BACKENDS:
        raise ParameterError(parameter, name, f"one of {', '.join(map(repr, BACKENDS))}")
    if name == "cupy":
        status = gpu_status()
        if not status.available:
            raise BackendUnavailable(
                f"{parameter}='cupy' needs CuPy and a CUDA GPU, and this machine cannot provide "
                f"them: {status.reason}. Use {parameter}='numpy', or {GPU_INSTALL_HINT} on a "
                "machine with an NVIDIA GPU."
            )
    return str(name)


def array_module(name: str) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) for a backend name."""
    check_backend(name)
    return importlib.import_module(name)


def synchronize(xp: ModuleType) -> None:
    """Block until all queued device work is done (a no-op for NumPy)."""
    if xp.__name__ == "cupy":
        xp.cuda.get_current_stream().synchronize()


def synced(block: Any) -> Any:
    """Return ``block`` once the device work that produced it has finished.

    Used as the last ``map_blocks`` step of a timed graph so that a task ends when its
    kernels end, not when they are queued.
    """
    mod = type(block).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    return block


def device_synced(x: da.Array, backend: str) -> da.Array:
    """``x`` with a last step per block that returns once the device work that produced it has
    finished (:func:`synced`), so that its tasks end when their kernels end; for NumPy, ``x``
    itself: a NumPy block is done when its task ends, and a step more per block would add its
    tasks' overhead to every timed run (16 tasks more on the quickstart's 80)."""
    return x if backend == "numpy" else x.map_blocks(synced, dtype=x.dtype)


def _device_synchronize() -> None:
    """Wait for every queued kernel on this process's current CUDA device (run on a worker)."""
    import cupy

    cupy.cuda.Device().synchronize()


def sync_workers(client: Any, backend: str) -> None:
    """Wait until every worker's device has finished its queued work (a no-op for NumPy).

    The last step before a timed region's clock stops, as dask-cuda's benchmarks do: a
    task's result may be ready on the host while kernels it queued still run.
    """
    if backend == "cupy":
        client.run(_device_synchronize)


def to_device(x: da.Array, backend: str) -> da.Array:
    """``x`` (NumPy blocks) with each block copied to ``backend``'s memory (itself for NumPy)."""
    if backend == "numpy":
        return x
    xp = array_module(backend)
    return x.map_blocks(xp.asarray, dtype=x.dtype, meta=xp.empty((0,) * x.ndim, dtype=x.dtype))


def _as_host(block: Any) -> Any:
    get = getattr(block, "get", None)  # cupy.ndarray.get() copies to a NumPy array
    return get() if callable(get) and type(block).__module__.split(".")[0] == "cupy" else block


def to_host(x: da.Array) -> da.Array:
    """``x`` with each block copied to host memory as a NumPy array (NumPy blocks unchanged)."""
    import numpy as np

    return x.map_blocks(_as_host, dtype=x.dtype, meta=np.empty((0,) * x.ndim, dtype=x.dtype))


def random_array(
    shape: tuple[int, ...],
    chunks: tuple[int, ...] | int,
    *,
    dtype: str = "float64",
    backend: str = "numpy",
    seed: int = 0,
) -> da.Array:
    """A lazily generated random Dask array whose blocks live on ``backend``."""
    import dask.array as da
    import numpy as np

    x = da.random.default_rng(seed).random(shape, chunks=chunks).astype(np.dtype(dtype))
    return to_device(x, backend)
