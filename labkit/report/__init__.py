"""Reports: notebooks executed with papermill and exported to HTML with their figures embedded."""

from __future__ import annotations

from .notebook import run_notebook

__all__ = ["run_notebook"]
