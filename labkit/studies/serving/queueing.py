"""M/M/c and M/G/c queues built from measured service times: latency percentiles and the peak rate under a bound.

Poisson arrivals at rate λ, ``c`` replicas each serving one query at a time with an
exponential service time of mean ``1/μ``, one first-come queue. With ``a = λ/μ`` and
Erlang's C (the chance an arrival waits), the response time ``T`` (wait + service) has

    P(T > t) = e^{-μt} (1 + C (1 - e^{-μt(c-1-a)}) / (c-1-a))      (c - 1 - a ≠ 0)
    P(T > t) = e^{-μt} (1 + C μ t)                                  (c - 1 - a = 0)

(Gross and Harris, *Fundamentals of Queueing Theory*). A real replica's service time is
closer to constant than exponential, so M/M/c's tail is longer than a real one's at low
load; it is a model to compare with, not a prediction of the measured curve. M/G/c
(:func:`simulated_peak`) keeps the Poisson arrivals and the first-come queue and draws each
service time from the measured ones instead, by simulation: it knows the real spread.

>>> round(erlang_c(1, 0.5), 3)
0.5
>>> round(response_quantile(0.99, 1, rate=5.0, service_s=0.1), 3)   # M/M/1: -ln(0.01)/(μ-λ)
0.921
>>> round(peak_rate(1, 0.1, 0.921, 0.99), 2)
5.0
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError


def erlang_c(c: int, a: float) -> float:
    """Erlang's C: the chance an arrival waits, with ``c`` servers and offered load ``a = λ/μ < c``."""
    if not 0 <= a < c:
        raise ParameterError("rate", a, f"an offered load below the {c} replicas (a stable queue)")
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1 - a / c)
    return last / (total + last)


def _tail(t: float, c: int, a: float, mu: float, wait: float) -> float:
    d = c - 1 - a
    if abs(d) < 1e-9:
        return math.exp(-mu * t) * (1 + wait * mu * t)
    # e^{-μt}(1 + C(1 - e^{-μtd})/d), written without e^{+…}, which overflows when d < 0
    return math.exp(-mu * t) + wait * (math.exp(-mu * t) - math.exp(-mu * t * (c - a))) / d


def response_quantile(q: float, c: int, *, rate: float, service_s: float) -> float:
    """The ``q``-quantile (0–1) of the response time of M/M/c at ``rate`` queries/s; ∞ when unstable."""
    mu = 1.0 / service_s
    a = rate / mu
    if a >= c:
        return math.inf
    wait = erlang_c(c, a)
    lo, hi = 0.0, service_s
    while _tail(hi, c, a, mu, wait) > 1 - q:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _tail(mid, c, a, mu, wait) > 1 - q else (lo, mid)
    return hi


def peak_rate(c: int, service_s: float, bound_s: float, q: float = 0.99) -> float:
    """The highest arrival rate whose ``q``-quantile response time stays under ``bound_s``; 0 when
    even one query alone would not (its service time's quantile is over the bound)."""
    if response_quantile(q, c, rate=1e-12, service_s=service_s) > bound_s:
        return 0.0
    lo, hi = 0.0, c / service_s
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if response_quantile(q, c, rate=mid, service_s=service_s) <= bound_s else (lo, mid)
    return lo


#: Queries each M/G/c simulation runs (the first tenth left out as warm-up).
SIM_QUERIES = 4000


def simulated_quantile(q: float, c: int, *, rate: float, service: Any, n: int = SIM_QUERIES, seed: int = 0) -> float:
    """The ``q``-quantile (0–1) of the response time of M/G/c at ``rate`` queries/s, by simulation:
    Poisson arrivals, ``c`` replicas first come first served, each query's service time drawn
    from the measured ones (``service``, seconds). The same ``seed`` draws the same queries at
    every rate (arrivals scale with ``1/rate``), so the quantile rises with the rate. ∞ when the
    offered load reaches the replicas.

    >>> round(simulated_quantile(0.99, 1, rate=1e-6, service=[0.01, 0.02]), 3)  # alone: the slowest service
    0.02
    >>> simulated_quantile(0.99, 2, rate=300.0, service=[0.01])
    inf
    """
    times = np.asarray(service, float)
    if not rate * float(times.mean()) < c:
        return math.inf
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0, n)) / rate
    draws = times[rng.integers(0, times.size, n)]
    free = [0.0] * c  # when each replica is next free: a heap
    response = np.empty(n)
    for i in range(n):
        start = max(heapq.heappop(free), arrivals[i])
        heapq.heappush(free, start + draws[i])
        response[i] = start + draws[i] - arrivals[i]
    return float(np.quantile(response[n // 10 :], q))


def simulated_peak(c: int, service: Any, bound_s: float, q: float = 0.99, steps: int = 30) -> float:
    """The highest arrival rate whose simulated ``q``-quantile (:func:`simulated_quantile`) stays
    under ``bound_s``; 0 when even a query alone would not.

    >>> 0 < simulated_peak(1, [0.01], 0.1) < 100 < simulated_peak(2, [0.01], 0.1) < 200
    True
    """
    times = np.asarray(service, float)
    if times.size == 0 or not np.isfinite(times).all():
        return math.nan
    if simulated_quantile(q, c, rate=1e-9, service=times) > bound_s:
        return 0.0
    lo, hi = 0.0, c / float(times.mean())
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if simulated_quantile(q, c, rate=mid, service=times) <= bound_s else (lo, mid)
    return lo
