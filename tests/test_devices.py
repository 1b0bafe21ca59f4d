"""The CPU-against-GPU study on the CPU: each operation's result, its parameter checks, the crossover
rule on crafted trials, what a machine without a GPU says, and notebook 02 run headless."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

import labkit
from labkit import ResultStore, workloads
from labkit.cluster import backends
from labkit.cluster.gpu import gpu_status
from labkit.common.errors import BackendUnavailable, ParameterError
from labkit.studies import devices
from labkit.workloads.device_ops import COMPUTE_OPS

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_cpu_vs_gpu.ipynb"

# What each operation computes, written in plain NumPy on the whole inputs.
PLAIN = {
    "transpose_sum": lambda x: (x + x.T).sum(),
    "dot": lambda x, y: x @ y,
    "sum": lambda x: x.sum(),
    "mean": lambda x: x.mean(),
    "slice": lambda x: x[::3].copy(),
    "fft": lambda x: np.fft.fft(x, axis=0),
    "sort": lambda x: np.sort(x, axis=1),
}


@pytest.mark.parametrize("op", COMPUTE_OPS)
def test_each_operation_gives_the_plain_numpy_result(lab: labkit.Lab, op: str) -> None:
    wl = workloads.get("array-ops")
    params = workloads.resolve_params(wl, {"op": op, "n": 96, "chunk": 40})
    state = wl.setup(lab, **params)
    try:
        inputs = [lab.client.compute(a).result() for a in state.arrays]
        assert all(type(x) is np.ndarray and x.shape == (96, 96) for x in inputs)
        got = lab.client.compute(wl.expression(state)).result()
        np.testing.assert_allclose(got, PLAIN[op](*inputs), rtol=1e-10, atol=1e-9)
        work = wl.run(state)
        assert work.unit == "bytes" and work.amount == 96 * 96 * 8 * len(inputs)  # bytes of input, as dask-cuda
        assert wl.metrics(state) == {"input_bytes": work.amount, "transfer_s": None}  # nothing copied on NumPy
    finally:
        wl.teardown(state)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"op": "transpose"}, "array-ops.op"),
        ({"op": "h2d"}, "op"),  # a host-device copy without a device
        ({"n": 1}, "array-ops.n"),
        ({"n": -5}, "array-ops.n"),
        ({"chunk": 0}, "array-ops.chunk"),
        ({"n": 100_000, "chunk": 10}, "chunk"),  # 10⁸ blocks
        ({"dtype": "int8"}, "array-ops.dtype"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(params: dict, name: str) -> None:
    wl = workloads.get("array-ops")
    with pytest.raises(ParameterError) as err:
        wl.check_params(workloads.resolve_params(wl, params))
    assert err.value.name == name


def test_a_sweep_refuses_bad_sizes_before_any_cluster_work() -> None:
    with pytest.raises(ParameterError, match="chunk"):
        labkit.Sweep("array-ops", grid={"n": [100_000]}, params={"chunk": 10})


def test_on_numpy_the_copies_and_the_device_synchronise_change_nothing(lab: labkit.Lab) -> None:
    x = backends.random_array((64, 64), chunks=32, dtype="float32")
    assert backends.to_device(x, "numpy") is x
    back = backends.to_host(x)
    assert back.dtype == np.float32 and type(back._meta) is np.ndarray
    np.testing.assert_array_equal(lab.client.compute(back).result(), lab.client.compute(x).result())
    assert backends.sync_workers(lab.client, "numpy") is None  # nothing queued on a device: no call at all


@pytest.mark.no_gpu
def test_without_a_gpu_cupy_and_a_gpu_lab_name_what_is_missing() -> None:
    status = gpu_status(need_dask_cuda=True)
    assert not status.available and status.missing
    with pytest.raises(BackendUnavailable) as err:
        backends.check_backend("cupy")
    assert all(part in str(err.value) for part in gpu_status().missing)
    with pytest.raises(BackendUnavailable) as err:
        labkit.Sweep("array-ops", grid={"n": [64]}, params={"backend": "cupy"})
    with pytest.raises(BackendUnavailable) as err:
        labkit.Lab(gpu=True)
    assert all(part in str(err.value) for part in status.missing)
    with pytest.raises(BackendUnavailable, match="gpu=True"):
        devices.gpu_plan(True)
    run, why = devices.gpu_plan("auto")
    assert run is False and status.reason in why


@pytest.mark.no_gpu
def test_what_is_missing_is_each_piece_of_the_gpu_stack() -> None:
    """Each of CuPy, dask-cuda, the CUDA driver and a device is named where it is absent here."""
    import ctypes
    import importlib.util

    missing = " ".join(gpu_status(need_dask_cuda=True).missing)
    if importlib.util.find_spec("cupy") is None:
        assert "CuPy is not installed" in missing
    if importlib.util.find_spec("dask_cuda") is None:
        assert "dask-cuda is not installed" in missing
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        assert "no CUDA driver" in missing
    assert "no CUDA device is visible" in missing


def test_gpu_plan_refuses_other_values() -> None:
    with pytest.raises(ParameterError, match="gpu"):
        devices.gpu_plan("yes")
    assert devices.gpu_plan(False)[0] is False


# -- the crossover rule, on crafted trials ----------------------------------------------------


def _frame(throughputs: dict[tuple[str, str, int], list[float]], under_load: bool = False) -> pd.DataFrame:
    """Trials of array-ops: ``(op, backend, n) -> throughputs`` (bytes/s), one trial each."""
    rows = []
    for (op, backend, n), values in throughputs.items():
        point = json.dumps({"workload": "array-ops", "workers": 1, "op": op, "n": n, "chunk": 64, "backend": backend})
        amount = 8.0 * n * n
        for i, tp in enumerate(values):
            rows.append(
                {
                    "point": point,
                    "status": "ok",
                    "workers": 1,
                    "threads": 1,
                    "backend": backend,
                    "unit": "bytes",
                    "amount": amount,
                    "throughput": tp,
                    "wall_s": amount / tp,
                    "repeat": i,
                    "under_load": under_load,
                }
            )
    return pd.DataFrame(rows)


def _spread(centre: float) -> list[float]:
    return [centre * f for f in (0.97, 0.99, 1.0, 1.01, 1.03, 0.98)]


def test_crossover_is_the_first_size_from_which_the_interval_stays_above_one() -> None:
    gpu = {256: 0.5, 512: 2.0, 1024: 0.98, 2048: 3.0, 4096: 8.0}  # 512 wins, 1024 does not: not the start
    frame = _frame(
        {
            **{("sum", "numpy", n): _spread(1e9) for n in gpu},
            **{("sum", "cupy", n): _spread(r * 1e9) for n, r in gpu.items()},
        }
    )
    c = devices.crossover(frame, "sum")
    assert c.status == "reached" and c.size == 2048
    assert c.ratio.lo > 1 and c.ratio.lo < c.ratio.value < c.ratio.hi and c.ratio.value == pytest.approx(3.0)
    text = str(devices.describe_devices(frame))
    assert "sum: the GPU wins from n = 2048 on" in text and "faster" in text


def test_overlapping_intervals_are_not_a_crossover() -> None:
    frame = _frame(
        {
            **{("dot", "numpy", n): _spread(1e9) for n in (256, 512)},
            **{("dot", "cupy", n): _spread(1e9 * r) for n, r in ((256, 0.5), (512, 1.01))},
        }
    )
    c = devices.crossover(frame, "dot")
    assert c.status == "not reached" and c.size is None
    assert c.ratio.lo < 1 < c.ratio.hi
    text = str(devices.describe_devices(frame))
    assert "dot: crossover not reached up to n = 512" in text and "the runs cannot tell" in text


def test_without_gpu_trials_the_crossover_is_not_measured_with_the_reason() -> None:
    frame = _frame({("fft", "numpy", n): _spread(1e9) for n in (256, 512)})
    c = devices.crossover(frame, "fft", "CuPy is not installed")
    assert c.status == "not measured" and math.isnan(c.ratio.value) and "CuPy is not installed" in c.reason
    text = str(devices.describe_devices(frame, None, "CuPy is not installed"))
    assert "GPU: not measured (CuPy is not installed)" in text
    assert "fft: crossover not measured (the GPU half did not run)" in text
    assert "CPU: fraction of its probed limit not measured (no probe given)" in text
    assert devices.ratio_table(frame).empty


def test_what_was_not_measured_is_said_even_when_no_trial_may_carry_a_claim() -> None:
    frame = _frame({("sort", "numpy", 256): _spread(1e9)}, under_load=True)
    answer = devices.describe_devices(frame, None, "no CUDA driver")
    assert NOTHING_LEFT in answer and devices.not_measured("no CUDA driver") in answer


def test_too_few_runs_give_an_estimate_and_claim_no_direction() -> None:
    frame = _frame({("sum", "numpy", 256): [1e9, 1.1e9], ("sum", "cupy", 256): [5e9, 5.5e9]})
    c = devices.crossover(frame, "sum")
    assert c.status == "not reached" and "interval not available" in c.ratio.note
    text = str(devices.describe_devices(frame))
    assert "no direction claimed" in text and "an estimate" in text


def test_copies_are_shown_apart_and_the_gpu_limit_is_not_measured_without_a_gpu_probe() -> None:
    frame = _frame(
        {
            ("sum", "numpy", 256): _spread(1e9),
            ("sum", "cupy", 256): _spread(4e9),
            ("h2d", "cupy", 256): _spread(2e9),
            ("d2h", "cupy", 256): _spread(1.5e9),
        }
    )
    copies = devices.copy_table(frame)
    assert set(copies["op"]) == {"h2d", "d2h"} and (copies["throughput_lo"] < copies["throughput_hi"]).all()
    limits = devices.limit_table(frame, None).set_index("device")
    assert math.isnan(limits.loc["GPU", "fraction"]) and "no GPU probe" in limits.loc["GPU", "note"]
    text = str(devices.describe_devices(frame))
    assert "Copy host → device, timed apart from compute: 1.99 GB/s (95% interval" in text
    assert "GPU: fraction of its probed limit not measured (no GPU probe" in text
    assert set(devices.throughput_table(frame)["op"]) == {"sum", "h2d", "d2h"}


def test_the_cpu_fraction_of_its_probed_limit_is_an_estimate_with_an_interval() -> None:
    from labkit.probes.records import HardwareProbe, MatmulResult, StreamResult

    w = "tcp://127.0.0.1:1"
    probe = HardwareProbe(
        params={},
        memory={w: StreamResult(2**24, 5, 4e9, 3.9e9, 4e9, 3.9e9, 1)},
        matmul={w: {"float64": MatmulResult(512, "float64", 5, 2e10, 1.9e10, 1)}},
    )
    frame = _frame({("sum", "numpy", 256): _spread(1e9), ("dot", "numpy", 256): _spread(1e9)})
    table = devices.limit_table(frame, probe).set_index("op")
    assert table.loc["sum", "unit"] == "bytes" and table.loc["sum", "fraction"] == pytest.approx(0.25, rel=0.02)
    flops = 2 * 256**3 / (8 * 256 * 256 / 1e9)  # dot at 1 GB/s of input, in flop/s
    assert table.loc["dot", "unit"] == "flops" and table.loc["dot", "fraction"] == pytest.approx(flops / 2e10, rel=0.02)
    assert (table["fraction_lo"] < table["fraction"]).all() and (table["fraction"] < table["fraction_hi"]).all()
    text = str(devices.describe_devices(frame, probe))
    assert "CPU sum at n = 256: 25% (" in text and "of its probed memory bandwidth, an estimate" in text


def test_figures_draw_in_bytes_per_second() -> None:
    frame = _frame({("sum", "numpy", n): _spread(1e9) for n in (256, 512)})
    fig = devices.throughput_figure(frame)
    assert fig.axes[0].get_title() == "sum" and fig.axes[0].get_xscale() == "log"
    assert "ratio not measured" in devices.ratio_figure(frame).axes[0].texts[0].get_text()


# -- notebook 02 headless ---------------------------------------------------------------------

SMALL = {
    "ops": ["transpose_sum", "dot", "sum", "fft", "sort"],
    "sizes": [64, 128],
    "chunk": 64,
    "workers": 2,
    "repeats": 3,
    "warmup": 0,
    "probe_mb": 8.0,
    "probe_matmul_n": 128,
    "experiment": "nb02",
}


def test_notebook_declares_the_parameters_the_test_sets() -> None:
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(SMALL) | {"store", "gpu", "copies"} <= set(declared)
    assert declared["gpu"]["default"] == '"auto"'


def test_notebook_02_runs_the_cpu_half_and_says_what_was_not_measured(tmp_path_factory, notebooks_store) -> None:
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path_factory.mktemp("02_cpu_vs_gpu"))
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(notebooks_store.path) as s:
        cpu = s.trials_frame("nb02/cpu")
    assert len(cpu) == 5 * 2 * 3 and (cpu["status"] == "ok").all() and set(cpu["backend"]) == {"numpy"}
    run_gpu, reason = devices.gpu_plan("auto")
    assert result.html.read_text().count("<img") >= 2
    if run_gpu:  # the GPU half ran too: tests/test_gpu.py checks what it measured
        assert "GPU: not measured" not in printed
        return
    assert devices.not_measured(reason) in printed  # said even when no trial may carry a claim
    if all_loaded(cpu):
        assert NOTHING_LEFT in printed
    else:
        for op in SMALL["ops"]:
            assert f"{op}: crossover not measured (the GPU half did not run)" in printed
