"""Serverless: the trace, the offline keep-alive replay on known inputs, Lambda's billing, parameters
refused before any work, a real replay from zero workers whose cold starts the offline replay
predicts, and notebook 16 run headless."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import papermill
import pytest

from labkit import ResultStore
from labkit.common.errors import ParameterError
from labkit.studies import serverless

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "16_serverless.ipynb"


def test_the_trace_is_seeded_sorted_and_holds_its_bursts() -> None:
    a = serverless.arrival_trace(0.5, 60.0, bursts=2, burst_size=5, seed=3)
    assert np.array_equal(a, serverless.arrival_trace(0.5, 60.0, bursts=2, burst_size=5, seed=3))
    assert (np.diff(a) >= 0).all() and a.min() >= 0 and a.max() < 60.0
    assert len(serverless.arrival_trace(0.5, 60.0, bursts=0, seed=3)) == len(a) - 10


def test_the_offline_replay_counts_a_cold_start_per_gap_past_the_keep_alive() -> None:
    arrivals = [0.0, 1.0, 2.0, 9.0, 9.5, 20.0]
    out = serverless.offline_replay(arrivals, service_s=0.5, keep_alive_s=5.0, cold_s=2.0)
    # 0: cold, ready at 2, done 2.5, 3.0, 3.5 (kept to 8.5); 9.0: cold again; 20.0: cold again
    assert out["cold"].tolist() == [True, False, False, True, False, True]
    assert out["latency_s"][:3].tolist() == pytest.approx([2.5, 2.0, 1.5])
    assert out["instance_s"] == pytest.approx((8.5 - 0) + (9.0 + 2 + 1.0 + 5 - 9.0) + (20 + 2.5 + 5 - 20))
    # a keep-alive longer than every gap: one cold start
    assert serverless.offline_replay(arrivals, service_s=0.5, keep_alive_s=60.0, cold_s=2.0)["cold_starts"] == 1


def test_lambda_bills_each_request_by_the_millisecond() -> None:
    p = serverless.LambdaPrices()
    assert p.billed_s([0.0001, 0.001, 0.0011]).tolist() == pytest.approx([0.001, 0.001, 0.002])
    # 1,000 requests of 1 ms at 1,024 MB: 1,000 × 0.2e-6 + 1 GB-s × 0.0000166667
    assert p.request_cost(np.full(1000, 0.001), 1024) == pytest.approx(2e-4 + 1.66667e-5)
    c = serverless.compare_costs({"run_s": [0.001] * 4, "init_s": [1.0, 0, 0, 0]}, p, 1024, 3.6, 10.0)
    assert c["always_on"] == pytest.approx(0.01) and c["lambda"] > c["lambda_per_million"] / 1e6 * 4 - 1e-12
    assert "taken 2024-06" in p.describe() and "an estimate" in p.describe()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"keep_alive_s": 0}, "keep_alive_s"),
        ({"rate": -1}, "rate"),
        ({"memory_mb": 64}, "memory_mb"),
        ({"repeats": 0}, "repeats"),
        ({"instance": "no-such-type"}, "instance"),
        ({"bursts": 1.5}, "bursts"),
    ],
)
def test_bad_parameters_are_refused_before_any_work(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError) as info:
        serverless.ServerlessStudy(**kwargs)
    assert name in str(info.value) or "instance" in str(info.value)


def test_cold_starts_from_zero_workers_are_what_the_offline_replay_predicts(scaled_lab) -> None:
    folder = Path(tempfile.mkdtemp())
    path = serverless.write_function(folder)
    # Gaps either far below the keep-alive or far past it (and past a slow cold start): no arrival is ambiguous.
    arrivals = [0.0, 0.2, 0.4, 16.0, 16.2]
    live = serverless.live_replay(scaled_lab, str(path), arrivals, 1.5)
    offline = serverless.offline_replay(
        arrivals,
        service_s=float(np.median(live["run_s"])),
        keep_alive_s=live["keep_alive_s"],
        cold_s=live["latency_s"][0],
    )
    assert serverless.ambiguous(arrivals, live["end_s"], live["keep_alive_s"], live["interval_s"] + 0.5) == 0
    assert live["cold_starts"] == offline["cold_starts"] == 2
    assert live["cold"] == offline["cold"].tolist() == [True, False, False, True, False]
    assert scaled_lab.workers == 2  # scaled back after the replay


SMALL = {
    "repeats": 2,
    "rate": 0.2,
    "duration_s": 8.0,
    "bursts": 1,
    "burst_size": 3,
    "keep_alive_s": 1.5,
    "experiment": "nb16",
}


def test_notebook_declares_the_parameters_the_tests_set() -> None:
    assert set(SMALL) | {"store", "memory_mb", "instance"} <= set(papermill.inspect_notebook(str(NOTEBOOK)))


def test_notebook_counts_cold_starts_and_prices_them(tmp_path: Path, notebooks_store) -> None:
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(notebooks_store.path) as s:
        starts, replay = s.trials_frame("nb16/starts"), s.trials_frame("nb16/replay")
        runs = s.runs_frame()
    assert sorted(starts["tier"].value_counts().to_dict().items()) == [("process", 2), ("warm", 2), ("worker", 2)]
    assert len(replay) == 1 and replay["cold_starts"].iloc[0] >= 1
    assert "Lambda prices: USD 0.2 per million requests" in printed
    assert any("per_gb_second" in str(c) for c in runs["config"]) if "config" in runs else True
    if all_loaded(starts):
        assert NOTHING_LEFT in printed
    else:
        assert "a warm call" in printed  # its time, or "not measured against a warm call" where those ran under load
