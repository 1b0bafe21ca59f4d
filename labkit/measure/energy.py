"""How a trial's energy was obtained: the methods, the sensors' update periods, and one trial's reading.

Every trial's energy carries its method (``energy_method``):

- ``nvml-energy``: the difference of an NVIDIA GPU's energy counter
  (``nvmlDeviceGetTotalEnergyConsumption``, Volta and newer);
- ``nvml-power``: the GPU's reported power integrated between readings
  (``nvmlDeviceGetPowerUsage``, where no energy counter exists);
- ``rapl``: the CPU packages' and DRAM's counters (Linux powercap);
- ``estimate``: measured CPU-seconds × a watts-per-core the user declares (see
  :func:`labkit.analysis.energy.estimate_energy`): never a measurement;
- ``below-resolution``: a sensor was read, but the trial was shorter than its update period
  or its counter did not move: the energy is unknown, not 0 J;
- ``not measured``: no sensor was read over the trial.

Where several sensors were read (RAPL and NVML), the method names each, joined by ``+``
(``rapl+nvml-energy``), and the energy is their sum (the CPU packages and the GPUs are
different devices). ``energy_j`` is a number only for measured methods and ``estimate``.

>>> series = {("client", "gpu_energy_j"): [(0.0, 100.0), (0.5, 100.0), (1.0, 130.0), (1.5, 160.0)]}
>>> trial_energy(series, 0.1, 0.3).note    # 0.2 s between readings 0.5 s apart: not read
'nvml-energy: the 0.2 s window is shorter than the 0.5 s between its readings'
>>> r = trial_energy(series, 0.5, 1.5)
>>> r.method, r.joules
('nvml-energy', 60.0)
>>> trial_energy({}, 0.0, 1.0).method
'not measured'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import NamedTuple

NVML_ENERGY = "nvml-energy"
NVML_POWER = "nvml-power"
RAPL = "rapl"
ESTIMATE = "estimate"
BELOW_RESOLUTION = "below-resolution"
NOT_MEASURED = "not measured"
MEASURED_METHODS = (NVML_ENERGY, NVML_POWER, RAPL)
"""The methods that read a sensor and gave a value."""

NVML_ENERGY_UPDATE_S = 0.1
"""Update period of NVML's energy counter: it steps about every 100 ms, and on A100/H100
it samples only about a quarter of the runtime (Yang, Adamek, Armour, SC24), so a window
shorter than this can read 0 J whatever the GPU did."""
NVML_POWER_UPDATE_S = 1.0
"""Averaging period of NVML's power reading: on Ampere and newer it is a 1 s average, so
power integrated over a shorter window is mostly the seconds before it."""
RAPL_UPDATE_S = 0.001
"""Update period of the RAPL energy counters (about 1 ms)."""


class Source(NamedTuple):
    """An energy counter as the Monitor's samples name it."""

    method: str
    device: str  # what it measures, in words
    update_s: float  # shortest window its difference means something over


#: Sample metric (recorded as worker ``"client"``) -> the counter it comes from.
SOURCES = {
    "cpu_energy_j": Source(RAPL, "CPU packages", RAPL_UPDATE_S),
    "dram_energy_j": Source(RAPL, "DRAM", RAPL_UPDATE_S),
    "gpu_energy_j": Source(NVML_ENERGY, "GPUs (energy counter)", NVML_ENERGY_UPDATE_S),
    "gpu_power_integral_j": Source(NVML_POWER, "GPUs (integrated power)", NVML_POWER_UPDATE_S),
}
#: When both GPU readings exist, the counter counts and the integral is kept beside it.
_PREFERRED_GPU = ("gpu_energy_j", "gpu_power_integral_j")


def is_measured(method: object) -> bool:
    """True for a method that read a sensor and gave a value (``rapl``, ``rapl+nvml-energy``, ...).

    >>> is_measured("rapl+nvml-energy"), is_measured("estimate"), is_measured("below-resolution")
    (True, False, False)
    """
    return isinstance(method, str) and all(part in MEASURED_METHODS for part in method.split("+"))


class TrialEnergy(NamedTuple):
    """The energy of one window, and how it was obtained."""

    joules: float | None  # None unless measured
    method: str
    by_source: dict[str, float]  # joules each counter counted (sample metric -> J), measured ones only
    rapl_j: float | None  # CPU packages + DRAM, where RAPL was read
    nvml_j: float | None  # GPUs, where NVML was read (counter first, integrated power else)
    note: str | None  # what was below resolution, or what else was read


def _at(series: list[tuple[float, float]], t: float) -> float | None:
    """A cumulative counter linearly interpolated at ``t`` (None outside the samples)."""
    for (t0, v0), (t1, v1) in itertools.pairwise(series):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return None


