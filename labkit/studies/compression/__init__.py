"""Compression: codecs' ratio against read and write throughput per kind of data (notebook 05).

>>> from labkit.studies import compression
"""

from __future__ import annotations

from .analysis import codec_table, describe_codecs
from .figures import codec_figure
from .workloads import ZarrCodecs

__all__ = ["ZarrCodecs", "codec_figure", "codec_table", "describe_codecs"]
