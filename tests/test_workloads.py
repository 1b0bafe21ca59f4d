"""The workload registry and the built-in workloads on a real cluster."""

from __future__ import annotations

import pytest

import labkit
from labkit import workloads
from labkit.common.errors import BackendUnavailable, ParameterError, ParameterTypeError
from labkit.workloads import Work


def test_builtins_are_registered():
    assert {"array-sum", "array-triad", "matmul", "task-overhead"} <= set(workloads.names())
    assert workloads.get("array-sum").defaults["backend"] == "numpy"


def test_unknown_workload_lists_the_known_ones():
    with pytest.raises(ParameterError) as err:
        workloads.get("array-summ")
    assert "array-sum" in str(err.value) and "workload" in str(err.value)


def test_decorated_function_is_a_workload(lab):
    @labkit.workload("test-count")
    def count(lab, n: int = 10, label: str = "x"):
        return Work(lab.client.submit(sum, range(n)).result(), "items")

    wl = workloads.get("test-count")
    assert wl.defaults == {"n": 10, "label": "x"}
    assert wl.run(wl.setup(lab, n=5, label="y")) == Work(10, "items")


def test_function_parameters_need_defaults():
    with pytest.raises(labkit.LabkitError, match="needs a default"):
        labkit.workload("bad")(lambda lab, n: n)


@pytest.mark.parametrize(
    "key, value, error, words",
    [
        ("size", 1.0, ParameterError, "size_mb"),
        ("size_mb", "64", ParameterTypeError, "int or float"),
        ("size_mb", -1.0, ParameterError, ">= 0.001"),
        ("dtype", "int8", ParameterError, "'float32', 'float64'"),
        ("backend", "jax", ParameterError, "'numpy', 'cupy'"),
    ],
)
def test_parameter_checks(key, value, error, words):
    with pytest.raises(error) as err:
        workloads.resolve_params(workloads.get("array-sum"), {key: value})
    assert words in str(err.value)


@pytest.mark.no_gpu
def test_cupy_without_gpu_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="backend='cupy' needs CuPy"):
        labkit.Sweep("array-sum", grid={"backend": ["cupy"]})


def _run(lab, name, **params):
    wl = workloads.get(name)
    state = wl.setup(lab, **workloads.resolve_params(wl, params))
    try:
        return wl.run(state)
    finally:
        wl.teardown(state)


def test_array_sum_counts_bytes_read(lab):
    assert _run(lab, "array-sum", size_mb=2.0, chunk_mb=0.5) == Work(2 * 2**20, "bytes")


def test_array_triad_counts_three_arrays(lab):
    assert _run(lab, "array-triad", size_mb=1.0, chunk_mb=0.25, dtype="float32") == Work(5 * 2**20, "bytes")


def test_matmul_counts_flops(lab):
    assert _run(lab, "matmul", n=256, chunk=128) == Work(2.0 * 256**3, "flops")


def test_task_overhead_counts_tasks(lab):
    assert _run(lab, "task-overhead", tasks=50) == Work(50, "tasks")
