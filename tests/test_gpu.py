"""The GPU path for real: CuPy workloads, a dask-cuda cluster, NVML energy, the GPU probe.

Every test here is marked ``gpu``: it runs where CuPy and a CUDA device are usable (``make
test-gpu``) and is skipped elsewhere with the reason. Nothing is faked: without a GPU these
tests do not run, and the no-GPU behaviour is checked by the ``no_gpu`` tests instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import labkit
from labkit import workloads
from labkit.cluster import backends
from labkit.cluster.gpu import gpu_power_reader, gpu_status
from labkit.probes import run_probes, stream_bandwidth

try:
    from .test_devices import PLAIN as DEVICE_PLAIN
except ImportError:
    from test_devices import PLAIN as DEVICE_PLAIN  # type: ignore[no-redef]

pytestmark = pytest.mark.gpu

# The operation each array workload times, applied to its setup's inputs, so that the
# NumPy and CuPy results of the very same graph can be compared.
OPERATIONS = {
    "array-sum": (lambda a: a["x"].sum(), {"size_mb": 8.0, "chunk_mb": 1.0}),
    "array-triad": (lambda a: a["b"] + 3.0 * a["c"], {"size_mb": 8.0, "chunk_mb": 1.0}),
    "matmul": (lambda a: a["a"] @ a["b"], {"n": 512, "chunk": 256}),
}


@pytest.fixture(scope="module")
def cpu_lab() -> Iterator[labkit.Lab]:
    """Threads of this process: CuPy arrays and NumPy arrays share one device context."""
    with labkit.Lab(workers=1, threads_per_worker=2, processes=False, dashboard=False) as lab:
        yield lab


def _as_numpy(value: object) -> np.ndarray:
    return value.get() if hasattr(value, "get") else np.asarray(value)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_array_workload_on_cupy_gives_the_numpy_result(cpu_lab: labkit.Lab, name: str) -> None:
    op, params = OPERATIONS[name]
    wl = workloads.get(name)
    results, work = {}, {}
    for backend in ("numpy", "cupy"):
        state = wl.setup(cpu_lab, **{**wl.defaults, **params, "backend": backend})
        try:
            value = op(state.arrays).compute()
            assert type(value).__module__.split(".")[0] == backend  # really computed on that module
            results[backend] = _as_numpy(value)
            work[backend] = wl.run(state)
        finally:
            wl.teardown(state)
    rtol = 1e-6 if name == "matmul" else 1e-12  # cuBLAS sums in another order than OpenBLAS
    np.testing.assert_allclose(results["cupy"], results["numpy"], rtol=rtol)
    assert work["cupy"] == work["numpy"]


def test_cupy_sweep_records_trials(cpu_lab: labkit.Lab, tmp_path) -> None:
    results = labkit.Sweep(
        "matmul",
        grid={"backend": ["numpy", "cupy"]},
        params={"n": 512, "chunk": 256},
        repeats=2,
        warmup=1,
        store=tmp_path / "gpu.db",
    ).run(cpu_lab, live=False)
    frame = results.frame
    assert set(frame["backend"]) == {"numpy", "cupy"} and (frame["status"] == "ok").all()
    assert (frame["throughput"] > 0).all()


def test_synchronize_waits_for_the_device() -> None:
    cp = backends.array_module("cupy")
    x = cp.ones(1 << 24, dtype=cp.float32)
    y = x * 2
    backends.synchronize(cp)
    assert cp.cuda.get_current_stream().done
    assert float(y.sum()) == 2.0 * (1 << 24)


def test_gpu_cluster_starts_and_scales() -> None:
    pytest.importorskip("dask_cuda", reason="dask-cuda is not installed: pip install 'labkit[gpu]'")
    devices = gpu_status().devices
    with labkit.Lab(gpu=True, dashboard=False) as lab:
        assert lab.kind == "gpu" and lab.workers == devices  # one worker per GPU
        x = backends.random_array((1 << 20,), chunks=1 << 18, backend="cupy")
        assert float(lab.client.compute(x.sum()).result()) == pytest.approx(
            float(backends.random_array((1 << 20,), chunks=1 << 18).sum().compute())
        )
        if devices > 1:
            lab.scale(1)
            assert lab.workers == 1
        lab.scale(devices)
        assert lab.workers == devices


def test_nvml_energy_is_measured_during_a_trial(tmp_path) -> None:
    pytest.importorskip("dask_cuda", reason="dask-cuda is not installed: pip install 'labkit[gpu]'")
    mode, reader = gpu_power_reader()
    if reader is None:
        pytest.skip("NVML reports neither an energy counter nor power for this GPU")
    with labkit.Lab(gpu=True, dashboard=False) as lab:
        results = labkit.Sweep(
            "matmul",
            grid={"n": [4096]},
            params={"chunk": 2048, "backend": "cupy"},
            repeats=3,
            warmup=1,
            store=tmp_path / "energy.db",
        ).run(lab, live=False)
    frame = results.frame
    assert (frame["status"] == "ok").all()
    # A trial shorter than the counter's update period (or the monitor's readings) is
    # "below-resolution", never 0 J; a measured one names NVML and counted something.
    methods = frame["energy_method"]
    read = methods.str.contains("nvml") | methods.eq("below-resolution")
    assert read.all(), frame[["wall_s", "energy_method"]]
    measured = frame[methods.str.contains("nvml")]
    assert (measured["energy_j"] > 0).all(), measured[["wall_s", "energy_j"]]
    assert frame["energy_j"][methods.eq("below-resolution")].isna().all()


def test_gpu_probe_measures_the_device() -> None:
    probe = run_probes(None, array_mb=64, matmul_n=1024, repeats=3)
    assert "gpu/memory" not in probe.missing
    gpu = probe.gpu
    assert gpu is not None and 1e9 < gpu.triad_best < 1e13  # 1 GB/s .. 10 TB/s
    assert probe.flops("gpu", "float32") > 1e10
    direct = stream_bandwidth(backends.array_module("cupy"), 64 * 2**20, repeats=3)
    assert direct.triad_best == pytest.approx(gpu.triad_best, rel=0.5)  # the same kernel, another run


# -- array-ops (notebook 02's workload), NVML energy, notebook 02 end to end ------------------

# What each operation computes, in plain NumPy (tests/test_devices.py's), and the copies.
PLAIN = {**DEVICE_PLAIN, "h2d": lambda x: x, "d2h": lambda x: x}


@pytest.mark.parametrize("op", sorted(PLAIN))
def test_array_ops_on_cupy_give_the_numpy_result(cpu_lab: labkit.Lab, op: str) -> None:
    wl = workloads.get("array-ops")
    state = wl.setup(cpu_lab, **workloads.resolve_params(wl, {"op": op, "n": 256, "chunk": 96, "backend": "cupy"}))
    try:
        inputs = [_as_numpy(cpu_lab.client.compute(a).result()) for a in state.arrays]
        value = cpu_lab.client.compute(wl.expression(state)).result()
        expected_module = "numpy" if op == "d2h" else "cupy"
        assert type(value).__module__.split(".")[0] == expected_module  # really computed on that module
        rtol = 1e-6 if op in ("dot", "fft") else 1e-12  # cuBLAS / cuFFT sum in another order
        np.testing.assert_allclose(_as_numpy(value), PLAIN[op](*inputs), rtol=rtol, atol=1e-9)
        work = wl.run(state)
        assert work == labkit.Work(256 * 256 * 8 * len(inputs), "bytes")
        copied = wl.metrics(state)["transfer_s"]
        assert (copied is None) if op == "h2d" else copied > 0  # the copy to the device, timed apart
    finally:
        wl.teardown(state)


def test_nvml_energy_counter_and_integrated_power_agree_over_five_seconds() -> None:
    """The GPU's energy counter and its power integrated at 10 Hz, over a 5 s window of matmuls."""
    from labkit.cluster.gpu import gpu_energy_readers
    from labkit.measure.power import nvml_window

    readers = gpu_energy_readers()
    if not {"energy", "power"} <= set(readers):
        pytest.skip(f"NVML reports only {sorted(readers)} for this GPU: both are needed to compare them")

    by_counter, by_power, _ = nvml_window(readers, 5.0)
    assert by_counter > 0 and by_power > 0
    assert by_counter == pytest.approx(by_power, rel=0.25)  # within 25%: both sample the same GPU


