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
    """Package energy from Linux powercap (``intel-rapl:N/energy_uj``, also on AMD).

    Only top-level package domains are summed (their sub-domains are parts of them).
    The counters wrap at ``max_energy_range_uj``; :meth:`read` unwraps them, which is
    exact as long as it is called more often than a wrap (minutes at full power).
    """

    def __init__(self, root: str | os.PathLike[str] = POWERCAP) -> None:
        self.domains: list[tuple[Path, float]] = []
        base = Path(root)
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if re.fullmatch(r"intel-rapl:\d+", d.name) and os.access(d / "energy_uj", os.R_OK):
                    try:
                        int((d / "energy_uj").read_text())
                        wrap = float((d / "max_energy_range_uj").read_text())
                    except (OSError, ValueError):
                        continue
                    self.domains.append((d / "energy_uj", wrap))
        self._last: list[float] = []
        self._total = 0.0

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def read(self) -> float | None:
        """Joules used by all packages since this counter was made (None: no counter)."""
        if not self.domains:
            return None
        now = [float(p.read_text()) for p, _ in self.domains]
        if self._last:
            for (_, wrap), a, b in zip(self.domains, self._last, now):
                self._total += (b - a if b >= a else b + wrap - a) / 1e6
        self._last = now
        return self._total


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
    """Every energy counter this machine offers, read together: ``{"cpu_energy_j": ..., "gpu_energy_j": ...}``."""

    def __init__(self, powercap_root: str | os.PathLike[str] = POWERCAP) -> None:
        self.counters = {
            name: c
            for name, c in (("cpu_energy_j", RaplCounter(powercap_root)), ("gpu_energy_j", NvmlCounter()))
            if c.available
        }

    def read(self) -> dict[str, float]:
        out = {}
        for name, counter in self.counters.items():
            try:
                value = counter.read()
            except Exception as e:  # noqa: BLE001 - a counter that stops answering is not measured
                logger.debug("energy counter %s failed: %s", name, e)
                continue
            if value is not None:
                out[name] = value
        return out
