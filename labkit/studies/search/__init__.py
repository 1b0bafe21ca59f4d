"""Hyperparameter search at scale: Optuna and scikit-learn searches across the workers (notebook 06).

>>> from labkit.studies import search
"""

from __future__ import annotations

from .analysis import describe_best, describe_search_scaling, search_scaling_table
from .figures import best_score_figure, search_scaling_figure
from .pruners import describe_pruners, pruner_table
from .workloads import OptunaSearch, SklearnSearch

__all__ = [
    "OptunaSearch",
    "SklearnSearch",
    "best_score_figure",
    "describe_best",
    "describe_pruners",
    "describe_search_scaling",
    "pruner_table",
    "search_scaling_figure",
    "search_scaling_table",
]
