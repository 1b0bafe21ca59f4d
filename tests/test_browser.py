"""The lab as a person sees it: JupyterLab and HTML reports in a real Chromium.

The quickstart runs in JupyterLab (Run All Cells) while the page records every change of
the live view: the widget must render, its progress bar must advance, its figure must be
redrawn, and the final static figure must take its place. A second server with the
ipywidgets extension disabled proves the check fails when the widget does not render.
Last, the HTML report of a ``labkit run`` is opened offline: its figures must be images.

Needs Debian's Chromium at /usr/bin/chromium (``make test`` installs it) and the
playwright package; skipped without them, except in CI (``CI`` set) where that fails.
Select or deselect with ``-m browser`` / ``-m "not browser"``. Screenshots are written
under pytest's temporary directory; their paths are printed (``-s``) and in failures.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # tests/ is a plain folder today; keep working if it becomes a package
    from . import browser as b  # type: ignore[no-redef]
except ImportError:
    import browser as b  # type: ignore[no-redef]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

QUICKSTART = Path(__file__).resolve().parents[1] / "notebooks" / "00_quickstart.ipynb"
# 2 configurations x 2 sizes x 8 repeats = 32 trials, ~5-8 s on 2 cores: several progress
# steps and, at two redraws a second, room for many figure updates.
LIVE_PARAMS = {"n": [256, 512], "chunk": 128, "repeats": 8}


@pytest.fixture(scope="module")
def chromium() -> Iterator[b.Browser]:
    b.require_chromium()
    with b.chromium() as browser:
        yield browser


def _live_run(browser: b.Browser, tmp: Path, *, disabled_extensions: tuple[str, ...] = ()) -> b.LiveRun:
    root = tmp / "notebooks"
    nb = b.set_parameters(
        QUICKSTART, root / QUICKSTART.name, {**LIVE_PARAMS, "store": str(tmp / "results" / "labkit.db")}
    )
    with b.jupyter_lab(root, tmp / "jupyter", disabled_extensions=disabled_extensions) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            b.block_network(page, allow=f"{lab.base}/")
            return b.watch_live_view(page, lab.notebook_url(nb.name), tmp / "screenshots")
        except Exception as e:  # a page that never loads or a kernel that never starts: say why
            raise RuntimeError(f"{type(e).__name__}: {e}\nJupyterLab log ({lab.log}):\n{lab.log_tail()}") from e
        finally:
            page.close()


@pytest.fixture(scope="module")
def quickstart(chromium: b.Browser, tmp_path_factory: pytest.TempPathFactory) -> b.LiveRun:
    """One Run All of the quickstart in JupyterLab, recorded."""
    tmp = tmp_path_factory.mktemp("browser-live")
    run = _live_run(chromium, tmp)
    print(f"\nbrowser test artifacts: {tmp / 'screenshots'}\n{run.describe()}")
    return run


def assert_widget_rendered(run: b.LiveRun) -> None:
    """The live view was a rendered widget, not its text stand-in."""
    if run.appeared_s is None:
        if run.fallback:
            raise AssertionError(
                f"the live view did not render as a widget: the page shows {run.fallback!r} where the "
                f"`.labkit-live` box should be. Is the {b.WIDGET_MANAGER} JupyterLab extension installed and "
                f"enabled (`jupyter labextension list`)?\n{run.describe()}"
            )
        raise AssertionError(
            f"the live view did not render: no `.labkit-live` element within {run.elapsed_s:.0f} s\n{run.describe()}"
        )


def test_live_widget_renders(quickstart: b.LiveRun) -> None:
    assert_widget_rendered(quickstart)
    assert quickstart.finished, f"the notebook did not finish\n{quickstart.describe()}"
    assert not quickstart.errors, f"a cell failed\n{quickstart.describe()}"


def test_live_progress_increases(quickstart: b.LiveRun) -> None:
    assert_widget_rendered(quickstart)
    values = [v for _, v in quickstart.progress]
    assert values == sorted(values), f"the progress bar went backwards: {values}"
    assert len(values) >= 3, f"the progress bar took fewer than 3 values: {values}\n{quickstart.describe()}"
    assert values[-1] > values[0]


def test_live_figure_redraws(quickstart: b.LiveRun) -> None:
    assert_widget_rendered(quickstart)
    figures = quickstart.figures
    assert figures, (
        f"no <img> inside the live view while the sweep ran (the live figure is missing)\n{quickstart.describe()}"
    )
    changes = len(figures) - 1
    assert changes >= 2, f"the live figure changed {changes} time(s) during the sweep, expected >= 2: {figures}"


def test_live_figure_never_broken_and_keeps_up(quickstart: b.LiveRun) -> None:
    """No broken-image icon at any moment, and the figure catches up with the trials within
    one redraw: each redraw shows at least every trial that was done when the one before
    it appeared (the page may show a progress step before the picture that came with it)."""
    assert_widget_rendered(quickstart)
    assert not quickstart.broken, (
        f"a broken image was on the page at {quickstart.broken[:5]} s\n{quickstart.describe()}"
    )
    pairs = [(drawn, done) for _, _, drawn, done in quickstart.figures if drawn is not None and done is not None]
    assert len(pairs) >= 3, f"too few redraws with a trial count to judge\n{quickstart.describe()}"
    late = [(before, after) for before, after in zip(pairs, pairs[1:]) if after[0] < before[1]]
    assert not late, f"a redraw still lagged the trials done at the one before ((drawn, done) pairs): {late}"
    assert pairs[-1][0] == pairs[-1][1], f"the last live figure did not show the last trial: {pairs[-1]}"


def test_live_view_replaced_by_figure(quickstart: b.LiveRun) -> None:
    assert_widget_rendered(quickstart)
    assert quickstart.gone_s is not None, f"the live view was still on the page at the end\n{quickstart.describe()}"
    width = quickstart.final_figure_width or 0
    assert width > 100, f"no figure took the live view's place (widest image: {width} px)\n{quickstart.describe()}"


def test_the_answer_renders_as_formatted_text(quickstart: b.LiveRun) -> None:
    """The conclusion is HTML in JupyterLab: a paragraph per answer, the terms it uses in italics,
    its lines wrapped by the page (at words), not a printed block of text."""
    answer = quickstart.answer
    assert answer is not None, f"no rendered .labkit-answer in the page\n{quickstart.describe()}"
    assert answer["paragraphs"] >= 2 and answer["terms"] >= 1, answer
    assert "workers ran" in answer["text"] and "Terms:" in answer["text"], answer


def test_the_dask_sidebar_connects_to_the_labs_dashboard_without_a_click(chromium: b.Browser, tmp_path: Path) -> None:
    """With labkit's settings (``make lab`` installs them), JupyterLab's Dask sidebar shows the
    dashboard's panes of a running Lab as soon as it is opened: no search button, no URL typed."""
    import labkit

    root = tmp_path / "root"
    root.mkdir()
    with labkit.Lab(workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as lab:
        port = lab.client.scheduler_info(n_workers=0)["services"]["dashboard"]
        with b.jupyter_lab(root, tmp_path / "jupyter", dashboard_port=port) as server:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            try:
                b.block_network(page, allow=f"{server.base}/")
                page.goto(f"{server.base}/lab?token={server.token}", wait_until="load")
                page.locator(".lm-TabBar-tab[data-id='dask-dashboard-launcher']").click(timeout=60_000)
                page.wait_for_selector(".dask-DashboardListing-item", timeout=60_000)
                assert f"proxy/{port}/" in page.input_value(".dask-URLInput input")
                page.screenshot(path=str(tmp_path / "sidebar.png"))
            finally:
                page.close()


def test_unrendered_widget_fails(chromium: b.Browser, tmp_path: Path) -> None:
    """Without the ipywidgets extension the page shows text, and the check above says so."""
    run = _live_run(chromium, tmp_path, disabled_extensions=(b.WIDGET_MANAGER,))
    print(f"\nwidget-less run: {tmp_path / 'screenshots'}\n{run.describe()}")
    assert run.fallback, f"expected a text stand-in for the widget\n{run.describe()}"
    with pytest.raises(AssertionError, match="did not render as a widget"):
        assert_widget_rendered(run)


def labkit_command() -> list[str]:
    script = Path(sys.executable).with_name("labkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "labkit"]


def test_report_figures_are_images(chromium: b.Browser, tmp_path: Path) -> None:
    """The HTML report of `labkit run`, opened offline, shows its figures as decoded images."""
    nb = tmp_path / QUICKSTART.name
    nb.write_bytes(QUICKSTART.read_bytes())
    cmd = [
        *labkit_command(),
        "run",
        str(nb),
        "-p",
        "n",
        "[128, 256]",
        "-p",
        "repeats",
        "2",
        "-p",
        "store",
        str(tmp_path / "x.db"),
        "--out",
        str(tmp_path / "reports"),
    ]
    env = b.jupyter_env(tmp_path / "jupyter")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"`labkit run` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    html = tmp_path / "reports" / f"{QUICKSTART.stem}.html"
    assert html.is_file(), f"no report at {html}:\n{proc.stdout}"

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []
    try:
        b.block_network(page, allow="file:", blocked=blocked)
        page.goto(html.as_uri(), wait_until="load")
        images = page.locator(".jp-OutputArea-output img")
        assert images.count() >= 1, f"no image in the report {html}"
        for i in range(images.count()):
            img = images.nth(i)
            img.scroll_into_view_if_needed()
            natural = img.evaluate("i => i.complete ? i.naturalWidth : 0")
            assert img.is_visible() and natural > 100, (
                f"image {i} of {html} is not a visible decoded figure (naturalWidth {natural})"
            )
        sweep = page.locator(".jp-CodeCell").filter(has_text="sweep.run(")
        assert sweep.count() == 1, "cannot find the sweep cell in the report"
        widgets = sweep.locator(".jp-OutputArea-output[data-mime-type*='widget'], script[type*='jupyter.widget-view']")
        assert widgets.count() == 0, (
            "the sweep cell's output is still a widget (an empty box offline), not the final figure"
        )
        figure = sweep.locator(".jp-OutputArea-output img")
        assert figure.count() >= 1, "the sweep cell has no figure where the live view was"
        figure.first.scroll_into_view_if_needed()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot))
        print(f"\nreport: {html}\nscreenshot: {shot}\nblocked requests: {len(blocked)}")
    finally:
        page.close()


def test_dask_dashboard_through_the_jupyter_server(chromium: b.Browser, tmp_path: Path) -> None:
    """The Lab's dashboard, opened as JupyterLab users open it: through jupyter-server-proxy,
    at the path Lab.dashboard_link gives inside a kernel; and the Dask panes are installed."""
    import labkit

    root = tmp_path / "root"
    root.mkdir()
    with labkit.Lab(workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as lab:
        port = lab.client.scheduler_info(n_workers=0)["services"]["dashboard"]
        with b.jupyter_lab(root, tmp_path / "jupyter") as server:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            try:
                b.block_network(page, allow=f"{server.base}/")
                page.goto(f"{server.base}/proxy/{port}/status?token={server.token}", wait_until="load")
                page.wait_for_selector(".bk-root, .bk-Column, [class*='bk-']", state="attached", timeout=60_000)
                assert "Dask" in page.title(), page.title()
                page.screenshot(path=str(tmp_path / "dashboard.png"))
            finally:
                page.close()
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    assert "dask-labextension" in listed.stdout + listed.stderr
