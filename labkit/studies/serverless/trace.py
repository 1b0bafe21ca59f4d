"""A Poisson-plus-burst arrival trace, and its offline replay under a keep-alive policy.

:func:`arrival_trace` draws Poisson arrivals at ``rate`` over ``duration_s`` and adds
``bursts`` bursts of ``burst_size`` arrivals each within ``burst_s`` (seeded).
:func:`offline_replay` applies a scale-to-zero policy to a trace, with no cluster: one
instance at most; an arrival that finds no instance starts one (a cold start, ready
``cold_s`` later); queries queue first-come; an instance is kept ``keep_alive_s`` after it
last finished work, then stopped.

>>> offline_replay([0.0, 0.5, 10.0, 10.2, 30.0], service_s=0.1, keep_alive_s=5.0, cold_s=1.0)["cold_starts"]
3
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError


def arrival_trace(
    rate: float, duration_s: float, bursts: int = 2, burst_size: int = 8, burst_s: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Sorted arrival times (s from 0): Poisson at ``rate``/s over ``duration_s``, plus the bursts."""
    for name, value in (("rate", rate), ("duration_s", duration_s), ("burst_s", burst_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ParameterError(name, value, "a number > 0")
    for name, value in (("bursts", bursts), ("burst_size", burst_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ParameterError(name, value, "an integer >= 0")
    rng = np.random.default_rng(seed)
    poisson = np.cumsum(rng.exponential(1 / rate, int(rate * duration_s * 2) + 10))
    poisson = poisson[poisson < duration_s]
    starts = rng.uniform(0, max(duration_s - burst_s, 0), bursts)
    burst = (starts[:, None] + rng.uniform(0, burst_s, (bursts, burst_size))).ravel()
    return np.sort(np.concatenate([poisson, burst]))


def offline_replay(arrivals: Any, *, service_s: float, keep_alive_s: float, cold_s: float) -> dict[str, Any]:
    """The policy applied to ``arrivals`` with no cluster: cold starts, which arrivals were cold,
    instance-seconds held (each instance from its start to its stop), and each query's latency."""
    t = np.sort(np.asarray(arrivals, float))
    ready, last_done, alive_until = -math.inf, -math.inf, -math.inf
    cold, latency, held, started = np.zeros(t.size, bool), np.zeros(t.size), 0.0, None
    for i, a in enumerate(t):
        if a > alive_until:
            if started is not None:
                held += alive_until - started
            cold[i], started, ready = True, a, a + cold_s
        begin = max(a, ready, last_done)
        last_done = begin + service_s
        alive_until = last_done + keep_alive_s
        latency[i] = last_done - a
    if started is not None:
        held += alive_until - started
    return {"cold_starts": int(cold.sum()), "cold": cold, "latency_s": latency, "instance_s": held}


def ambiguous(arrivals: Any, finished: Any, keep_alive_s: float, margin_s: float) -> int:
    """Arrivals that came within ``margin_s`` of the keep-alive's end after the previous query finished:
    where a policy that decides every ``margin_s`` may go either way."""
    a, done = np.asarray(arrivals, float), np.asarray(finished, float)
    if a.size < 2:
        return 0
    idle = a[1:] - np.maximum.accumulate(done[:-1])
    return int((np.abs(idle - keep_alive_s) <= margin_s).sum())
