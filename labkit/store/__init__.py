"""The store: every run, trial, monitor sample, alert and probe result in one SQLite file.

>>> from labkit.store import ResultStore, Trial
>>> with ResultStore(":memory:") as store:
...     store.trials_frame().empty
True
"""

from __future__ import annotations

from .db import ResultStore
from .schema import (
    CORE_COLUMNS,
    DEFAULT_PATH,
    RUN_STATUSES,
    STATUSES,
    Trial,
    check_store_path,
    default_path,
    expand_trials,
    project_root,
    resolve_store_path,
    trial_record,
)

__all__ = [
    "CORE_COLUMNS",
    "DEFAULT_PATH",
    "RUN_STATUSES",
    "STATUSES",
    "ResultStore",
    "Trial",
    "check_store_path",
    "project_root",
    "resolve_store_path",
    "default_path",
    "expand_trials",
    "trial_record",
]
