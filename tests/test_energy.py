"""Energy says how it was obtained: measured by a sensor, below its resolution, estimated, or not measured.

The GPU's readings are recorded ``(time, value)`` sequences fed through the same counter,
meter and trial summary the Monitor uses; RAPL's are powercap files written by the test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labkit
from labkit.analysis.energy import energy_per_unit, estimate_energy
from labkit.common.errors import ParameterError
from labkit.measure.energy import (
    NVML_ENERGY_UPDATE_S,
    NVML_POWER_UPDATE_S,
    RAPL_UPDATE_S,
    is_measured,
    replay,
)
from labkit.measure.power import EnergyMeter, NvmlCounter
from labkit.measure.resources import Sample, resource_summary
from labkit.plots.energy import energy_figure


def _samples(meter: EnergyMeter, times: list[float]) -> list[Sample]:
    """What the Monitor records: one energy reading per tick, as ``client`` samples."""
    out = [Sample(t, "w", "memory_bytes", 1e8) for t in times]
    for t in times:
        out += [Sample(t, "client", k, v) for k, v in meter.read().items()]
    return out


def _counter_trace(watts: float, end: float, tick: float) -> list[tuple[float, float]]:
    """An NVML energy counter (joules) at ``watts``, stepping every update period, read every ``tick``."""
    steps = [round(i * tick, 6) for i in range(int(end / tick) + 1)]
    return [(t, 5000.0 + watts * NVML_ENERGY_UPDATE_S * math.floor(t / NVML_ENERGY_UPDATE_S + 1e-9)) for t in steps]


def test_the_update_periods_are_the_sensors_documented_ones() -> None:
    assert (NVML_ENERGY_UPDATE_S, NVML_POWER_UPDATE_S, RAPL_UPDATE_S) == (0.1, 1.0, 0.001)


def test_a_sweep_without_a_sensor_stores_not_measured_never_a_number(scaled_lab, store_path) -> None:
    results = labkit.Sweep(
        # Runs long enough (a few tenths of a second) for the worker's CPU to show in its heartbeats on a busy machine.
        "array-sum", grid={"workers": [1]}, params={"size_mb": 512.0, "chunk_mb": 32.0}, repeats=2, warmup=0,
        store=store_path,
    ).run(scaled_lab, live=False)  # fmt: skip
    frame = results.frame
    assert (frame["status"] == "ok").all()
    counters = EnergyMeter().counters  # RAPL where readable, NVML where a GPU is
    for method, joules in zip(frame["energy_method"], frame["energy_j"]):
        assert is_measured(method) == pd.notna(joules), (method, joules)  # a number only when measured
        assert is_measured(method) or method in ("below-resolution", "not measured")
    if not counters:
        assert set(frame["energy_method"]) == {"not measured"}
        assert frame["energy_j"].isna().all()
        assert set(results.table()["energy"]) == {"not measured"}
        table = energy_per_unit(frame)
        assert table["j_per_unit"].isna().all() and set(table["energy_method"]) == {"not measured"}

    estimated = estimate_energy(frame, watts_per_core=10)
    assert "energy_assumption" not in frame  # the input frame is left as it was
    todo = ~frame["energy_method"].map(is_measured) & frame["cpu_seconds"].gt(0)
    assert todo.any(), frame[["cpu_seconds", "cpu_percent_mean"]]  # the worker's CPU was measured
    assert (estimated.loc[todo, "energy_method"] == "estimate").all()
    assert np.allclose(estimated.loc[todo, "energy_j"], frame.loc[todo, "cpu_seconds"] * 10)
    assert estimated.loc[todo, "energy_assumption"].str.contains("10 W per busy core", regex=False).all()
    cells = labkit.Results(estimated, experiment="energy").table()["energy"]
    assert cells.str.endswith("(estimate)").all()


def test_a_window_shorter_than_the_nvml_counter_update_is_below_resolution(tmp_path: Path) -> None:
    trace = _counter_trace(250.0, 3.0, tick=0.5)  # the Monitor reads every 0.5 s
    meter = EnergyMeter(tmp_path, nvml=[NvmlCounter(mode="energy", reading=replay(trace))])
    samples = _samples(meter, [t for t, _ in trace])

    short = resource_summary(samples, 1.20, 1.25)  # 50 ms: shorter than the counter's 100 ms
    assert short.energy_method == "below-resolution"
    assert short.energy_j is None and short.energy_nvml_j is None and short.energy_by_source == {}
    assert "0.1 s update period" in short.energy_note
    metrics = short.to_metrics()
    assert metrics["energy_method"] == "below-resolution" and metrics["energy_j"] is None

    long = resource_summary(samples, 0.5, 2.5)
    assert long.energy_method == "nvml-energy"
    assert long.energy_j == pytest.approx(500.0) == long.energy_nvml_j  # 250 W × 2 s
    assert long.energy_rapl_j is None


def test_a_counter_that_did_not_move_is_below_resolution_not_zero(tmp_path: Path) -> None:
    still = [(t / 10, 1234.5) for t in range(0, 31, 5)]  # read every 0.5 s, never moved
    meter = EnergyMeter(tmp_path, nvml=[NvmlCounter(mode="energy", reading=replay(still))])
    s = resource_summary(_samples(meter, [t for t, _ in still]), 1.0, 2.0)
    assert s.energy_method == "below-resolution" and s.energy_j is None
    assert "did not move" in s.energy_note


def test_rapl_and_nvml_each_keep_what_they_measured(tmp_path: Path) -> None:
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("1000000000\n")
    (zone / "energy_uj").write_text("0\n")
    trace = _counter_trace(300.0, 3.0, tick=0.05)  # read every 50 ms
    meter = EnergyMeter(tmp_path, nvml=[NvmlCounter(mode="energy", reading=replay(trace))])
    samples = [Sample(t, "w", "memory_bytes", 1e8) for t, _ in trace]
    for t, _ in trace:  # the package at 40 W, read at the same ticks
        (zone / "energy_uj").write_text(f"{int(40e6 * t)}\n")
        samples += [Sample(t, "client", k, v) for k, v in meter.read().items()]

    both = resource_summary(samples, 0.5, 2.5)
    assert both.energy_method == "rapl+nvml-energy"
    assert both.energy_rapl_j == pytest.approx(80.0) and both.energy_nvml_j == pytest.approx(600.0)
    assert both.energy_j == pytest.approx(680.0)

    short = resource_summary(samples, 1.20, 1.28)  # long enough for RAPL, not for the GPU counter
    assert short.energy_method == "below-resolution" and short.energy_j is None
    assert short.energy_rapl_j == pytest.approx(3.2) and short.energy_nvml_j is None
    assert short.energy_by_source == pytest.approx({"cpu_energy_j": 3.2})
    assert short.energy_note.startswith("nvml-energy:")
    # Shorter than the time between two readings: shared out between them, not read.
    between = resource_summary(samples, 1.21, 1.24)
    assert between.energy_rapl_j is None and "between its readings" in between.energy_note


def test_integrated_power_agrees_with_the_counter_on_a_recorded_sequence(tmp_path: Path) -> None:
    times = [round(0.1 * i, 6) for i in range(101)]  # 10 s, read every 100 ms
    watts = [200.0 + 80.0 * math.sin(t) for t in times]
    joules = [9000.0 + 200.0 * t + 80.0 * (1 - math.cos(t)) for t in times]  # the exact integral
    counter = NvmlCounter(mode="energy", reading=replay(zip(times, joules)))
    power = NvmlCounter(mode="power", reading=replay(zip(times, watts)))
    samples = _samples(EnergyMeter(tmp_path, nvml=[counter, power]), times)

    s = resource_summary(samples, 2.0, 8.0)  # 6 s: the window the GPU benchmark compares over
    assert s.energy_method == "nvml-energy"  # the counter counts; the integral is kept beside it
    by = s.energy_by_source
    assert by["gpu_power_integral_j"] == pytest.approx(by["gpu_energy_j"], rel=1e-3)
    assert s.energy_j == pytest.approx(by["gpu_energy_j"]) and "nvml-power also read" in s.energy_note

    only_power = _samples(EnergyMeter(tmp_path, nvml=[NvmlCounter("power", replay(zip(times, watts)))]), times)
    p = resource_summary(only_power, 2.0, 8.0)
    assert p.energy_method == "nvml-power" and p.energy_j == pytest.approx(by["gpu_energy_j"], rel=1e-3)
    assert resource_summary(only_power, 2.0, 2.5).energy_method == "below-resolution"  # < its 1 s average


def test_a_recorded_reading_function_must_say_what_it_reads() -> None:
    with pytest.raises(ParameterError, match="mode"):
        NvmlCounter(mode="joules", reading=replay([(0.0, 1.0)]))


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"status": ["ok"] * n, "amount": [1e9] * n, "unit": ["bytes"] * n, "workers": [1] * n}
    return pd.DataFrame({**base, **columns})


def test_the_estimate_is_declared_watts_times_measured_cpu_seconds() -> None:
    frame = _frame(
        energy_j=[None, 7.0, None, None, None],
        energy_method=["not measured", "rapl", "below-resolution", "not measured", "not measured"],
        cpu_seconds=[2.0, 3.0, 0.5, None, 0.0],
        cpu_percent_mean=[None, None, None, 50.0, 0.0],
        wall_s=[1.0, 1.0, 1.0, 3.0, 1.0],
        workers=[1, 1, 1, 2, 1],
    )
    out = estimate_energy(frame, watts_per_core=12.5)
    assert out["energy_method"].tolist() == ["estimate", "rapl", "estimate", "estimate", "not measured"]
    assert out["energy_j"].tolist()[:4] == [25.0, 7.0, 6.25, 37.5]  # 50% × 2 workers × 3 s = 3 CPU-s
    assert math.isnan(out["energy_j"].iloc[4])  # no CPU seen: no estimate, and never 0 J
    words = "12.5 W per busy core × measured CPU-seconds of the workers (declared, not measured)"
    assert out["energy_assumption"].iloc[0] == words
    assert out["energy_assumption"].iloc[2] == f"{words}; the sensor's reading was below its resolution"
    assert out["energy_assumption"].iloc[1] is None and out["energy_watts_per_core"].iloc[0] == 12.5
    assert frame["energy_method"].iloc[0] == "not measured"  # a new frame
    again = estimate_energy(out, watts_per_core=100)  # an estimate is not estimated over
    assert again["energy_j"].tolist()[:4] == [25.0, 7.0, 6.25, 37.5]
    for bad in (None, 0, -3.0, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ParameterError, match="watts_per_core"):
            estimate_energy(frame, watts_per_core=bad)


def test_energy_per_unit_has_an_interval_from_repeats_and_never_mixes_methods() -> None:
    points = ['{"workers": 1, "workload": "w"}'] * 5 + ['{"workers": 2, "workload": "w"}'] * 5
    points += ['{"workers": 3, "workload": "w"}'] * 2 + ['{"workers": 4, "workload": "w"}'] * 2
    joules = [2.0, 2.2, 1.9, 2.1, 2.05] + [1.0, 1.1, 0.9, 1.05, None] + [None] * 4
    methods = ["rapl"] * 5 + ["estimate"] * 4 + ["below-resolution"] * 3 + ["not measured"] * 2
    frame = _frame(
        point=points,
        workers=[1] * 5 + [2] * 5 + [3] * 2 + [4] * 2,
        energy_j=joules,
        energy_method=methods,
        energy_assumption=[None] * 5 + ["10 W per busy core"] * 4 + [None] * 5,
    )
    table = energy_per_unit(frame).set_index("workers")
    one = table.loc[1]
    assert one["energy_method"] == "rapl" and one["trials"] == 5
    assert one["j_per_unit"] == pytest.approx(2.05e-9) and one["lo"] < one["j_per_unit"] < one["hi"]
    two = table.loc[2]
    assert two["energy_method"] == "estimate" and two["trials"] == 4
    assert math.isnan(two["lo"]) and "4 runs" in two["note"] and "1 of 5 trials below resolution" in two["note"]
    assert table.loc[3, "energy_method"] == "below-resolution" and math.isnan(table.loc[3, "j_per_unit"])
    assert table.loc[4, "energy_method"] == "not measured" and math.isnan(table.loc[4, "j_per_unit"])

    fig = energy_figure(frame)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_height() == p.get_height()]
    assert len(bars) == 2 and all(b.get_height() > 0 for b in bars)  # no bar at 0 where there is nothing
    filled, hollow = bars
    assert filled.get_facecolor()[3] > 0 and hollow.get_facecolor()[3] == 0 and hollow.get_linestyle() == "--"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["measured (rapl)", "estimate (10 W per busy core, declared)"]
    texts = {t.get_text() for t in ax.texts}
    assert {"below\nresolution", "not\nmeasured"} <= texts
    assert ax.get_ylabel() == "energy (J per GB)"


def test_each_point_is_said_with_its_method() -> None:
    from labkit.analysis.energy import energy_cell, energy_words

    def cell(methods: list[str], joules: list[float | None]) -> str:
        return energy_cell(_frame(energy_method=methods, energy_j=joules))

    assert cell(["rapl", "rapl", "below-resolution"], [2.0, 4.0, None]) == "3 J (rapl)"
    assert cell(["estimate", "not measured"], [5.0, None]) == "5 J (estimate)"
    assert cell(["below-resolution", "not measured"], [None, None]) == "below resolution"
    assert cell(["not measured"], [None]) == "not measured"
    frame = _frame(point=['{"workers": 1, "workload": "w"}'] * 2, energy_method=["estimate"] * 2, energy_j=[3.0, 5.0])
    row = energy_per_unit(frame.assign(energy_assumption="10 W per busy core")).iloc[0]
    assert energy_words(row, 1e9, "GB") == (
        "4 J per GB (interval not available), an estimate (10 W per busy core)"
    )  # fmt: skip
