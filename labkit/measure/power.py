"""Energy counters of the machine labkit runs on: CPU packages (RAPL) and NVIDIA GPUs (NVML).

>>> meter = EnergyMeter()
>>> meter.read()        # {} here: no readable RAPL counter, no GPU   # doctest: +SKIP
{}

Each reading is a cumulative count of joules since some fixed point, so the energy of a
trial is the difference of two readings. Where a counter does not exist or cannot be read
(RAPL is often root-only; many machines have no NVIDIA GPU) it is simply absent: labkit
never substitutes an estimate. The keys name how each figure was obtained (see
:data:`labkit.measure.energy.SOURCES`): ``cpu_energy_j`` and ``dram_energy_j`` from RAPL,
``gpu_energy_j`` from NVML's energy counter, ``gpu_power_integral_j`` from NVML's power
integrated between reads.

The GPU counter takes its readings from a function, so recorded ``(time, value)``
readings go through the same arithmetic as live ones:

>>> from labkit.measure.energy import replay
>>> gpu = NvmlCounter(mode="power", reading=replay([(0.0, 100.0), (2.0, 300.0)]))  # W
>>> meter = EnergyMeter(nvml=[gpu])
>>> meter.read(), meter.read()        # trapezoid: (100 + 300) / 2 W × 2 s
({'gpu_power_integral_j': 0.0}, {'gpu_power_integral_j': 400.0})
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from labkit.common.errors import ParameterError

POWERCAP = "/sys/class/powercap"
logger = logging.getLogger("labkit.monitor")


class RaplCounter:
    """Energy of the CPU packages and their memory from Linux powercap (``intel-rapl``, also on AMD).

    Domains are chosen by their ``name`` file: ``package-N`` and ``dram``, each counted once.
    Never ``psys`` (the whole platform, packages included: adding it would count them
    twice), nor ``core``, ``uncore`` (parts of a package), nor the ``intel-rapl-mmio``
    duplicates of the packages. The counters wrap at ``max_energy_range_uj``; :meth:`read`
    unwraps them, which is exact as long as it is called more often than a wrap (minutes
    at full power).
    """

    def __init__(self, root: str | os.PathLike[str] = POWERCAP) -> None:
        self.domains: list[tuple[Path, float, str]] = []  # (energy_uj, wrap, "package" or "dram")
        base = Path(root)
        for d in sorted(base.iterdir()) if base.is_dir() else []:
            if not re.fullmatch(r"intel-rapl:\d+(:\d+)?", d.name) or not os.access(d / "energy_uj", os.R_OK):
                continue
            try:
                name = (d / "name").read_text().strip()
                int((d / "energy_uj").read_text())
                wrap = float((d / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                continue
            kind = "package" if re.fullmatch(r"package-\d+", name) else "dram" if name == "dram" else None
            if kind is not None:
                self.domains.append((d / "energy_uj", wrap, kind))
        self._last: list[float] = []
        self._total = {kind: 0.0 for _, _, kind in self.domains}

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def read(self) -> dict[str, float] | None:
        """Joules since this counter was made, by kind: ``{"package": ..., "dram": ...}``
        (a kind is absent where no domain of it exists; None: no counter at all)."""
        if not self.domains:
            return None
        now = [float(p.read_text()) for p, _, _ in self.domains]
        if self._last:
            for (_, wrap, kind), a, b in zip(self.domains, self._last, now):
                self._total[kind] += (b - a if b >= a else b + wrap - a) / 1e6
        self._last = now
        return dict(self._total)


def _live(reader: Callable[[], float]) -> Callable[[], tuple[float, float]]:
    """A GPU's reading with the time it was taken."""
    return lambda: (time.monotonic(), reader())


