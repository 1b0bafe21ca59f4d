"""Energy counters of the machine labkit runs on: CPU packages (RAPL) and NVIDIA GPUs (NVML).

>>> meter = EnergyMeter()
>>> meter.read()        # {} here: no readable RAPL counter, no GPU   # doctest: +SKIP
{}

Each reading is a cumulative count of joules since some fixed point, so the energy of a
trial is the difference of two readings. Where a counter does not exist or cannot be read
(RAPL is often root-only; many machines have no NVIDIA GPU) it is simply absent: labkit
never substitutes an estimate.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

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


class NvmlCounter:
    """Energy of the NVIDIA GPUs this process sees, through NVML (``nvidia-ml-py``).

    Uses the GPUs' own energy counter (Volta and newer); where only instantaneous power is
    reported, integrates it between reads (trapezoids), which is as good as the read rate.
    """

    def __init__(self) -> None:
        from labkit.cluster.gpu import gpu_power_reader

        self.mode, self._reader = gpu_power_reader()
        self._last: tuple[float, float] | None = None
        self._total = 0.0

    @property
    def available(self) -> bool:
        return self._reader is not None

    def _sample(self) -> float:
        assert self._reader is not None
        return self._reader()

    def read(self) -> float | None:
        """Joules used by the GPUs since the first read (None: no counter)."""
        if not self.available:
            return None
        value, now = self._sample(), time.monotonic()
        if self._last is not None:
            last_value, last_t = self._last
            self._total += value - last_value if self.mode == "energy" else (value + last_value) / 2 * (now - last_t)
        self._last = (value, now)
        return self._total


def local_hosts() -> set[str]:
    """Names and addresses of this machine: workers there are measured by its counters."""
    import socket

    import psutil

    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    return names | {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}


class EnergyMeter:
    """Every energy counter this machine offers, read together, in joules:
    ``{"cpu_energy_j": ..., "dram_energy_j": ..., "gpu_energy_j": ...}`` (absent: no counter)."""

    def __init__(self, powercap_root: str | os.PathLike[str] = POWERCAP) -> None:
        self.counters = {
            name: c for name, c in (("rapl", RaplCounter(powercap_root)), ("nvml", NvmlCounter())) if c.available
        }

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
            elif value is not None:
                out["gpu_energy_j"] = value
        return out
