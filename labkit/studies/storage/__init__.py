"""Storage formats: writing and reading a table as Parquet, CSV and others, with the bytes on disk.

>>> from labkit.studies import storage
"""

from __future__ import annotations

from .workloads import TableStorage

__all__ = ["TableStorage"]
