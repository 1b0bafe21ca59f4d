"""Serverless: tiers of start, and scale-to-zero with a keep-alive window, priced per request (notebook 16).

>>> from labkit.studies import serverless
"""

from __future__ import annotations

from .analysis import cost_table, describe_serverless, replay_summary, replay_table, tiers_table
from .function import TIERS, process_call, warm_call, worker_call, write_function
from .pricing import LambdaPrices, compare_costs
from .replay import keep_alive_policy, live_replay
from .run import ServerlessResult, ServerlessStudy
from .trace import ambiguous, arrival_trace, offline_replay

__all__ = [
    "TIERS",
    "LambdaPrices",
    "ServerlessResult",
    "ServerlessStudy",
    "ambiguous",
    "arrival_trace",
    "compare_costs",
    "cost_table",
    "describe_serverless",
    "keep_alive_policy",
    "live_replay",
    "offline_replay",
    "process_call",
    "replay_summary",
    "replay_table",
    "tiers_table",
    "warm_call",
    "worker_call",
    "write_function",
]
