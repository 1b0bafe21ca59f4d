"""CPU against GPU: throughput per operation and size, the crossover size, and the copies apart.

Throughput is bytes of input per second (dask-cuda's unit). Each ``*_table`` has one row
per compared point with its 95% bootstrap interval over the repeats; :func:`describe_devices`
words them, a direction only where an interval excludes no change
(:func:`labkit.analysis.claims.ratio_words`).

The crossover of an operation is the smallest size from which on the GPU's throughput over
the CPU's has its whole interval above 1 at that size and at every larger size measured on
both: one size where the GPU wins, followed by one where the runs cannot tell, is no
crossover. Where the interval never clears 1 it is "not reached"; where no GPU (or no CPU)
ran the operation it is "not measured", with the reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from labkit.analysis.frames import ok_trials
from labkit.analysis.intervals import Estimate, direction, median_estimate, ratio_estimate
from labkit.workloads.device_ops import COMPUTE_OPS

if TYPE_CHECKING:
    import pandas as pd

DEVICES = {"numpy": "CPU", "cupy": "GPU"}
COPIES = {"h2d": "host → device", "d2h": "device → host"}
NO_GPU_TRIALS = "no GPU trials in these results"


class Crossover(NamedTuple):
    """Where the GPU starts to win at one operation.

    ``status`` is ``"reached"`` (``size`` the crossover, ``ratio`` GPU/CPU there),
    ``"not reached"`` (``size`` None, ``ratio`` at the largest size measured on both) or
    ``"not measured"`` (``reason`` says why).
    """

    op: str
    status: str
    size: int | None
    ratio: Estimate
    reason: str = ""


def trials(*results: Any) -> pd.DataFrame:
    """The trials of several sweeps (``Results`` or frames; None skipped) as one frame."""
    import pandas as pd

    frames = [getattr(r, "frame", r) for r in results if r is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    ok = ok_trials(frame)
    return ok[ok["unit"] == "bytes"]


def throughput_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per operation, device and size: runs, the median throughput (bytes of input/s) with its
    interval, and the median copy of the inputs to the device before the clock (``transfer_s``)."""
    import pandas as pd

    ok = _ok(frame)
    rows = []
    for (op, backend, n), g in ok.groupby(["p_op", "p_backend", "p_n"], sort=True):
        tp = g["throughput"].to_numpy(float)
        est = median_estimate(tp)
        copies = pd.to_numeric(g.get("transfer_s", pd.Series(dtype=float)), errors="coerce").dropna()
        rows.append(
            {
                "op": op,
                "device": DEVICES.get(backend, backend),
                "backend": backend,
                "n": int(n),
                "input_bytes": float(g["amount"].iloc[0]),
                "runs": tp.size,
                "throughput": est.value,
                "throughput_lo": est.lo,
                "throughput_hi": est.hi,
                "note": est.note,
                "setup_copy_s": float(copies.median()) if len(copies) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def ratio_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per operation and size run on both devices: GPU throughput over CPU throughput (a ratio of
    medians) with its interval; above 1 the GPU is faster."""
    import pandas as pd

    ok = _ok(frame)
    rows = []
    for (op, n), g in ok.groupby(["p_op", "p_n"], sort=True):
        sides = {b: gb["throughput"].to_numpy(float) for b, gb in g.groupby("p_backend")}
        if "numpy" not in sides or "cupy" not in sides:
            continue
        est = ratio_estimate(sides["cupy"], sides["numpy"])
        rows.append(
            {"op": op, "n": int(n), "ratio": est.value, "ratio_lo": est.lo, "ratio_hi": est.hi, "note": est.note}
        )
    return pd.DataFrame(rows, columns=["op", "n", "ratio", "ratio_lo", "ratio_hi", "note"])


def crossover(frame: pd.DataFrame, op: str, gpu_reason: str = "") -> Crossover:
    """The smallest size from which on the GPU wins at ``op`` (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        Trials of ``array-ops`` on either or both backends.
    op : str
        The operation.
    gpu_reason : str
        Why no GPU ran, said where the frame holds no GPU trials (e.g.
        :attr:`labkit.cluster.gpu.GPUStatus.reason`).
    """
    ok = _ok(frame)
    ok = ok[ok["p_op"] == op]
    backends = set(ok["p_backend"])
    none = Estimate(math.nan, math.nan, math.nan)
    if "cupy" not in backends:
        why = f"no GPU: {gpu_reason}" if gpu_reason else NO_GPU_TRIALS
        return Crossover(op, "not measured", None, none._replace(note=why), why)
    if "numpy" not in backends:
        why = "no CPU trials in these results"
        return Crossover(op, "not measured", None, none._replace(note=why), why)
    table = ratio_table(ok)
    if table.empty:
        why = "no size was run on both devices"
        return Crossover(op, "not measured", None, none._replace(note=why), why)
    table = table.sort_values("n")
    wins = [direction(lo, hi) == "up" for lo, hi in zip(table["ratio_lo"], table["ratio_hi"])]
    start = None
    for i in range(len(wins) - 1, -1, -1):  # the longest run of wins that reaches the largest size
        if not wins[i]:
            break
        start = i
    if start is None:
        last = table.iloc[-1]
        return Crossover(op, "not reached", None, _estimate(last))
    row = table.iloc[start]
    return Crossover(op, "reached", int(row["n"]), _estimate(row))


def _estimate(row: pd.Series) -> Estimate:
    return Estimate(float(row["ratio"]), float(row["ratio_lo"]), float(row["ratio_hi"]), str(row["note"] or ""))


def copy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The host↔device copies (``h2d``, ``d2h``) per size: bytes/s with their interval."""
    table = throughput_table(frame) if len(frame) else None
    if table is None or table.empty:
        import pandas as pd

        return pd.DataFrame(columns=["op", "n", "throughput", "throughput_lo", "throughput_hi", "note"])
    return table[table["op"].isin(list(COPIES))].reset_index(drop=True)


def compute_ops(frame: pd.DataFrame) -> list[str]:
    """The operations (not copies) in the frame's successful trials, in the order of the workload's table."""
    ops = set(_ok(frame)["p_op"])
    return [op for op in COMPUTE_OPS if op in ops]


def largest(table: pd.DataFrame, by: tuple[str, ...] = ("op", "device")) -> pd.DataFrame:
    """The row of the largest size of each group: the figure the answer quotes."""
    if table.empty:
        return table
    idx = table.groupby(list(by))["n"].idxmax()
    return table.loc[np.sort(idx.to_numpy())]
