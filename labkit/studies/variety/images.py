"""Image workload: batched normalisation and a small 2-D convolution, on NumPy or CuPy.

A stack of ``images`` colour images of ``size`` × ``size`` pixels, ``batch`` images per Dask
block, is made on the workers and persisted in ``setup``: with ``source="photos"`` each
image is a window of one of the two photographs scikit-learn ships
(``sklearn.datasets.load_sample_images``, 427 × 640), tiled to size from its own offset;
with ``source="random"``, uniform noise. One timed run normalises each image and channel to
mean 0 and standard deviation 1 and convolves it with a small kernel (``gaussian`` 5 × 5,
``box`` 3 × 3 or ``laplacian`` 3 × 3; the image edges mirrored, as
``scipy.signal.convolve2d(..., mode="same", boundary="symm")`` does), block by block on
the backend's array module; a block with a value that is not finite fails the run. Throughput is
in bytes of image data (float32) processed.

>>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
>>> float(convolve(x, KERNELS["box"]).mean())
7.5
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.cluster import backends
from labkit.workloads.registry import BaseWorkload, Work

KERNELS = {
    "gaussian": np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256,
    "box": np.full((3, 3), 1 / 9, dtype=np.float32),
    "laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32),
}
SOURCES = ("photos", "random")


@functools.lru_cache(maxsize=1)
def photographs() -> tuple[np.ndarray, ...]:
    """The photographs scikit-learn ships (uint8, height × width × 3), read once per process."""
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


def image_batch(first: int, count: int, size: int, source: str) -> np.ndarray:
    """Images ``first .. first+count-1`` as float32 (count × size × size × 3), values 0..255."""
    if source == "random":
        rng = np.random.default_rng([15, first])
        return (rng.random((count, size, size, 3), dtype=np.float32) * 255).astype(np.float32)
    photos = photographs()
    out = np.empty((count, size, size, 3), dtype=np.float32)
    for j, i in enumerate(range(first, first + count)):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        rows = (np.arange(size) + (i * 37) % h) % h  # tiled: the window wraps round the photo
        cols = (np.arange(size) + (i * 61) % w) % w
        out[j] = photo[np.ix_(rows, cols)]
    return out


def _block(size: int, source: str, backend: str, chunks: tuple[int, ...], block_id: tuple[int, ...]) -> Any:
    first = sum(chunks[: block_id[0]])
    batch = image_batch(first, chunks[block_id[0]], size, source)
    return batch if backend == "numpy" else backends.array_module(backend).asarray(batch)


def normalise(x: Any) -> Any:
    """Each image and channel to mean 0 and standard deviation 1 (a flat one to 0)."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = x.std(axis=(1, 2), keepdims=True)
    return (x - mean) / (std + (std == 0))


def convolve(x: Any, kernel: np.ndarray) -> Any:
    """2-D convolution of each image and channel of ``x`` (n × h × w × c) with ``kernel``,
    same size, edges mirrored (``scipy.signal.convolve2d(..., "same", "symm")``)."""
    xp = backends.array_module(type(x).__module__.split(".")[0])
    kh, kw = kernel.shape
    h, w = x.shape[1:3]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = xp.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)), mode="symmetric")
    flipped = kernel[::-1, ::-1]
    out = xp.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            if flipped[i, j]:
                out += flipped[i, j] * padded[:, i : i + h, j : j + w, :]
    return out


def filter_block(x: Any, kernel: str) -> Any:
    """Normalise then convolve one block of images; raise if any value is not finite."""
    out = convolve(normalise(x), KERNELS[kernel])
    if not bool(out.size == 0 or abs(out).max() < np.inf):  # NaN fails the comparison too
        raise FloatingPointError("the filtered images hold values that are not finite")
    return out


def image_stack(images: int, size: int, batch: int, source: str, backend: str) -> Any:
    """The images as a lazy Dask array (images × size × size × 3, float32), made on the workers."""
    import dask.array as da

    xp = backends.array_module(backend)
    batch = min(batch, images)
    chunks = (batch,) * (images // batch) + ((images % batch,) if images % batch else ())
    return da.map_blocks(
        _block,
        size,
        source,
        backend,
        chunks,
        dtype=np.float32,
        chunks=(chunks, (size,), (size,), (3,)),
        meta=xp.empty((0, 0, 0, 0), dtype=np.float32),
    )


@dataclass
class ImageState:
    client: Any
    images: Any
    params: dict[str, Any]
    last: dict[str, Any] = field(default_factory=dict)


class ImageFilter(BaseWorkload):
    """Normalise and convolve ``images`` images of ``size`` × ``size`` pixels, ``batch`` per block."""

    name = "image-filter"
    description = "batched normalisation and 2-D convolution of image stacks (photographs or noise)"
    defaults = {"images": 256, "size": 256, "batch": 16, "source": "photos", "kernel": "gaussian", "backend": "numpy"}
    choices = {"source": SOURCES, "kernel": tuple(KERNELS), "backend": backends.BACKENDS}
    minimum = {"images": 1, "size": 5, "batch": 1}

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Blocks of images: one filter task each."""
        return -(-params["images"] // min(params["batch"], params["images"]))

    def setup(self, lab: Any, **params: Any) -> ImageState:
        from distributed import wait

        stack = image_stack(params["images"], params["size"], params["batch"], params["source"], params["backend"])
        stack = lab.client.persist(stack)
        wait(stack)
        return ImageState(lab.client, stack, params)

    def run(self, state: ImageState) -> Work:
        from distributed import futures_of, wait

        x = state.images
        out = state.client.persist(x.map_blocks(filter_block, state.params["kernel"], dtype=np.float32))
        futures = futures_of(out)
        wait(futures)
        failed = [f for f in futures if f.status != "finished"]
        if failed:
            failed[0].result()  # raises the block's own exception
        del out, futures
        return Work(float(x.nbytes), "bytes")

    def teardown(self, state: ImageState) -> None:
        state.images = None
