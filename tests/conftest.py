"""Shared fixtures: one small real cluster for the session, a fresh store per test."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import labkit


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