def _differences(
    series: dict[tuple[str, str], list[tuple[float, float]]], start: float, end: float
) -> dict[str, float]:
    """What each counter counted over the window (those sampled on both sides of it; a
    counter that went backwards was reset, and is left out)."""
    out = {}
    for metric in SOURCES:
        pts = series.get(("client", metric), [])
        a, b = _at(pts, start), _at(pts, end)
        if a is not None and b is not None and b >= a:
            out[metric] = b - a
    return out


def _spacing(pts: list[tuple[float, float]], start: float, end: float) -> float:
    """The longest of the two intervals between readings that hold ``start`` and ``end``: a
    window shorter than it has its energy shared out pro rata between readings, not read."""
    return max(
        (t1 - t0 for (t0, _), (t1, _) in itertools.pairwise(pts) if t0 <= start <= t1 or t0 <= end <= t1),
        default=0.0,
    )


def _below(method: str, joules: float, window: float, spacing: float = 0.0) -> str:
    """Why one method's reading over ``window`` seconds is below its resolution ("" if it is not):
    shorter than the sensor's update period, or than the time between the readings around it."""
    update = max(s.update_s for s in SOURCES.values() if s.method == method)
    if window < update:
        return f"{method}: the {window:.3g} s window is shorter than its {update:g} s update period"
    if window < spacing:
        return f"{method}: the {window:.3g} s window is shorter than the {spacing:.3g} s between its readings"
    if joules == 0:
        return f"{method}: the counter did not move over {window:.3g} s"
    return ""


def trial_energy(series: dict[tuple[str, str], list[tuple[float, float]]], start: float, end: float) -> TrialEnergy:
    """The energy the client machine's counters counted over ``start..end``, with its method.

    ``series`` maps ``(worker, metric)`` to time-ordered ``(time, value)`` samples of
    cumulative joules (the counters are recorded under worker ``"client"``). A counter
    counts when it was sampled on both sides of the window. A method (RAPL's domains
    together, or a GPU reading) is below its resolution when the window is shorter than its
    update period or its counters did not move; then the total is unknown:
    ``below-resolution``, ``joules`` None, and what the other methods measured stays in
    ``by_source``.
    """
    diffs = _differences(series, start, end)
    gpu = next((m for m in _PREFERRED_GPU if m in diffs), None)
    per_method: dict[str, float] = {}
    for m, j in diffs.items():
        per_method[SOURCES[m].method] = per_method.get(SOURCES[m].method, 0.0) + j
    spacing: dict[str, float] = {}
    for m in diffs:
        gap = _spacing(series[("client", m)], start, end)
        spacing[SOURCES[m].method] = max(spacing.get(SOURCES[m].method, 0.0), gap)
    below = {
        method: why for method, j in per_method.items() if (why := _below(method, j, end - start, spacing[method]))
    }
    counted = list(dict.fromkeys(SOURCES[m].method for m in diffs if not m.startswith("gpu") or m == gpu))
    by_source = {m: j for m, j in diffs.items() if SOURCES[m].method not in below}
    extra = [m for m in per_method if m not in counted and m not in below]
    notes = [below[m] for m in counted if m in below] + [f"{m} also read: {per_method[m]:.4g} J" for m in extra]
    note = "; ".join(notes) or None
    rapl_j = per_method[RAPL] if RAPL in counted and RAPL not in below else None
    gpu_method = SOURCES[gpu].method if gpu else None
    nvml_j = per_method[gpu_method] if gpu_method and gpu_method not in below else None
    if not counted:
        return TrialEnergy(None, NOT_MEASURED, by_source, None, None, note)
    if any(m in below for m in counted):
        return TrialEnergy(None, BELOW_RESOLUTION, by_source, rapl_j, nvml_j, note)
    return TrialEnergy(sum(per_method[m] for m in counted), "+".join(counted), by_source, rapl_j, nvml_j, note)


def replay(readings: Iterable[tuple[float, float]]) -> Callable[[], tuple[float, float]]:
    """A reading function that returns recorded ``(time, value)`` readings one per call.

    Give it to :class:`labkit.measure.power.NvmlCounter` in place of the GPU's own readings:
    the counter then integrates and differences them exactly as it does live ones.

    >>> read = replay([(0.0, 5.0), (0.1, 5.5)])
    >>> read(), read()
    ((0.0, 5.0), (0.1, 5.5))
    """
    it = iter(list(readings))

    def read() -> tuple[float, float]:
        try:
            return next(it)
        except StopIteration:
            raise RuntimeError("the recorded readings are exhausted") from None

    return read
