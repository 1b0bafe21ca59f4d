"""What if: the replay engine's exact cases and bounds, the trace's completeness and its place
in the store, a small real predicted-against-measured check, and notebook 18 run headless."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labkit
from labkit import ResultStore
from labkit.common.errors import DataError, ParameterError
from labkit.measure.trace import Trace
from labkit.studies import whatif
from labkit.studies.whatif.engine import Graph, VirtualCluster, simulate
from labkit.studies.whatif.workloads import graph

try:
    from .nbtext import printed_text
except ImportError:
    from nbtext import printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "18_what_if.ipynb"
EPS = 1e-9


# -- the engine: exact where it must be ---------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    n = draw(st.integers(1, 40))
    durations = draw(st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=n, max_size=n))
    deps = [sorted(set(draw(st.lists(st.integers(0, i - 1), max_size=3)))) if i else [] for i in range(n)]
    order = draw(st.permutations(range(n)))
    return Graph(durations, deps, priority=list(order))


@settings(max_examples=300, deadline=None)
@given(dags(), st.integers(1, 4), st.integers(1, 3))
def test_replay_lies_between_the_lower_bound_and_grahams(g: Graph, workers: int, threads: int) -> None:
    """With an instant network and no overhead the replay is a list schedule: never below
    max(critical path, work / slots), never above work / slots + (1 - 1/slots) × critical path."""
    c = VirtualCluster(workers, threads)
    m, cp, work = c.slots, g.critical_path(), g.work()
    t = simulate(g, c).makespan
    assert t >= max(cp, work / m) - EPS
    assert t <= work / m + (1 - 1 / m) * cp + EPS


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 6), st.floats(0.01, 3.0))
def test_equal_independent_tasks_take_exactly_work_over_slots(workers: int, threads: int, k: int, d: float) -> None:
    c = VirtualCluster(workers, threads)
    g = Graph([d] * (k * c.slots), [[] for _ in range(k * c.slots)])
    assert simulate(g, c).makespan == pytest.approx(k * d, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 3.0), min_size=1, max_size=30), st.integers(1, 4), st.integers(1, 3))
def test_a_chain_takes_exactly_its_critical_path(durations: list[float], workers: int, threads: int) -> None:
    g = Graph(durations, [[i - 1] if i else [] for i in range(len(durations))])
    assert simulate(g, VirtualCluster(workers, threads)).makespan == pytest.approx(sum(durations), abs=1e-12)


def test_a_slower_network_and_a_smaller_memory_cost_time() -> None:
    """Two leaves per worker feed one sink: with a finite bandwidth the sink waits for a transfer;
    with a memory limit below the results, they spill and are read back."""
    g = Graph([1.0, 1.0, 1.0, 1.0, 0.5], [[], [], [], [], [0, 1, 2, 3]], nbytes=[10**8] * 5)
    free = simulate(g, VirtualCluster(2, 2)).makespan
    slow = simulate(g, VirtualCluster(2, 2, bandwidth=1e8))
    assert free == pytest.approx(1.5) and slow.makespan == pytest.approx(1.5 + 2.0) and slow.transferred == 2e8
    tight = simulate(g, VirtualCluster(1, 4, memory_limit=3e8, disk_bandwidth=1e9))
    assert tight.spilled > 0 and tight.makespan > simulate(g, VirtualCluster(1, 4)).makespan


def test_overhead_is_charged_per_task() -> None:
    g = Graph([1.0] * 4, [[], [0], [1], [2]])
    assert simulate(g, VirtualCluster(1, overhead_s=0.01)).makespan == pytest.approx(4.04)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"workers": 0}, "workers"), ({"workers": 1, "threads": 1.5}, "threads"), ({"workers": 1, "bandwidth": 0}, "bandwidth"),
     ({"workers": 1, "memory_limit": -1}, "memory_limit"), ({"workers": 1, "spill_at": 2}, "spill_at")],
)  # fmt: skip
def test_a_bad_virtual_cluster_is_refused_by_name(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        VirtualCluster(**kwargs)


def test_a_cycle_and_bad_options_are_refused() -> None:
    with pytest.raises(ParameterError, match="acyclic"):
        Graph([1.0, 1.0], [[1], [0]]).critical_path()
    with pytest.raises(ParameterError, match="trace"):
        whatif.predict("not a trace")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="trace"):
        labkit.Sweep(whatif.SleepGraph(), grid={"tasks": [4]}, trace="yes")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="shape"):
        labkit.Sweep(whatif.SleepGraph(), grid={"shape": ["star"]})


# -- the trace ------------------------------------------------------------------------------


def _big_trace(n: int = 10_000) -> Trace:
    rnd = random.Random(0)
    deps = [sorted({rnd.randrange(i) for _ in range(2)}) if i > 50 else [] for i in range(n)]
    ptr = [0]
    for d in deps:
        ptr.append(ptr[-1] + len(d))
    start = [rnd.uniform(0, 10) for _ in range(n)]
    return Trace(
        prefixes=["a", "b"], prefix=[i % 2 for i in range(n)], worker=[i % 4 for i in range(n)],
        thread=[i % 2 for i in range(n)], start=start, stop=[s + rnd.uniform(0.001, 0.1) for s in start],
        nbytes=[rnd.randrange(10**6) for _ in range(n)], priority=list(range(n)), dep_ptr=ptr,
        dep_idx=[x for d in deps for x in d], io=[[i, 0, start[i] - 0.01, start[i]] for i in range(0, n, 3)],
        inputs=[], workers=[{"address": f"w{i}", "threads": 2, "memory_limit": 2**30} for i in range(4)],
        wall_s=11.0,
    )  # fmt: skip


def test_a_10000_task_trace_is_compact_and_reads_back() -> None:
    trace = _big_trace()
    data = trace.to_bytes()
    assert len(data) < 3 * 2**20
    back = Trace.from_bytes(data)
    assert back.tasks == trace.tasks and back.deps(9999) == trace.deps(9999) and back.workers == trace.workers
    assert max(abs(a - b) for a, b in zip(back.stop, trace.stop)) < 1e-6
    with pytest.raises(DataError, match="not a labkit trace"):
        Trace.from_bytes(b"nonsense")


def test_a_swept_trace_is_complete_stored_exported_and_predicts_the_measured_order(
    scaled_lab, store_path: Path, tmp_path: Path
) -> None:
    """Traced at 1 worker, predicted for 2, run on 2: the trace holds every task of the graph with
    its dependencies, sizes, worker and thread; the prediction has the run's order of magnitude."""
    params = {"shape": "layers", "tasks": 16, "task_ms": 30.0, "result_kb": 64.0, "spread": 0.2}
    sweep = labkit.Sweep(whatif.SleepGraph(), grid={"workers": [1, 2]}, params=params, repeats=2, warmup=1,
                         store=store_path, experiment="whatif-test", trace=True, order="sequential")  # fmt: skip
    results = sweep.run(scaled_lab, live=False, monitor=False)
    ok = results.frame[results.frame["status"] == "ok"]
    assert len(ok) == 4
    dsk, _ = graph({**whatif.SleepGraph.defaults, **params})
    trace = whatif.trace_of(results, workers=1)
    assert trace.tasks == len(dsk) and sorted(trace.prefixes) == ["layer1", "layer2", "layer3", "leaf", "total"]
    leaves = [i for i in range(trace.tasks) if trace.prefixes[trace.prefix[i]] == "leaf"]
    assert all(trace.deps(i) == [] for i in leaves) and all(trace.nbytes[i] >= 64 * 1024 for i in leaves)
    total = trace.prefix.index(trace.prefixes.index("total"))
    assert len(trace.deps(total)) == 4 and trace.nbytes[total] < 100
    assert all(0 <= a <= b for a, b in zip(trace.start, trace.stop)) and set(trace.worker) == {0}
    assert trace.workers[0]["threads"] == 1 and trace.workers[0]["memory_limit"] > 0 and trace.overhead_s is not None
    assert (
        trace.wall_s == pytest.approx(ok[ok["workers"] == 1]["wall_s"].sort_values().iloc[0], rel=1)
        and trace.span_s > 0
    )
    own = whatif.predict(trace, samples=10)
    assert 0.5 < own.wall.value / trace.wall_s < 2 and (math.isnan(own.wall.lo) or own.wall.lo < own.wall.hi)
    table = whatif.what_if(trace, {"2 workers": {"workers": 2}}, samples=10)
    check = whatif.against_measured(table, results.frame)
    # Another run than the traced one, on a machine that may be busy: the order of magnitude.
    assert check["runs"].tolist() == [2] and 0.1 < check["predicted_s"].iloc[0] / check["measured_s"].iloc[0] < 10
    text = str(whatif.describe_against_measured(results.frame, table))
    assert "the measured median" in text or "No trial is left" in text
    with ResultStore(store_path) as store:
        stored = store.traces_frame(results.run_id)
        bundle = store.export_bundle(tmp_path / "bundle")
    assert set(stored["trial_id"]) == set(ok["trial_id"])
    exported = pd.read_parquet(bundle["traces"])
    assert Trace.from_bytes(bytes(exported["trace"].iloc[0])).tasks == len(dsk)


# -- notebook 18 ----------------------------------------------------------------------------

SMALL = {"tasks": 8, "task_ms": 20.0, "result_kb": 16.0, "repeats": 2, "many_workers": 4, "samples": 10, "threads": 1}


def test_notebook_predicts_and_compares_under_papermill(tmp_path: Path, notebooks_store) -> None:
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    assert "predicted" in printed and "The replay ignores:" in printed and "an estimate" in printed
    with ResultStore(notebooks_store.path) as s:
        traced = s.trials_frame("nb18/traced")
        assert len(s.traces_frame()) >= 2 and (traced["status"] == "ok").all()
