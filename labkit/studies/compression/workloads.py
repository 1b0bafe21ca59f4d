"""Compression workload: a chunked array written to and read from Zarr 3 with a chosen codec.

The array (``size_mb`` of data, rows × 1024, chunks of about ``chunk_mb``) is generated on
the workers and persisted in ``setup``. Its ``data`` is one of:

- ``"smooth"``: a smooth float64 field, ``sin(2πi/500)·cos(2πj/700)`` (compresses);
- ``"counts"``: sparse int32 counts, Poisson with mean 0.05 (mostly zeros: compresses well);
- ``"random"``: uniform float64 noise (hardly compresses).

``codec`` is ``"none"``, ``"zstd"`` or Blosc with LZ4 or Zstandard inside, without a shuffle
(``"blosc-lz4"``, ``"blosc-zstd"``), with the byte shuffle (``…-shuffle``) or the bit
shuffle (``…-bitshuffle``); ``level`` (1–9) is the compression level, unused by ``"none"``.
With ``op="write"`` a timed run writes the array to a new Zarr store on local disk (the
previous run's store removed first, inside the timing); with ``op="read"`` ``setup``
writes it once (untimed) and a timed run reads it back and checks that its sum is the sum
of the array written, to the last bit. Throughput is in uncompressed bytes. The bytes on
disk (chunks and metadata) and the compression ratio (array bytes / bytes on disk) of the
store as last written come from :meth:`ZarrCodecs.metrics` and ``state.bytes_on_disk``.

>>> codecs_for("blosc-zstd-bitshuffle", 5)[0].cname.value, codecs_for("none", 5)
('zstd', [])
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit.workloads.disk import bytes_on_disk, check_work_path, work_folder
from labkit.workloads.registry import BaseWorkload, Work

MiB = 2**20
COLUMNS = 1024
DATA = {"smooth": "float64", "counts": "int32", "random": "float64"}
CODECS = tuple(["none", "zstd"] + [f"blosc-{c}{s}" for c in ("lz4", "zstd") for s in ("", "-shuffle", "-bitshuffle")])


def codecs_for(codec: str, level: int) -> list[Any]:
    """The Zarr 3 compressors for a ``codec`` name (an empty list: stored as raw bytes)."""
    from zarr.codecs import BloscCodec, ZstdCodec

    if codec == "none":
        return []
    if codec == "zstd":
        return [ZstdCodec(level=level)]
    _, cname, *shuffle = codec.split("-")
    return [BloscCodec(cname=cname, clevel=level, shuffle=shuffle[0] if shuffle else "noshuffle")]


def _smooth(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * i / 500.0) * np.cos(2 * np.pi * j / 700.0)


def generated_array(data: str, size_mb: float, chunk_mb: float) -> Any:
    """The array as a lazy Dask array (rows × 1024), each block made on a worker."""
    import dask.array as da

    dtype = np.dtype(DATA[data])
    rows = max(1, int(size_mb * MiB) // (COLUMNS * dtype.itemsize))
    chunk = (max(1, min(rows, int(chunk_mb * MiB) // (COLUMNS * dtype.itemsize))), COLUMNS)
    if data == "smooth":
        return da.fromfunction(_smooth, shape=(rows, COLUMNS), chunks=chunk, dtype=dtype)
    rng = da.random.default_rng(16)
    if data == "counts":
        return rng.poisson(0.05, size=(rows, COLUMNS), chunks=chunk).astype(dtype)
    return rng.random((rows, COLUMNS), chunks=chunk, dtype=dtype)


def write_zarr(x: Any, folder: Path, codec: str, level: int) -> None:
    """Write the Dask array ``x`` to a new Zarr 3 store at ``folder``, one chunk per block."""
    import dask.array as da
    import zarr

    z = zarr.create_array(
        store=str(folder),
        shape=x.shape,
        chunks=tuple(c[0] for c in x.chunks),
        dtype=x.dtype,
        compressors=codecs_for(codec, level) or None,
        zarr_format=3,
    )
    da.store(x, z, lock=False, compute=True)


@dataclass
class ZarrState:
    client: Any
    array: Any
    folder: Path
    params: dict[str, Any]
    nbytes: int
    expected_sum: float
    runs: int = 0
    bytes_on_disk: int | None = None
    last: dict[str, Any] = field(default_factory=dict)


class ZarrCodecs(BaseWorkload):
    """Write or read ``size_mb`` of smooth, sparse or random data as Zarr 3 with one codec."""

    name = "zarr-codecs"
    description = "Zarr 3 write or read of a chunked array with a codec (none, zstd, blosc)"
    defaults = {
        "size_mb": 256.0,
        "chunk_mb": 8.0,
        "data": "smooth",
        "codec": "zstd",
        "level": 3,
        "op": "write",
        "path": "",
    }
    choices = {"data": tuple(DATA), "codec": CODECS, "level": tuple(range(1, 10)), "op": ("write", "read")}
    minimum = {"size_mb": 1e-3, "chunk_mb": 1e-3}

    def check_params(self, params: dict[str, Any]) -> None:
        """The folder must be one this machine can write in (see :func:`labkit.workloads.disk.check_work_path`)."""
        check_work_path(params["path"])

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Chunks: one encode-and-write (or read-and-decode) task each."""
        return len(generated_array(params["data"], params["size_mb"], params["chunk_mb"]).chunks[0])

    def setup(self, lab: Any, **params: Any) -> ZarrState:
        from distributed import wait

        x = lab.client.persist(generated_array(params["data"], params["size_mb"], params["chunk_mb"]))
        wait(x)
        total = x.sum().compute()
        state = ZarrState(lab.client, x, work_folder(params["path"], "labkit-zarr-"), params, int(x.nbytes), total)
        if params["op"] == "read":
            write_zarr(x, state.folder / "array.zarr", params["codec"], params["level"])
            self._measure(state, state.folder / "array.zarr")
            state.array = None  # only the files are read from now on
        return state

    def run(self, state: ZarrState) -> Work:
        codec, level = state.params["codec"], state.params["level"]
        if state.params["op"] == "write":
            shutil.rmtree(state.folder / f"run-{state.runs}.zarr", ignore_errors=True)
            state.runs += 1
            target = state.folder / f"run-{state.runs}.zarr"
            write_zarr(state.array, target, codec, level)
            self._measure(state, target)
        else:
            import dask.array as da

            total = da.from_zarr(str(state.folder / "array.zarr")).sum().compute()
            if total != state.expected_sum:
                raise RuntimeError(
                    f"the array read back sums to {total!r}; the array written summed to {state.expected_sum!r}"
                )
        return Work(float(state.nbytes), "bytes")

    def _measure(self, state: ZarrState, folder: Path) -> None:
        state.bytes_on_disk, files = bytes_on_disk(folder)
        state.last = {
            "bytes_on_disk": state.bytes_on_disk,
            "files": files,
            "compression_ratio": state.nbytes / state.bytes_on_disk,
        }

    def metrics(self, state: ZarrState) -> dict[str, Any]:
        """Bytes and files on disk of the store as last written, and the compression ratio."""
        return dict(state.last)

    def teardown(self, state: ZarrState) -> None:
        state.array = None
        shutil.rmtree(state.folder, ignore_errors=True)
