"""What a trace costs as Lambda-priced requests and on one always-on worker: a labelled estimate.

:class:`LambdaPrices` is the price snapshot (AWS Lambda's list prices as the study took
them, with their source and date): a price per million requests and per GB-second, duration
billed in whole milliseconds, and memory that sets the CPU (one vCPU per 1,769 MB). The
always-on worker is priced from labkit's instance price table
(:func:`labkit.analysis.prices.load_prices`), billed for the whole trace.

>>> p = LambdaPrices()
>>> round(p.request_cost(0.0101, 1024) * 1e6, 3)   # 11 ms billed at 1 GB, per million requests
0.383
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError


@dataclass(frozen=True)
class LambdaPrices:
    """AWS Lambda's list prices (x86, us-east-1) as a snapshot: what, where from, when taken."""

    per_million_requests: float = 0.20
    per_gb_second: float = 0.0000166667
    billing_ms: float = 1.0
    mb_per_vcpu: float = 1769.0
    currency: str = "USD"
    source: str = "https://aws.amazon.com/lambda/pricing/"
    date: str = "2024-06"

    def billed_s(self, seconds: Any) -> np.ndarray:
        """Each duration rounded up to the billing step."""
        step = self.billing_ms / 1000
        return np.ceil(np.asarray(seconds, float) / step - 1e-9) * step

    def request_cost(self, seconds: Any, memory_mb: float) -> float:
        """What the requests of these durations cost at ``memory_mb``: per request plus GB-seconds billed."""
        billed = self.billed_s(seconds)
        return (
            billed.size * self.per_million_requests / 1e6 + float(billed.sum()) * memory_mb / 1024 * self.per_gb_second
        )

    def describe(self) -> str:
        return (
            f"Lambda prices: {self.currency} {self.per_million_requests:g} per million requests and "
            f"{self.per_gb_second:g} per GB-second, billed per {self.billing_ms:g} ms; one vCPU per "
            f"{self.mb_per_vcpu:g} MB (from {self.source}, taken {self.date}; list prices, an estimate, not a bill)."
        )

    def snapshot(self) -> dict[str, Any]:
        """The snapshot as plain data, to store with the run."""
        return asdict(self)


def check_memory(memory_mb: Any) -> float:
    """A function's memory in MB: 128 to 10,240, as Lambda allows."""
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, (int, float)) or not 128 <= memory_mb <= 10240:
        raise ParameterError("memory_mb", memory_mb, "a number of MB from 128 to 10,240 (Lambda's range)")
    return float(memory_mb)


def compare_costs(
    calls: Any, prices: LambdaPrices, memory_mb: float, always_on_hourly: float, span_s: float, bill_init: bool = True
) -> dict[str, float]:
    """The trace's cost as Lambda requests (each call's run time, and its model load where ``bill_init``)
    against one always-on worker at ``always_on_hourly`` held for ``span_s``; per million requests too."""
    run = np.asarray(calls["run_s"], float) + (np.asarray(calls["init_s"], float) if bill_init else 0.0)
    n = len(run)
    lam = prices.request_cost(run, memory_mb)
    always = always_on_hourly * span_s / 3600
    per = 1e6 / n if n else math.nan
    return {
        "requests": n,
        "lambda": lam,
        "always_on": always,
        "lambda_per_million": lam * per,
        "always_on_per_million": always * per,
    }
