"""The ``labkit`` command's checks, listings and errors, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.report.params import assigned_names, declared_parameters, load_yaml_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
QUICKSTART = ROOT / "notebooks" / "00_quickstart.ipynb"


def labkit_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter_of_every_notebook(notebook: Path) -> None:
    assert list(declared_parameters(notebook)) == assigned_names(notebook)


def test_an_undeclared_parameter_stops_the_run_before_anything_executes(tmp_path: Path) -> None:
    done = labkit_cli("run", str(QUICKSTART), "-p", "repeets", "2", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert "'repeets'" in done.stderr and 'repeats (default "auto")' in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


def test_yaml_parameters_from_files_and_strings(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("repeats: 3\nsizes_mb: [4.0]\n")
    assert load_yaml_parameters([str(f)], ["repeats: 2"]) == {"repeats": 2, "sizes_mb": [4.0]}
    with pytest.raises(labkit.ParameterError, match="-y"):
        load_yaml_parameters([], ["[1, 2]"])
    done = labkit_cli("run", str(QUICKSTART), "-y", "repeets: 2", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 2 and "'repeets'" in done.stderr


def test_version_and_ls(tmp_path: Path) -> None:
    done = labkit_cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"labkit {labkit.__version__}"
    store = tmp_path / "s.db"
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
        labkit.Sweep("task-overhead", grid={"tasks": [5]}, repeats=2, warmup=0, experiment="ls-me", store=store).run(
            lab, live=False
        )
    done = labkit_cli("ls", str(store), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()[:2]
    assert header.split()[:6] == ["experiment", "run_id", "started", "status", "ok", "failed"]
    assert row.split()[0] == "ls-me" and row.split()[5:7] == ["2", "0"]
    missing = labkit_cli("ls", str(tmp_path / "nope.db"), cwd=tmp_path)
    assert missing.returncode == 2 and not (tmp_path / "nope.db").exists()


def test_export_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    done = labkit_cli("export", str(tmp_path / "nope.db"), "x.parquet", cwd=tmp_path)
    assert done.returncode == 2 and "existing labkit store" in done.stderr
    assert not (tmp_path / "nope.db").exists()
    store = tmp_path / "s.db"
    with labkit.ResultStore(store) as s:
        s.start_run("real", "array-sum", env={}, config={})
    done = labkit_cli("export", str(store), "x.parquet", "--experiment", "rael", cwd=tmp_path)
    assert done.returncode == 2 and "real" in done.stderr
    done = labkit_cli("export", str(store), "trials.json", cwd=tmp_path)
    assert done.returncode == 2 and ".csv or .parquet" in done.stderr and not (tmp_path / "trials.json").exists()


def test_a_scheduler_that_does_not_answer_is_a_clear_error() -> None:
    with pytest.raises(
        labkit.ClusterError, match=r"no Dask scheduler answered at address='tcp://127.0.0.1:1' within 2 s"
    ):
        labkit.Lab(address="tcp://127.0.0.1:1", connect_timeout=2)


def test_ctrl_c_on_labkit_run_ends_with_one_line_and_exit_130(tmp_path: Path) -> None:
    """A terminal's Ctrl-C (SIGINT to the whole process group) once trials are stored: one
    line saying what was kept and how to resume, exit status 130, no traceback."""
    import os
    import signal
    import sqlite3
    import subprocess
    import time

    import nbformat

    store = tmp_path / "ctrlc.db"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(f"store = {str(store)!r}")
    params.metadata["tags"] = ["parameters"]
    sweep = (
        "import labkit\n"
        "with labkit.Lab(workers=1, threads_per_worker=1, dashboard=False) as lab:\n"
        "    labkit.Sweep('synthetic', grid={'work_s': [0.3]}, repeats=200, warmup=0, store=store).run(lab, live=False)"
    )
    nb.cells = [params, nbformat.v4.new_code_cell(sweep)]
    path = tmp_path / "long.ipynb"
    nbformat.write(nb, path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit", "run", str(path), "--out", str(tmp_path / "out")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with sqlite3.connect(store, timeout=5) as conn:
                    if conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'ok'").fetchone()[0] >= 2:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.2)
        # Ctrl-C, and again every 2 s while it runs, as a person does when the first is swallowed
        # (one that lands in Dask's own callbacks in the kernel is): where it lands is not up to the test.
        for _ in range(10):
            os.killpg(proc.pid, signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=2.0)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (out, err[-2000:])
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and "trials kept in" in last and "run the same command to resume" in last
    assert "Traceback" not in err, err[-2000:]
