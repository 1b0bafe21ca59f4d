"""Reports hold what a reader needs: Dask's log lines and warnings go to a log beside the report,
and a busy dashboard port moves to a free one without a warning, the Lab saying where."""

from __future__ import annotations

import socket
import subprocess
import sys
import warnings

import nbformat
import pytest

import labkit

CELL = """\
import logging
import warnings

import distributed.node

import labkit

lab = labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False)
logging.getLogger("distributed.scheduler").warning("raw library %s", "line")
warnings.warn_explicit("raw library " + "warning", UserWarning, distributed.node.__file__, 1, module="distributed.node")
warnings.warn("the notebook's own " + "warning", UserWarning)
logging.getLogger("labkit.monitor").warning("labkit's own %s", "alert")
lab.close()
print("the cell", "ran")
"""


def test_a_report_keeps_library_logs_in_the_run_log_and_links_it(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "noisy.ipynb")
    out = tmp_path / "out"

    done = subprocess.run(
        [sys.executable, "-m", "labkit", "run", str(tmp_path / "noisy.ipynb"), "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (out / "noisy.html").read_text()
    assert "the cell ran" in page
    assert "raw library line" not in page and "raw library warning" not in page
    # What is the notebook's or labkit's own still shows where it did.
    shown = "".join(o.get("text", "") for o in nbformat.read(out / "noisy.ipynb", as_version=4).cells[-1].outputs)
    assert "the notebook's own warning" in shown and "labkit's own alert" in shown, shown
    log = (out / "labkit-run.log").read_text()
    assert "distributed.scheduler WARNING: raw library line" in log
    assert "UserWarning: raw library warning" in log
    assert '<a href="labkit-run.log">labkit-run.log</a>' in page and "Library logs:" in page


@pytest.fixture
def busy_port():
    """The Lab's default dashboard port, held by a listening socket here (or already by another)."""
    port = int(labkit.Lab.__init__.__kwdefaults__["dashboard_address"].rpartition(":")[2])
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        pass  # something else holds it: busy all the same
    yield port
    sock.close()


def test_a_busy_dashboard_port_moves_without_a_warning_and_the_lab_says_where(busy_port):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with labkit.Lab(workers=1, threads_per_worker=1, processes=False) as lab:
            link, text, page = lab.dashboard_link, repr(lab), lab._repr_html_()
    moved = [str(w.message) for w in caught if "already in use" in str(w.message)]
    assert not moved, moved
    port = int(link.rpartition(":")[2].split("/")[0])
    assert port != busy_port
    note = f"dashboard on :{port} ({busy_port} was busy)"
    assert note in text and note in page
