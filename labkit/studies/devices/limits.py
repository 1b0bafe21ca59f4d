"""Each device's fraction of its probed limit, per operation, at the largest size run.

The limits come from :mod:`labkit.probes` (a :class:`~labkit.probes.HardwareProbe`): for the
CPU the workers' own memory bandwidth and float64 matmul FLOP/s (with the host's ceiling, as
:func:`labkit.analysis.roofline.hardware_limits` takes them), for the GPU the probe's GPU
figures (STREAM on the device and a CuPy matmul), where a GPU was probed. ``dot`` is
compared with FLOP/s (``2 n³`` flops a run); every other operation with memory bandwidth, in
bytes of input per second: a lower bound of the bytes it moves (``transpose_sum`` reads its
input twice, ``sort`` and ``fft`` more), so its fraction understates how close it came. The
fractions are estimates with the runs' interval (:func:`~labkit.analysis.roofline.roofline_fraction`);
a device without a probe is "not measured", with the reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from labkit.analysis.frames import ok_trials
from labkit.analysis.roofline import HardwareLimits, hardware_limits, roofline_fraction

from .analysis import DEVICES

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["device", "op", "n", "unit", "limit", "fraction", "fraction_lo", "fraction_hi", "note"]


def _as_work(ok: pd.DataFrame) -> pd.DataFrame:
    """The trials with ``dot`` counted in flops (``2 n³`` a run) and the rest in bytes of input."""
    dot = ok["p_op"] == "dot"
    flops = 2.0 * ok["p_n"].astype(float) ** 3 / ok["wall_s"].astype(float)
    return ok.assign(throughput=flops.where(dot, ok["throughput"]), unit=ok["unit"].where(~dot, "flops").astype(object))


def gpu_limits(probe: Any) -> tuple[HardwareLimits | None, str]:
    """The GPU's limits from ``probe`` (per GPU worker), or None and why not."""
    gpu = None if probe is None else getattr(probe, "gpu", None)
    if gpu is None:
        why = "no probe given" if probe is None else probe.missing.get("gpu/memory", "the probe holds no GPU figures")
        return None, f"no GPU probe ({why})"
    per = {"bytes": float(gpu.best)}
    flops = probe.flops("gpu", "float64")
    missing = {} if flops else {"flops": "the probe holds no GPU matmul figure"}
    if flops:
        per["flops"] = float(flops)
    unsized = {unit: "the probe kept the GPU's best and median, not its repeats" for unit in per}
    limits = HardwareLimits(per, missing={**missing, "node": "one GPU per worker"}, unsized=unsized)
    return limits, ""


def _device_limits(backend: str, probe: Any) -> tuple[Any, str]:
    if backend == "cupy":
        return gpu_limits(probe)
    if probe is None:
        return None, "no probe given"
    return hardware_limits(probe), ""


def limit_table(frame: pd.DataFrame, probe: Any = None) -> pd.DataFrame:
    """Per device and operation, at its largest size: the fraction of the probed limit reached.

    Parameters
    ----------
    frame : DataFrame
        ``array-ops`` trials (either or both backends); the copies are left out.
    probe : HardwareProbe, optional
        From :func:`labkit.probe_machine` or :func:`labkit.probes.run_probes`. Without it, or
        without its GPU figures, a device's fractions are "not measured" with the reason.
    """
    import pandas as pd

    ok = ok_trials(frame)
    ok = ok[(ok["unit"] == "bytes") & ~ok["p_op"].isin(["h2d", "d2h"])]
    rows = []
    for backend, g in ok.groupby("p_backend", sort=True):
        g = g[g["p_n"] == g.groupby("p_op")["p_n"].transform("max")]
        limits, why = _device_limits(backend, probe)
        if limits is None:
            rows += [_unmeasured(backend, op, int(n), why) for (op, n), _ in g.groupby(["p_op", "p_n"])]
            continue
        for (op, n), point in g.groupby(["p_op", "p_n"], sort=True):
            t = roofline_fraction(_as_work(point), limits, per_worker=True).iloc[0]
            values = [t.unit, t.limit, t.fraction, t.fraction_lo, t.fraction_hi, t.note]
            rows.append(dict(zip(COLUMNS, [DEVICES.get(backend, backend), op, int(n), *values])))
    return pd.DataFrame(rows, columns=COLUMNS)


def _unmeasured(backend: str, op: str, n: int, why: str) -> dict[str, Any]:
    unit = "flops" if op == "dot" else "bytes"
    return dict(zip(COLUMNS, [DEVICES.get(backend, backend), op, n, unit, *[math.nan] * 4, why]))
