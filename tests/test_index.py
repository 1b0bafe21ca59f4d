"""The index of a folder of reports: what it lists, what each row says, and how it opens offline.

Two small notebooks run for real with ``run_notebook`` into one folder: one passes (a tiny
sweep on an in-process cluster, two figures, its HTML written with ``no_input``), one raises
after drawing a figure in a cell tagged ``main-figure``. Beside them: a half-written
``.ipynb``, a notebook nobody executed, an unrelated file, and an executed notebook written
by hand with a secret in its parameters, a run that never ended and a damaged figure.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import labkit
from labkit.report import run_notebook, write_index
from labkit.report.entries import THUMBNAIL_SIZE, read_entry
from labkit.report.index import collect, history
from labkit.report.notebook import add_header, export_html
from labkit.report.summary import ExperimentCounts, ReportSummary

try:  # tests/ is a plain folder today; keep working if it becomes a package
    from . import browser as b  # type: ignore[no-redef]
except ImportError:
    import browser as b  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(300)

SECRET = "hunter2-" + "index-secret"  # a secret-named parameter's value, never to be shown

FIGURES = """\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 2))  # wide
ax.plot([0, 1], [0, scale])
plt.show()"""
LAST_FIGURE = """\
fig, ax = plt.subplots(figsize=(3, 3))  # square
ax.bar(["a", "b"], [1, scale])
plt.show()"""
SWEEP = """\
with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
    labkit.Sweep("task-overhead", grid={"tasks": [5]}, repeats=2, warmup=0, experiment="idx", store=store).run(
        lab, live=False
    )"""
MARKED = "marker_in_source_only = scale * 21\nprint(f'value {marker_in_source_only}')"


def notebook(path: Path, title: str, *, sweep: bool = False, fail: bool = False) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(f"scale = 2\nstore = {str(path.with_suffix('.db'))!r}")
    params.metadata["tags"] = ["parameters"]
    figure = nbformat.v4.new_code_cell(FIGURES)
    if fail:  # the first, wide figure is the main one
        figure.metadata["tags"] = ["main-figure"]
    cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nWhat this notebook asks."), params, figure]
    cells += [nbformat.v4.new_code_cell(c) for c in ("import labkit", MARKED, LAST_FIGURE)]
    if sweep:
        cells.append(nbformat.v4.new_code_cell(SWEEP))
    if fail:
        cells.append(nbformat.v4.new_code_cell("raise ValueError(f'bad scale {scale}')"))
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def by_hand(path: Path) -> None:
    """A notebook as papermill leaves it mid-run, not redacted, with a damaged figure."""
    cell = nbformat.v4.new_code_cell("login()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "not base64 at all!"})]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# Run for {SECRET}"), cell])
    nb.metadata["papermill"] = {
        "parameters": {"password": SECRET, "host": "db.example.org"},
        "start_time": "2026-01-02T03:04:05.000000+00:00",
        "end_time": None,
        "exception": None,
    }
    nbformat.write(nb, path)


def labkit_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("index")
    src, out = tmp / "src", tmp / "reports"
    src.mkdir()
    passed = notebook(src / "alpha.ipynb", "Alpha <b>sweep</b>", sweep=True)
    failed = notebook(src / "beta.ipynb", "Beta fails", fail=True)
    # No `store` passed: the header finds the notebook's own default (below, beside the notebook)
    cmd = ["run", str(passed), "-p", "scale", "3", "--out", str(out), "--no-input"]
    ok = labkit_cli(*cmd, cwd=tmp)
    bad = run_notebook(failed, {}, out, cwd=tmp)
    index_after_runs = (out / "index.html").read_text()
    (out / "half.ipynb").write_text(json.dumps(nbformat.read(passed, as_version=4))[:200])
    (out / "never-run.ipynb").write_bytes(passed.read_bytes())
    (out / "notes.txt").write_text("not a notebook")
    by_hand(out / "midway.ipynb")
    (out / "odd.ipynb").write_text(json.dumps({"nbformat": 4, "metadata": {"papermill": {"parameters": [1]}}}))
    index = write_index(out)
    return {"out": out, "ok": ok, "bad": bad, "index_after_runs": index_after_runs, "index": index}


def rows(page: str) -> dict[str, tuple[str, str]]:
    """Each row of the index: notebook file name -> (row class, the row's HTML)."""
    found = re.findall(r'<tr class="r-(\w+)">(.*?)</tr>', page, flags=re.S)
    return {re.search(r"<code>([^<]+\.ipynb)</code>", r).group(1): (cls, r) for cls, r in found}


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def thumbnail(row: str):
    from PIL import Image

    (data,) = re.findall(r'src="data:image/png;base64,([^"]+)"', row)
    img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    img.load()
    return img


def test_every_run_refreshes_the_index(folder) -> None:
    index = folder["out"] / "index.html"
    assert folder["ok"].returncode == 0, folder["ok"].stderr[-3000:]
    assert f"index: {index}" in folder["ok"].stdout.splitlines()
    assert not folder["bad"].ok and folder["bad"].index == index
    assert set(rows(folder["index_after_runs"])) == {"alpha.ipynb", "beta.ipynb"}


def test_the_index_lists_the_executed_notebooks_and_nothing_else(folder) -> None:
    page = folder["index"].read_text()
    listed = {name: cls for name, (cls, _) in rows(page).items()}
    assert listed == {
        "alpha.ipynb": "passed",
        "beta.ipynb": "failed",
        "midway.ipynb": "unfinished",
        "half.ipynb": "unreadable",
        "odd.ipynb": "unreadable",
    }
    assert "half-written or damaged" in text_of(rows(page)["half.ipynb"][1])
    assert "notes.txt" not in page and "index.html" not in page
    assert "Not listed (not executed by papermill): never-run.ipynb." in page
    entries, skipped = collect(folder["out"])
    assert [e.name for e in entries][:2] == ["alpha.ipynb", "beta.ipynb"]  # the latest good run first
    assert skipped == ["never-run.ipynb"]


def test_each_row_says_what_ran_where_and_how_it_ended(folder) -> None:
    page = folder["index"].read_text()
    alpha, beta = rows(page)["alpha.ipynb"][1], rows(page)["beta.ipynb"][1]
    assert "Alpha &lt;b&gt;sweep&lt;/b&gt;" in alpha and "<b>sweep</b>" not in page  # escaped, not markup
    assert "scale = 3" in text_of(alpha) and "none passed: the notebook's defaults" in text_of(beta)
    assert "2 measured, 0 reused" in text_of(alpha) and "idx: 2 measured, 0 reused" in text_of(alpha)
    assert "no sweep ran in this notebook" in text_of(beta)
    assert f"Python {platform.python_version()}" in alpha and f"labkit {labkit.__version__}" in alpha
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, ran \d+ s", alpha)
    failing = text_of(beta)
    assert re.search(r"In \[\d+\] `raise ValueError\(f'bad scale \{scale\}'\)` raised ValueError: bad scale 2", failing)
    for name in ("alpha", "beta"):
        for suffix in ("html", "ipynb"):
            assert f'href="{name}.{suffix}"' in page and (folder["out"] / f"{name}.{suffix}").is_file()


def test_thumbnails_are_the_main_figures_and_decode(folder) -> None:
    page = folder["index"].read_text()
    alpha, beta = thumbnail(rows(page)["alpha.ipynb"][1]), thumbnail(rows(page)["beta.ipynb"][1])
    for img in (alpha, beta):
        assert img.format == "PNG" and img.width <= THUMBNAIL_SIZE[0] and img.height <= THUMBNAIL_SIZE[1]
    # alpha: no tagged cell, so its last figure (square); beta: the tagged wide one, not its last
    assert 0.8 < alpha.width / alpha.height < 1.25, alpha.size
    assert 2.4 < beta.width / beta.height < 3.6, beta.size


def test_a_hand_written_run_shows_no_secret_and_says_what_is_missing(folder) -> None:
    page = folder["index"].read_text()
    assert SECRET not in page and html.escape(SECRET) not in page
    midway = text_of(rows(page)["midway.ipynb"][1])
    assert "Run for <redacted>" in midway and "password = '<redacted>'" in midway
    assert "host = 'db.example.org'" in midway and "2026-01-02 03:04 UTC" in midway
    assert "still running, or stopped before the end" in midway
    assert "not recorded" in midway and "its figure is not valid base64" in midway


def test_run_no_input_hides_code_but_keeps_outputs_and_prose(folder) -> None:
    hidden, shown = (folder["out"] / "alpha.html").read_text(), folder["bad"].html.read_text()
    assert "marker_in_source_only" not in hidden and "value 63" in hidden
    assert "What this notebook asks." in hidden and "data:image/png;base64" in hidden
    assert "marker_in_source_only" in shown and "value 42" in shown


def test_the_header_reads_as_prose_in_the_html_and_stays_where_the_index_finds_it(tmp_path: Path) -> None:
    path = notebook(tmp_path / "tiny.ipynb", "Tiny")
    nb = nbformat.read(path, as_version=4)
    nb.metadata["papermill"] = {"parameters": {"scale": 3}, "start_time": "2026-01-02T03:04:05+00:00"}
    nbformat.write(nb, path)
    counts = ExperimentCounts("idx", measured=2, reused=6, reused_from=(1.7e9, 1.7e9))
    summary = ReportSummary({"scale": 3}, {"hostname": "box", "cpu_count": 2}, [counts], store="/tmp/idx.db")
    add_header(path, summary)
    add_header(path, summary)  # a second run replaces the header, never adds one
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "labkit-report-header" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.cells[0] == tagged[0] and nb.metadata["labkit"] == summary.to_metadata()
    entry = read_entry(path)
    assert entry is not None and entry.title == "Tiny" and entry.labkit == summary.to_metadata()
    for no_input in (False, True):
        page = export_html(path, tmp_path / f"tiny-{no_input}.html", no_input=no_input).read_text()
        first = page.split('<div class="jp-Cell ')[1]  # the first cell, as the page shows it
        assert first.startswith("jp-MarkdownCell"), first
        assert "2 trials measured in this run, 6 reused from earlier runs" in first
        assert "idx: 2 trials measured in this run; 6 reused from earlier runs (2023-11-14" in first
        assert "In [" not in first and "highlight" not in first  # no prompt, no code
        assert "added by labkit run" not in page
        assert ("marker_in_source_only" in page) is not no_input  # the notebook's own code: only with its input


def test_labkit_report_writes_the_index_and_refuses_a_bad_dir(folder, tmp_path: Path) -> None:
    index = folder["out"] / "index.html"
    index.unlink()
    done = labkit_cli("report", str(folder["out"]), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(index) and set(rows(index.read_text())) >= {"alpha.ipynb", "beta.ipynb"}
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "x.ipynb").write_bytes((folder["out"] / "never-run.ipynb").read_bytes())
    for bad, why in (
        ("missing", "does not exist"),
        ("a-file", "is not a folder"),
        ("empty", "no .ipynb file"),
        ("sources", "none of its 1 .ipynb files was executed"),
    ):
        done = labkit_cli("report", bad, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert f"dir='{bad}' is not allowed" in done.stderr and why in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / bad / "index.html").exists()
    with pytest.raises(labkit.ParameterError, match="folder="):
        write_index(tmp_path / "empty")


def open_offline(browser: b.Browser, page_path: Path) -> tuple[list[str], list[list[object]]]:
    """Open ``page_path`` with every request that is not ``file:`` or ``data:`` aborted; return
    what the page tried to fetch elsewhere and, for each ``<img>``, its alt text and whether it decoded.

    The page's own Content-Security-Policy may stop a request before any route sees it, but
    not before the page asks: requests asked for and policy violations count as well.
    """
    asked: list[str] = []

    def route(r: object) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            asked.append(r.request.url)
            r.abort()

    page = browser.new_page()
    try:
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else asked.append(r.url))
        page.on("console", lambda m: asked.append(m.text) if "Content Security Policy" in m.text else None)
        page.route("**/*", route)
        page.goto(page_path.as_uri(), wait_until="load")
        images = page.evaluate(
            "() => Array.from(document.images).map((i) => [i.alt, i.complete && i.naturalWidth > 0])"
        )
    finally:
        page.close()
    return asked, images


