"""Static figures: one module per subject, each taking tidy DataFrames.

``scaling`` draws throughput, speedup and efficiency against workers. The live view
redraws the same functions while a sweep runs.
"""

from __future__ import annotations

from .scaling import new_figure, scaling_figure, speedup_ax, throughput_ax

__all__ = ["new_figure", "scaling_figure", "speedup_ax", "throughput_ax"]