class NvmlCounter:
    """Energy of the NVIDIA GPUs this process sees, through NVML (``nvidia-ml-py``).

    Uses the GPUs' own energy counter (``mode="energy"``, Volta and newer); where only
    instantaneous power is reported (``mode="power"``), integrates it between reads
    (trapezoids), which is as good as the read rate. Both update slowly (see
    :data:`labkit.measure.energy.NVML_ENERGY_UPDATE_S` and ``NVML_POWER_UPDATE_S``).

    Parameters
    ----------
    mode : {"energy", "power"}, optional
        What ``reading`` returns: joules since some fixed point, or watts now. Without
        ``reading``, the GPU's reading of that kind (:func:`labkit.cluster.gpu.gpu_energy_readers`;
        by default its energy counter where it has one, else its power); the counter is
        unavailable where NVML offers no such reading.
    reading : callable, optional
        Returns ``(time in s, value)``; by default the GPU's reading at ``time.monotonic()``.
        Recorded readings (:func:`labkit.measure.energy.replay`) go through the same path.
    """

    def __init__(self, mode: str | None = None, reading: Callable[[], tuple[float, float]] | None = None) -> None:
        if mode not in (None, "energy", "power"):
            raise ParameterError("mode", mode, '"energy" or "power" (what the reading returns: joules or watts)')
        if reading is None:
            from labkit.cluster.gpu import gpu_energy_readers

            readers = gpu_energy_readers()
            mode = mode or next((m for m in ("energy", "power") if m in readers), None)
            if mode in readers:
                reading = _live(readers[mode])
        elif mode is None:
            raise ParameterError("mode", mode, '"energy" or "power": what the reading function returns')
        self.mode = mode if reading is not None else None
        self._reading = reading
        self._last: tuple[float, float] | None = None
        self._total = 0.0

    @property
    def available(self) -> bool:
        return self._reading is not None

    @property
    def metric(self) -> str:
        """The sample metric this counter's joules are recorded as."""
        return "gpu_energy_j" if self.mode == "energy" else "gpu_power_integral_j"

    def read(self) -> float | None:
        """Joules used by the GPUs since the first read (None: no counter)."""
        if self._reading is None:
            return None
        now, value = self._reading()
        if self._last is not None:
            last_t, last_value = self._last
            self._total += value - last_value if self.mode == "energy" else (value + last_value) / 2 * (now - last_t)
        self._last = (now, value)
        return self._total


class EnergyMeter:
    """Every energy counter this machine offers, read together, in joules:
    ``{"cpu_energy_j": ..., "dram_energy_j": ..., "gpu_energy_j": ...}`` (absent: no counter).

    Parameters
    ----------
    powercap_root : path, default ``/sys/class/powercap``
        Where the RAPL counters are.
    nvml : list of NvmlCounter, optional
        The GPU counters to read (by default every reading NVML offers on this machine).
        With both an energy counter and power, both are recorded; a trial's energy counts
        the energy counter and keeps the integrated power beside it.
    """

    def __init__(
        self, powercap_root: str | os.PathLike[str] = POWERCAP, *, nvml: Iterable[NvmlCounter] | None = None
    ) -> None:
        if nvml is None:
            from labkit.cluster.gpu import gpu_energy_readers

            nvml = [NvmlCounter(mode, _live(reader)) for mode, reader in gpu_energy_readers().items()]
        gpus = list(nvml)
        candidates = [("rapl", RaplCounter(powercap_root))] + [(f"nvml-{g.mode}", g) for g in gpus]
        self.counters: dict[str, RaplCounter | NvmlCounter] = {name: c for name, c in candidates if c.available}

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, counter in self.counters.items():
            try:
                value = counter.read()
            except Exception as e:  # noqa: BLE001 - a counter that stops answering is not measured
                logger.debug("energy counter %s failed: %s", name, e)
                continue
            if isinstance(value, dict):
                out.update({f"{'cpu' if kind == 'package' else kind}_energy_j": j for kind, j in value.items()})
            elif value is not None and isinstance(counter, NvmlCounter):
                out[counter.metric] = value
        return out


def nvml_window(readers: dict[str, Callable[[], float]], seconds: float = 5.0) -> tuple[float, float, float]:
    """The GPU's energy two ways over one window of CuPy matmuls: ``(counter J, integrated
    power J, seconds)``, the power read at about 10 Hz. ``readers`` is
    :func:`labkit.cluster.gpu.gpu_energy_readers`'s, with both ``"energy"`` and ``"power"``.
    A window of at least 5 s spans many of the counter's updates and power's 1 s averages."""
    from labkit.cluster import backends

    cp = backends.array_module("cupy")
    counter = NvmlCounter(mode="energy", reading=lambda: (time.monotonic(), readers["energy"]()))
    power = NvmlCounter(mode="power", reading=lambda: (time.monotonic(), readers["power"]()))
    a = cp.random.random((4096, 4096))
    counter.read(), power.read()
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        a = a @ a
        a /= cp.abs(a).max()
        backends.synchronize(cp)
        power.read()
        time.sleep(0.1)
    by_counter, by_power = counter.read(), power.read()
    return float(by_counter or 0.0), float(by_power or 0.0), time.monotonic() - start
