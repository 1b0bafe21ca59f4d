"""The answer of the CPU-against-GPU study, in words: throughput, the crossover, the copies, the limits.

Every ratio is worded by :func:`labkit.analysis.claims.ratio_words` and every claim rests on
the trials :func:`labkit.analysis.trust.trusted` admits; what was not measured says so, and why.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from labkit.analysis.claims import ratio_words
from labkit.analysis.intervals import percent
from labkit.analysis.trust import trusted
from labkit.common.conclusion import Conclusion
from labkit.common.format import format_rate

from . import analysis
from .limits import limit_table

if TYPE_CHECKING:
    import pandas as pd

LIMIT_NAMES = {"bytes": "memory bandwidth", "flops": "float64 FLOP/s"}


def rate_words(value: float, lo: float, hi: float, note: str = "") -> str:
    """A throughput in bytes/s with its 95% interval, its ends given the digits it takes to differ;
    without an interval, the figure labelled an estimate."""
    if math.isnan(lo) or math.isnan(hi):
        return f"{format_rate(value, 'bytes')} (an estimate: {note or 'interval not available'})"
    a, b = format_rate(lo, "bytes"), format_rate(hi, "bytes")
    digits = 4
    while a == b and digits < 17:
        scale = 10 ** (3 * max(0, int(math.log10(max(abs(value), 1.0)) // 3)))
        unit = format_rate(scale, "bytes").split(" ", 1)[1]
        a, b = (f"{x / scale:.{digits}g} {unit}" for x in (lo, hi))
        digits += 1
    return f"{format_rate(value, 'bytes')} (95% interval {a} to {b})"


def _crossover_line(c: analysis.Crossover, sizes: list[int], has_gpu: bool = True) -> str:
    said = ratio_words(c.ratio, "the CPU's throughput", ("faster", "slower"))
    if c.status == "reached":
        return (
            f"{c.op}: the GPU wins from n = {c.size} on (its interval above 1 there and at every larger size "
            f"measured); at n = {c.size} it ran at {said}."
        )
    if c.status == "not reached":
        return f"{c.op}: crossover not reached up to n = {max(sizes)}; at n = {max(sizes)} the GPU ran at {said}."
    return f"{c.op}: crossover not measured ({c.reason if has_gpu else 'the GPU half did not run'})."


def _op_lines(frame: pd.DataFrame, gpu_reason: str, has_gpu: bool) -> list[str]:
    table = analysis.throughput_table(frame)
    lines = []
    for op in analysis.compute_ops(frame):
        rows = analysis.largest(table[table["op"] == op])
        rates = "; ".join(
            f"{r.device} {rate_words(r.throughput, r.throughput_lo, r.throughput_hi, r.note)} at n = {r.n}"
            for r in rows.itertuples()
        )
        c = analysis.crossover(frame, op, gpu_reason)
        sizes = sorted(analysis.ratio_table(frame).query("op == @op")["n"]) or [int(rows["n"].max())]
        lines.append(f"{op}: {rates}.")
        lines.append(_crossover_line(c, sizes, has_gpu))
    return lines


def _copy_lines(frame: pd.DataFrame, has_gpu: bool) -> list[str]:
    if not has_gpu:
        return []
    copies = analysis.copy_table(frame)
    if copies.empty:
        return ["Host↔device copies: not measured (the ops h2d and d2h were not run)."]
    lines = []
    for r in analysis.largest(copies, ("op",)).itertuples():
        rate = rate_words(r.throughput, r.throughput_lo, r.throughput_hi, r.note)
        lines.append(f"Copy {analysis.COPIES[r.op]}, timed apart from compute: {rate} at n = {r.n}.")
    return lines


def _limit_lines(frame: pd.DataFrame, probe: Any) -> list[str]:
    table = limit_table(frame, probe)
    lines, unmeasured = [], {}
    for r in table.itertuples():
        if math.isnan(r.fraction):
            unmeasured.setdefault(r.device, r.note)
            continue
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"{r.device} {r.op} at n = {r.n}: {percent(r.fraction, r.fraction_lo, r.fraction_hi)} of its probed "
            f"{LIMIT_NAMES.get(r.unit, r.unit)}, an estimate{note}."
        )
    lines += [f"{device}: fraction of its probed limit not measured ({why})." for device, why in unmeasured.items()]
    return lines


def not_measured(gpu_reason: str) -> str:
    """What a run without GPU trials did not measure, and why."""
    why = gpu_reason or analysis.NO_GPU_TRIALS
    return (
        f"GPU: not measured ({why}). Only the CPU half ran: the GPU's throughput, the crossover, the "
        "host↔device copies and the GPU's fraction of its limit are not measured."
    )


def describe_devices(frame: pd.DataFrame, probe: Any = None, gpu_reason: str = "") -> Conclusion:
    """The answer: per operation each device's throughput and the crossover size, the host↔device
    copies, each device's fraction of its probed limit, and what was not measured and why.

    Parameters
    ----------
    frame : DataFrame
        ``array-ops`` trials, CPU (``backend="numpy"``), GPU (``"cupy"``) or both.
    probe : HardwareProbe, optional
        The machine's probed limits (:func:`labkit.probe_machine`); without it the fractions
        are "not measured".
    gpu_reason : str
        Why the GPU half did not run (:attr:`labkit.cluster.gpu.GPUStatus.reason`), said
        where the frame holds no GPU trials.

    Returns
    -------
    Conclusion
        The claims rest on the trials :func:`~labkit.analysis.trust.trusted` admits; where
        no GPU ran, what that left unmeasured is said even when no trial is left to claim from.
    """
    answer = _describe(frame, probe, gpu_reason)
    ran_gpu = "backend" in frame and frame["backend"].eq("cupy").any()
    line = not_measured(gpu_reason)
    if ran_gpu or line in answer.answers:
        return answer
    return Conclusion([*answer.answers, line], answer.caveats)


@trusted
def _describe(frame: pd.DataFrame, probe: Any, gpu_reason: str) -> str:
    has_gpu = bool((analysis.throughput_table(frame)["backend"] == "cupy").any())
    lines = [
        "Throughput is bytes of input per second (dask-cuda's unit), the median of the repeats; the GPU "
        "against the CPU is the ratio of their median throughputs, above 1 where the GPU is faster."
    ]
    if not has_gpu:
        lines.append(not_measured(gpu_reason))
    lines += _op_lines(frame, gpu_reason, has_gpu)
    lines += _copy_lines(frame, has_gpu)
    lines += _limit_lines(frame, probe)
    return "\n".join(lines)
