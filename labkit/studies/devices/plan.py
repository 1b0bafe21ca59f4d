"""Which halves of the CPU-against-GPU study run here: the GPU half where a GPU is usable, or asked for.

>>> gpu_plan(False)
(False, 'gpu=False: the GPU half was not asked for')
"""

from __future__ import annotations

from labkit.cluster.gpu import GPU_INSTALL_HINT, gpu_status
from labkit.common.errors import BackendUnavailable, ParameterError

GPU_CHOICES = ("auto", True, False)


def gpu_plan(gpu: object = "auto") -> tuple[bool, str]:
    """Whether to run the GPU half, and why not where it does not run.

    Parameters
    ----------
    gpu : {"auto", True, False}
        ``"auto"``: where CuPy, dask-cuda, a CUDA driver and a device are all usable;
        ``True``: required (raises :class:`~labkit.common.errors.BackendUnavailable` naming
        what is missing, before any cluster work); ``False``: the CPU half only.
    """
    if gpu not in GPU_CHOICES or (gpu is not True and gpu is not False and gpu != "auto"):
        raise ParameterError("gpu", gpu, "'auto' (where a GPU is usable), True (required) or False (CPU only)")
    if gpu is False:
        return False, "gpu=False: the GPU half was not asked for"
    status = gpu_status(need_dask_cuda=True)
    if status.available:
        return True, ""
    if gpu is True:
        raise BackendUnavailable(
            f"gpu=True, and this machine cannot run the GPU half: {status.reason}. {GPU_INSTALL_HINT}"
        )
    return False, f"no usable GPU on this machine: {status.reason}"
