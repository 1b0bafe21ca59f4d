"""Shared fixtures: one small real cluster for the session, a fresh store per test, and one
store for the session that every notebook test runs its notebook into."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import labkit
from labkit.cluster.gpu import gpu_status

GPU = gpu_status()


AFTER_NOTEBOOKS = "after_notebooks"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{AFTER_NOTEBOOKS}: reads the store the notebook tests wrote; runs at the end of the session"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run ``gpu`` tests only where CuPy and a CUDA device are usable, and ``no_gpu`` tests
    (which check what labkit says without one) only where they are not; move the
    ``after_notebooks`` tests to the end, after every notebook test of the session."""
    no_gpu = pytest.mark.skip(reason=f"needs CuPy and a CUDA GPU: {GPU.reason}")
    has_gpu = pytest.mark.skip(reason="checks the behaviour without a GPU, and a CUDA GPU is usable here")
    for item in items:
        if "gpu" in item.keywords and not GPU.available:
            item.add_marker(no_gpu)
        if "no_gpu" in item.keywords and GPU.available:
            item.add_marker(has_gpu)
    last = [item for item in items if item.get_closest_marker(AFTER_NOTEBOOKS)]
    items[:] = [item for item in items if item not in last] + last


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


@dataclass
class NotebooksStore:
    """The session's one store for notebook runs, and the notebooks (by name) that ran into it."""

    path: Path
    ran: set[str] = field(default_factory=set)

    def run(self, notebook: Path, params: dict[str, Any], tmp: Path) -> Any:
        """Run ``notebook`` with ``params`` and this store as its ``store``, in the working
        folder ``tmp`` with its report in ``tmp / "out"``; the run's ``ReportResult``."""
        from labkit.report import run_notebook

        self.ran.add(notebook.stem)
        return run_notebook(notebook, {**params, "store": str(self.path)}, tmp / "out", cwd=tmp)


@pytest.fixture(scope="session")
def notebooks_store(tmp_path_factory: pytest.TempPathFactory) -> NotebooksStore:
    """One store for the session: the notebook tests run their notebooks into it, with their
    own experiment names, and tests/test_export_notebooks.py exports it at the end."""
    folder = tmp_path_factory.getbasetemp() / "notebooks-store"
    folder.mkdir(exist_ok=True)
    return NotebooksStore(folder / "labkit.db")


@pytest.fixture
def no_thread_leak():
    """Fail a test that leaves a non-daemon thread running."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not left, f"threads left behind: {left}"
