"""Edge: the time model and the crossover on known inputs, parameters refused before any work, the
edge worker pinned and removed, a shaped link whose transfer matches its configured rate (where a
namespace can be made here) and that is removed even when the run inside fails, and notebook 17
run headless."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

from labkit import ResultStore
from labkit.common.errors import ParameterError
from labkit.studies import edge
from labkit.studies.edge.offload import Gateway

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "17_edge.ipynb"
SUPPORT = edge.link_support()
needs_link = pytest.mark.skipif(bool(SUPPORT), reason=f"no shaped link here: {SUPPORT}")


def _frame(edge_s: dict[int, float], offload_s: dict[int, float], compute_s: dict[int, float]) -> pd.DataFrame:
    rows = [
        {"place": "edge", "size": s, "times": [t] * 5, "bytes_moved": 0.0, "cloud_compute": [], "status": "ok"}
        for s, t in edge_s.items()
    ]
    rows += [
        {
            "place": "cloud",
            "size": s,
            "times": [t] * 5,
            "bytes_moved": s * 1.04,
            "cloud_compute": [compute_s[s]] * 5,
            "status": "ok",
        }
        for s, t in offload_s.items()
    ]
    return pd.DataFrame(rows)


def test_the_time_model_and_the_measured_crossover_on_known_inputs() -> None:
    kib = 1024
    # device: 1 µs per byte; cloud: 0.25 µs per byte of compute; link 8 Mbit/s = 1 µs per byte... never ahead
    sizes = [16 * kib, 64 * kib, 256 * kib]
    slow = _frame({s: 1e-6 * s for s in sizes}, {s: 0.01 + 1.25e-6 * s for s in sizes}, {s: 0.25e-6 * s for s in sizes})
    table = edge.size_table(slow, 8.0)
    assert math.isnan(edge.model_crossover(table)) and math.isnan(edge.measured_crossover(table))
    # at 80 Mbit/s (0.1 µs per byte) offloading's slope is 0.35 µs per byte: ahead past 0.03 / 0.65e-6 bytes (45 KiB)
    fast = _frame({s: 1e-6 * s for s in sizes}, {s: 0.03 + 0.35e-6 * s for s in sizes}, {s: 0.25e-6 * s for s in sizes})
    table = edge.size_table(fast, 80.0)
    assert edge.model_crossover(table) == pytest.approx(0.03 / 0.65e-6 / kib, rel=1e-6)
    assert 16 < edge.measured_crossover(table) < 64
    assert (
        table["offload_bytes"].tolist() == pytest.approx([s * 1.04 for s in sizes]) and (table["edge_bytes"] == 0).all()
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sizes_kb": []}, "sizes_kb"),
        ({"bandwidth_mbit": 0}, "bandwidth_mbit"),
        ({"edge_core": 99}, "edge_core"),
        ({"edge_memory": "lots"}, "edge_memory"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_bad_parameters_are_refused_before_any_work(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        edge.EdgeStudy(**kwargs)


def test_the_edge_worker_is_pinned_to_its_core_and_removed(scaled_lab) -> None:
    with edge.EdgeWorker(scaled_lab, "256MiB", 0) as worker:
        assert len(scaled_lab.client.scheduler_info()["workers"]) == 3
        affinity = scaled_lab.client.run(os.sched_getaffinity, 0, workers=[worker.address])[worker.address]
        info = scaled_lab.client.scheduler_info()["workers"][worker.address]
        assert affinity == {0} and info["nthreads"] == 1 and info["memory_limit"] == 256 * 2**20
        assert scaled_lab.client.submit(edge.infer, 64 * 1024, 64, workers=[worker.address]).result() > 0
    scaled_lab.client.wait_for_workers(2)
    assert worker.address not in scaled_lab.client.scheduler_info()["workers"]


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@needs_link
def test_a_shaped_link_moves_bytes_at_its_configured_rate(lab) -> None:
    size, rate = 1024 * 1024, 40.0
    with edge.ShapedLink(rate) as link, Gateway(lab, "unused", link.host_ip, 64) as gw:
        from labkit.studies.edge.run import _device

        before = link.received_bytes()
        times = [t for _, t in _device(link.prefix(), link.host_ip, gw.port, "e", 3, [size])]
        moved = link.received_bytes() - before
        ns = link.ns
    expected = size * 8 / (rate * 1e6)
    assert abs(np.median(times) / expected - 1) <= 0.1  # the check: within 10% of bytes / bandwidth
    assert moved >= 3 * size  # the link counted every byte sent, headers besides
    assert ns not in _namespaces()


@needs_link
def test_the_namespace_is_removed_when_the_run_inside_fails() -> None:
    with pytest.raises(RuntimeError), edge.ShapedLink(10.0) as link:
        ns = link.ns
        raise RuntimeError("a failed run")
    assert ns not in _namespaces()


SMALL = {"sizes_kb": [16, 256], "repeats": 2, "hidden": 1024, "bandwidth_mbit": 50.0, "experiment": "nb17"}


def test_notebook_declares_the_parameters_the_tests_set() -> None:
    assert set(SMALL) | {"store", "edge_memory"} <= set(papermill.inspect_notebook(str(NOTEBOOK)))


def test_notebook_compares_the_device_with_offloading(tmp_path: Path, notebooks_store) -> None:
    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(notebooks_store.path) as s:
        frame = s.trials_frame("nb17/offload")
    assert {"edge", "cloud"} <= set(frame["place"]) and (frame["status"] == "ok").all()
    assert ("cannot" in printed or "not shaped" in printed) if SUPPORT else "A shaped link can be made here" in printed
    if all_loaded(frame) or NOTHING_LEFT in printed:  # under load, too few trials may be left for any size
        assert "nothing is claimed" in printed
    else:
        assert "Crossover size" in printed and "Transfer" in printed
    assert "lke" not in _namespaces()
