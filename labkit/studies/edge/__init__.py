"""Edge: a constrained worker behind a slow link; compute on the device or send the input, the crossover (notebook 17).

>>> from labkit.studies import edge
"""

from __future__ import annotations

from .analysis import describe_edge, measured_crossover, model_crossover, size_table, transfer_words
from .link import ShapedLink, link_support
from .offload import EdgeWorker, Gateway, infer
from .run import EdgeResult, EdgeStudy

__all__ = [
    "EdgeResult",
    "EdgeStudy",
    "EdgeWorker",
    "Gateway",
    "ShapedLink",
    "describe_edge",
    "infer",
    "link_support",
    "measured_crossover",
    "model_crossover",
    "size_table",
    "transfer_words",
]
