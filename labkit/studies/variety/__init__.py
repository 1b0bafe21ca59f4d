"""Data variety: how arrays, tables, text and images scale with the workers, and where their time goes (notebook 03).

>>> from labkit.studies import variety
"""

from __future__ import annotations

from .analysis import describe_data_variety, kind_scaling
from .figures import variety_figure
from .images import ImageFilter
from .text import TextHashing

__all__ = ["ImageFilter", "TextHashing", "describe_data_variety", "kind_scaling", "variety_figure"]