def test_notebook_02_runs_both_halves_end_to_end(tmp_path) -> None:
    pytest.importorskip("dask_cuda", reason="dask-cuda is not installed: pip install 'labkit[gpu]'")
    from pathlib import Path

    from labkit import ResultStore
    from labkit.report import run_notebook
    from labkit.studies import devices

    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "02_cpu_vs_gpu.ipynb"
    store = tmp_path / "nb02.db"
    params = {
        "ops": ["transpose_sum", "dot", "sum", "fft", "sort"],
        "sizes": [256, 2048],
        "chunk": 256,
        "repeats": 5,
        "warmup": 1,
        "gpu": True,
        "probe_mb": 16.0,
        "experiment": "nb02-gpu",
        "store": str(store),
    }
    result = run_notebook(notebook, params, tmp_path / "out", cwd=tmp_path)
    assert result.ok, result.error
    with ResultStore(store) as s:
        frame = devices.trials(s.trials_frame("nb02-gpu/cpu"), s.trials_frame("nb02-gpu/gpu"))
    assert set(frame["backend"]) == {"numpy", "cupy"} and (frame["status"] == "ok").all()
    gpu = frame[frame["backend"] == "cupy"]
    assert gpu["gpu_memory_peak_bytes"].notna().any()  # device memory reaches the resource summary
    assert gpu.loc[gpu["op"] != "h2d", "transfer_s"].gt(0).all()  # the inputs' copy, timed apart
    assert set(devices.copy_table(frame)["op"]) == {"h2d", "d2h"}
    for op in params["ops"]:
        assert devices.crossover(frame, op).status in ("reached", "not reached")
    assert "GPU: not measured" not in str(devices.describe_devices(frame))
