"""Model parallelism: pipeline stages in Dask actors, the measured bubble, against data parallelism (notebook 07).

>>> from labkit.studies import pipeline
"""

from __future__ import annotations

from .analysis import describe_pipeline, describe_pipeline_vs_data, pipeline_table
from .figures import pipeline_figure
from .workloads import PipelineMLP

__all__ = ["PipelineMLP", "describe_pipeline", "describe_pipeline_vs_data", "pipeline_figure", "pipeline_table"]
