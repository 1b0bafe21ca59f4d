"""What if: the replay engine's exact cases and bounds (and Dask's dispatch and placement), the
trace's completeness and its place in the store, a small real predicted-against-measured check,
the network probe, a graph rebuilt at another chunk size, and notebook 18 run headless."""

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


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 3.0), min_size=1, max_size=30), st.integers(1, 4), st.floats(0.0, 0.1))
def test_each_link_of_a_chain_waits_one_dispatch(durations: list[float], workers: int, dispatch: float) -> None:
    """A dependent task reaches a worker one round trip through the scheduler after its input ends."""
    g = Graph(durations, [[i - 1] if i else [] for i in range(len(durations))])
    c = VirtualCluster(workers, 2, dispatch_s=dispatch)
    expected = sum(durations) + (len(durations) - 1) * dispatch
    assert simulate(g, c).makespan == pytest.approx(expected, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 6), st.floats(0.01, 1.0))
def test_a_task_waiting_on_each_worker_hides_the_dispatch(workers: int, threads: int, k: int, d: float) -> None:
    """Root tasks: with room for two per thread, a freed thread finds the next one there, so
    equal independent tasks still take exactly work / slots (the dispatch is shorter than a task)."""
    c = VirtualCluster(workers, threads, dispatch_s=d / 2, saturation=2.0)
    g = Graph([d] * (k * c.slots), [[] for _ in range(k * c.slots)])
    assert simulate(g, c).makespan == pytest.approx(k * d, rel=1e-9)


def test_a_task_runs_where_its_inputs_are_and_they_travel_while_threads_work() -> None:
    """Dask's locality rule: two chains on two workers never move data, even where the other
    worker's thread is free; a task whose inputs sit on two workers fetches the missing ones."""
    chains = Graph([1.0, 0.2, 1.0, 0.2, 1.0], [[], [], [0], [1], [3]], nbytes=[10**8] * 5)
    s = simulate(chains, VirtualCluster(2, 1, bandwidth=1e9))
    assert s.transferred == 0 and s.worker[2] == s.worker[0] and s.worker[4] == s.worker[1]
    join = Graph([1.0, 1.0, 0.5], [[], [], [0, 1]], nbytes=[10**8, 10**8, 8])
    s = simulate(join, VirtualCluster(2, 1, bandwidth=1e8, latency_s=0.01))
    assert s.transferred == 1e8 and s.makespan == pytest.approx(1.0 + 1.0 + 0.01 + 0.5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"workers": 0}, "workers"), ({"workers": 1, "threads": 1.5}, "threads"), ({"workers": 1, "bandwidth": 0}, "bandwidth"),
     ({"workers": 1, "memory_limit": -1}, "memory_limit"), ({"workers": 1, "spill_at": 2}, "spill_at"),
     ({"workers": 1, "dispatch_s": -1}, "dispatch_s"), ({"workers": 1, "saturation": 0}, "saturation")],
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


def test_the_task_time_ratio_weighs_kinds_by_their_traced_time() -> None:
    """Kind "a" twice as slow, kind "b" unchanged, "a" holding half the traced task time: 1.5×."""
    trace = _big_trace(2000)
    slower = Trace.from_bytes(trace.to_bytes())
    slower.stop = [b + (b - a) * (slower.prefix[i] == 0) for i, (a, b) in enumerate(zip(slower.start, slower.stop))]
    share = sum(b - a for a, b, p in zip(trace.start, trace.stop, trace.prefix) if p == 0) / sum(
        b - a for a, b in zip(trace.start, trace.stop)
    )
    est = whatif.task_time_ratio(trace, slower)
    assert est.value == pytest.approx(1 + share, rel=1e-6) and est.lo < est.value < est.hi
    assert whatif.task_time_ratio(trace, trace).lo < 1 < whatif.task_time_ratio(trace, trace).hi


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


def test_the_network_probe_gives_what_a_one_worker_trace_lacks(lab) -> None:
    """Loopback transfers and the round trip through the scheduler: their order of magnitude."""
    net = whatif.measure_network(lab, repeats=3, links=10)
    assert 1e-6 < net.latency_s < 1.0 and net.bandwidth > 1e6 and 1e-5 < net.gap_s < 1.0
    assert "loopback" in net.note
    with pytest.raises(ParameterError, match="links"):
        whatif.measure_network(lab, links=1)


def test_a_rebuilt_graph_is_the_traced_one_and_predicts_another_chunk_size(scaled_lab, store_path: Path) -> None:
    """array-sum traced at three chunk sizes: the graph rebuilt at each has the traced run's
    tasks, kinds and inputs; from two of them, the third is predicted (an estimate whose
    interval holds it) to the measured run's order of magnitude."""
    params, sizes = {"size_mb": 8.0}, [0.5, 2.0, 1.0]
    sweep = labkit.Sweep("array-sum", grid={"workers": [1], "chunk_mb": sizes}, params=params, repeats=2, warmup=1,
                         store=store_path, experiment="whatif-chunks", trace=True, order="sequential")  # fmt: skip
    results = sweep.run(scaled_lab, live=False, monitor=False)
    for size in sizes:
        t = whatif.trace_of(results, workers=1, chunk_mb=size)
        g = whatif.rebuild("array-sum", {**params, "chunk_mb": size})
        assert len(g["kinds"]) == t.tasks and sorted(set(g["kinds"])) == sorted(t.prefixes)
        assert sorted(g["inputs"]) == sorted(b for b, _ in t.inputs)
    traces = [t for size in sizes[:2] for t in whatif.traces_of(results, workers=1, chunk_mb=size)]
    p = whatif.predict_chunks(traces, "array-sum", {**params, "chunk_mb": 1.0}, samples=10)
    assert p.wall.lo <= p.wall.value <= p.wall.hi and p.wall.lo < p.wall.hi
    ran = results.frame[(results.frame["chunk_mb"] == 1.0) & (results.frame["status"] == "ok")]
    assert 0.1 < p.wall.value / ran["wall_s"].median() < 10
    text = whatif.describe_chunks(ran, p, "array-sum", "chunk_mb=1.0")
    assert "an estimate from the rebuilt graph" in text and "The estimate ignores:" in text
    assert "the measured median" in text or "no comparison claimed" in text
    with pytest.raises(ParameterError, match="workload"):
        whatif.rebuild("dataframe-groupby", {})


# -- notebook 18 ----------------------------------------------------------------------------

SMALL = {
    "tasks": 8, "task_ms": 20.0, "result_kb": 16.0, "repeats": 2, "many_workers": 4, "samples": 10, "threads": 1,
    "chunk_params": {"size_mb": 8.0}, "traced_chunks": [0.5, 2.0], "asked_chunk": 1.0,
}  # fmt: skip


def test_notebook_predicts_and_compares_under_papermill(tmp_path: Path, notebooks_store) -> None:
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    assert "predicted" in printed and "The replay ignores:" in printed and "an estimate" in printed
    assert "array-sum at chunk_mb=1.0: predicted" in printed and "The estimate ignores:" in printed
    with ResultStore(notebooks_store.path) as s:
        traced = s.trials_frame("nb18/traced")
        assert len(s.traces_frame()) >= 2 and (traced["status"] == "ok").all()
