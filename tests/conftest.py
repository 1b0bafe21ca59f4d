"""Shared fixtures: one small real cluster for the session, a fresh store per test."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import labkit
from labkit.cluster.gpu import gpu_status

GPU = gpu_status()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run ``gpu`` tests only where CuPy and a CUDA device are usable, and ``no_gpu`` tests
    (which check what labkit says without one) only where they are not."""
    no_gpu = pytest.mark.skip(reason=f"needs CuPy and a CUDA GPU: {GPU.reason}")
    has_gpu = pytest.mark.skip(reason="checks the behaviour without a GPU, and a CUDA GPU is usable here")
    for item in items:
        if "gpu" in item.keywords and not GPU.available:
            item.add_marker(no_gpu)
        if "no_gpu" in item.keywords and GPU.available:
            item.add_marker(has_gpu)


@pytest.fixture(scope="session")
def lab():
    """A real 2-worker LocalCluster (1 thread each), closed at the end of the session."""
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab
    assert lab.closed


@pytest.fixture
def scaled_lab(lab):
    """The session lab, put back to 2 workers after a test that scaled it."""
    yield lab
    lab.scale(2)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "results" / "labkit.db"


@pytest.fixture
def no_thread_leak():
    """Fail a test that leaves a non-daemon thread running."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not left, f"threads left behind: {left}"