@pytest.mark.browser
def test_the_index_opens_offline_with_every_image_decoded(folder) -> None:
    b.require_chromium()
    index = write_index(folder["out"])
    with b.chromium() as browser:
        asked, images = open_offline(browser, index)
    assert asked == [], f"the index asked the network for {asked}"
    assert sorted(images) == [["main figure of alpha.ipynb", True], ["main figure of beta.ipynb", True]]


def test_a_failed_run_never_destroys_the_last_good_report(tmp_path: Path) -> None:
    """The same notebook run twice into one folder, first passing, then failing: the good
    report stays where it was, the failed one is written beside it, both are kept by date,
    and the index shows the history with the latest good run first."""
    good_src, bad_src, out = tmp_path / "good", tmp_path / "bad", tmp_path / "reports"
    good_src.mkdir(), bad_src.mkdir()
    good = run_notebook(notebook(good_src / "gamma.ipynb", "Gamma works"), {}, out, cwd=tmp_path)
    bad = run_notebook(notebook(bad_src / "gamma.ipynb", "Gamma breaks", fail=True), {}, out, cwd=tmp_path)
    assert good.ok and not bad.ok
    assert good.html == out / "gamma.html" and "Gamma works" in good.html.read_text()
    assert bad.html == out / "gamma.failed.html" and "Gamma breaks" in bad.html.read_text()
    assert "Gamma works" in (out / "gamma.html").read_text()  # untouched by the failure
    kept = history(out)
    assert [e.status for e in kept] == ["passed", "failed"] and all(e.name.startswith("history/gamma-") for e in kept)
    page = (out / "index.html").read_text()
    assert page.index("<h2>History</h2>") < page.index(kept[0].name) < page.index(kept[1].name)
    again = run_notebook(notebook(good_src / "gamma.ipynb", "Gamma works again"), {}, out, cwd=tmp_path)
    assert again.ok and "Gamma works again" in (out / "gamma.html").read_text()
    assert not (out / "gamma.failed.html").exists() and len(history(out)) == 3  # the failure stays in the history
