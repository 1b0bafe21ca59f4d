"""Workloads from other packages: the ``labkit.workloads`` entry-point group, and taken names.

A tiny package is written here, installed into this venv with pip, used from a fresh
interpreter (where entry points are discovered), and uninstalled.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import labkit
from labkit import workloads
from labkit.common.errors import LabkitError

# This process loads its plugins now, before the test installs one: the plugin is used
# only by the fresh interpreter below, and this process's registry stays as it was.
workloads.names()

PACKAGE = "labkit-plugin-probe"

PYPROJECT = f"""
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{PACKAGE}"
version = "0.1"

[project.entry-points."labkit.workloads"]
plugin-count = "labkit_plugin_probe:count"
plugin-squares = "labkit_plugin_probe:Squares"
plugin-broken = "labkit_plugin_probe:missing_name"
array-sum = "labkit_plugin_probe:count"
"""

MODULE = '''
"""A workload plugin for labkit's tests."""
import labkit


def count(lab, items: int = 100):
    total = lab.client.submit(sum, range(items)).result()
    assert total == items * (items - 1) // 2
    return labkit.Work(items, "items")


class Squares(labkit.workloads.BaseWorkload):
    name = "squares"
    defaults = {"n": 10}

    def setup(self, lab, **params):
        return lab.client, params

    def run(self, state):
        client, params = state
        futures = client.map(lambda i: i * i, range(params["n"]))
        assert sum(client.gather(futures)) == sum(i * i for i in range(params["n"]))
        return labkit.Work(params["n"], "items")
'''

CHECK = """
import warnings
import labkit
from labkit import workloads

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    names = workloads.names()
skipped = sorted(str(w.message).split("'")[1] for w in caught)
print("names", "plugin-count" in names, "plugin-squares" in names, "plugin-broken" in names)
print("skipped", skipped)
print("array-sum kept", type(workloads.get("array-sum")).__name__)
if __name__ == "__main__":
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
        results = labkit.Sweep("plugin-count", grid={"items": [10, 1000]}, repeats=2, warmup=0, store=":memory:").run(lab, live=False)
        squares = labkit.Sweep("plugin-squares", grid={"n": [5]}, repeats=1, warmup=0, store=":memory:").run(lab, live=False)
    print("trials", sorted(results.frame["amount"]), list(results.frame["status"].unique()), list(squares.frame["status"]))
"""


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (root / "labkit_plugin_probe.py").write_text(textwrap.dedent(MODULE))
    done = _pip("install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(root))
    assert done.returncode == 0, done.stderr[-3000:]
    yield root
    removed = _pip("uninstall", "--yes", PACKAGE)
    assert removed.returncode == 0, removed.stderr[-2000:]


def test_a_package_adds_workloads_through_entry_points(installed_plugin: Path, tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "names True True False" in out  # the broken one is skipped, not fatal
    assert "skipped ['array-sum', 'plugin-broken']" in out  # a built-in's name cannot be taken
    assert "array-sum kept ArraySum" in out
    assert "trials [10.0, 10.0, 1000.0, 1000.0] ['ok'] ['ok']" in out


def test_a_taken_name_raises_unless_replaced() -> None:
    class Other(workloads.BaseWorkload):
        name = "array-sum"
        defaults = {"n": 1}

        def setup(self, lab, **params):
            return None

        def run(self, state):
            return labkit.Work(1, "items")

    builtin = workloads.get("array-sum")
    with pytest.raises(LabkitError, match="'array-sum' is already registered.*replace=True"):
        workloads.register(Other())
    assert workloads.get("array-sum") is builtin
    try:
        assert workloads.register(Other(), replace=True) is workloads.get("array-sum")
    finally:
        workloads.register(builtin, replace=True)
    assert workloads.get("array-sum") is builtin


def test_the_decorator_refuses_a_taken_name_but_allows_a_cell_rerun() -> None:
    def define():
        @labkit.workload("test-rerun")
        def rerun(lab, n: int = 1):
            return labkit.Work(n, "items")

    define()
    define()  # the same definition again, as when a notebook cell runs twice
    with pytest.raises(LabkitError, match="already registered"):

        @labkit.workload("test-rerun")
        def other(lab, n: int = 1):
            return labkit.Work(n, "items")

    @labkit.workload("test-rerun", replace=True)
    def replaced(lab, n: int = 2):
        return labkit.Work(n, "items")

    assert workloads.get("test-rerun").defaults == {"n": 2}
