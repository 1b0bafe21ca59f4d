"""Static figures: one module per subject, each taking tidy DataFrames.

``axes``: what every figure shares (new figures, error bars drawn only where an interval
exists, rate axes); ``scaling``: throughput, speedup and efficiency against workers, the
fitted scaling models and weak scaling; ``costs``: the overhead model and roofline
fractions; ``curves``: learning curves; ``resources``: CPU, memory and time split;
``sweep``: a whole sweep; ``compare``: two runs side by side. The live view redraws the
same functions while a sweep runs. A study's own figures live in its folder
(``labkit.studies.<study>.figures``) and build on these.
"""

from __future__ import annotations

from .axes import new_figure
from .costs import chunk_figure, overhead_ax, roofline_ax, roofline_figure
from .scaling import (
    fit_ax,
    fit_figure,
    karp_flatt_ax,
    scaling_figure,
    speedup_ax,
    throughput_ax,
    throughput_vs_ax,
    weak_scaling_ax,
    weak_scaling_figure,
)
from .sweep import live_figure, sweep_figure

__all__ = [
    "live_figure",
    "sweep_figure",
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
