"""Static figures: one module per subject, each taking tidy DataFrames.

``scaling`` draws throughput, speedup and efficiency against workers, the fitted scaling
models, weak scaling, the overhead model and roofline fractions. The live view redraws the
same functions while a sweep runs.
"""

from __future__ import annotations

from .scaling import (
    chunk_figure,
    fit_ax,
    fit_figure,
    karp_flatt_ax,
    new_figure,
    overhead_ax,
    roofline_ax,
    roofline_figure,
    scaling_figure,
    speedup_ax,
    throughput_ax,
    throughput_vs_ax,
    weak_scaling_ax,
    weak_scaling_figure,
)

__all__ = [
    "chunk_figure",
    "fit_ax",
    "fit_figure",
    "karp_flatt_ax",
    "new_figure",
    "overhead_ax",
    "roofline_ax",
    "roofline_figure",
    "scaling_figure",
    "speedup_ax",
    "throughput_ax",
    "throughput_vs_ax",
    "weak_scaling_ax",
    "weak_scaling_figure",
]
