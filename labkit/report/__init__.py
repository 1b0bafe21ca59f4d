"""Reports: notebooks executed with papermill and exported to HTML with their figures embedded,
and an index page of the reports in a folder."""

from __future__ import annotations

from .index import write_index
from .notebook import run_notebook

__all__ = ["run_notebook", "write_index"]
