"""The quickstart notebook, executed by papermill through the CLI, and the CLI's exit codes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat

try:
    from .nbtext import printed_text
except ImportError:
    from nbtext import printed_text  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]


def labkit_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labkit", "run", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_quickstart_runs_headless_and_writes_a_report(tmp_path):
    store = tmp_path / "qs.db"
    done = labkit_run(
        str(ROOT / "notebooks" / "00_quickstart.ipynb"),
        "-p",
        "n",
        "[128, 256]",
        "-p",
        "chunk",
        "64",
        "-p",
        "repeats",
        "2",
        "-p",
        "store",
        str(store),
        "--out",
        str(tmp_path / "reports"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "without encryption" not in done.stderr  # the kernel logs errors only
    # Progress on the terminal while it works: papermill's cells, then the sweep's trials
    assert "00_quickstart" in done.stderr and "cell" in done.stderr, done.stderr[-3000:]
    assert "quickstart (matmul): 8 of 8 trials" in done.stderr, done.stderr[-3000:]
    html = tmp_path / "reports" / "00_quickstart.html"
    assert f"report: {html}" in done.stdout

    with sqlite3.connect(store) as conn:
        trials = conn.execute("SELECT workers, status, throughput, experiment FROM trials").fetchall()
    assert len(trials) == 2 * 2 * 2  # workers × sizes × repeats
    assert {t[0] for t in trials} == {1, 2}
    assert all(t[1] == "ok" and t[2] > 0 and t[3] == "quickstart" for t in trials)

    nb = nbformat.read(tmp_path / "reports" / "00_quickstart.ipynb", as_version=4)
    text = printed_text(tmp_path / "reports" / "00_quickstart.ipynb")
    assert "2 workers ran" in text and "parallel efficiency" in text
    # the answer renders as formatted text: its answers, caveats and terms, not a printed wall
    answer = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "labkit-answer" in str(o.get("data"))]
    assert len(answer) == 1 and "Terms: <i>parallel efficiency</i>" in answer[0]["data"]["text/html"]
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the live view must end as a static figure"
    page = html.read_text()
    # No browser shows a papermill kernel through a Jupyter server: the dashboard link is direct.
    assert "/proxy/" not in page and "dashboard" in page
    assert page.count("<img") >= 1 and "data:image/png;base64" in page
    assert "8 trials measured in this run, 0 reused from earlier runs" in page

    # The same command again measures nothing new, and its report says so at the top.
    again = labkit_run(
        str(ROOT / "notebooks" / "00_quickstart.ipynb"),
        *("-p", "n", "[128, 256]", "-p", "chunk", "64", "-p", "repeats", "2", "-p", "store", str(store)),
        *("--out", str(tmp_path / "again")),
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    header = (tmp_path / "again" / "00_quickstart.html").read_text()
    assert "0 trials measured in this run, 8 reused from earlier runs" in header
    assert "quickstart: 0 trials measured in this run; 8 reused from earlier runs (20" in header
    # ... and the terminal says so, with how to measure afresh
    assert "quickstart (matmul): Resuming: 8 of 8 trials reused from the store." in again.stderr, again.stderr[-3000:]
    assert "`labkit run --fresh` measures them again" in again.stderr

    # --fresh measures every trial again under a new run; the stored ones stay
    fresh = labkit_run(
        str(ROOT / "notebooks" / "00_quickstart.ipynb"),
        *("-p", "n", "[128, 256]", "-p", "chunk", "64", "-p", "repeats", "2", "-p", "store", str(store)),
        *("--out", str(tmp_path / "fresh"), "--fresh"),
        cwd=tmp_path,
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "8 stored trials of these points were not reused (reuse='none')" in fresh.stderr
    assert "8 trials measured in this run, 0 reused" in (tmp_path / "fresh" / "00_quickstart.html").read_text()
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'ok'").fetchone() == (16,)


def test_failed_cell_exits_nonzero_and_still_writes_the_report(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("answer = 41")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("print('before', answer)"),
        nbformat.v4.new_code_cell("raise ValueError(f'wrong answer {answer}')"),
    ]
    src = tmp_path / "broken.ipynb"
    nbformat.write(nb, src)

    done = labkit_run(str(src), "-p", "answer", "42", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 1
    assert "ValueError: wrong answer 42" in done.stderr
    page = (tmp_path / "out" / "broken.html").read_text()
    assert "wrong answer 42" in page and "before 42" in page


def test_a_misspelt_parameter_gets_a_suggestion(tmp_path):
    done = labkit_run(str(ROOT / "notebooks" / "00_quickstart.ipynb"), "-p", "repeat", "2", cwd=tmp_path)
    assert done.returncode == 2 and "did you mean 'repeats'?" in done.stderr, done.stderr


def test_missing_notebook_is_a_clear_error(tmp_path):
    done = labkit_run(str(tmp_path / "nope.ipynb"), cwd=tmp_path)
    assert done.returncode == 2
    assert "notebook=" in done.stderr and "existing .ipynb" in done.stderr
