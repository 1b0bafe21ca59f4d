"""The JupyterLab ways of benchmarks/observer.py: the quickstart's Run All in a real JupyterLab in
Debian's Chromium (tests/browser.py's helpers; never a downloaded browser), until the kernel
is idle again; with ``dashboard``, the Dask dashboard opened in a second tab from the link the
notebook shows, so that its plots draw as the sweep runs."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "00_quickstart.ipynb"
CHROMIUM = Path("/usr/bin/chromium")

# A link to the Dask dashboard in the notebook's output (the Lab's HTML repr).
DASHBOARD_HREF_JS = r"""
() => {
  const a = Array.from(document.querySelectorAll(".jp-OutputArea-output a"))
    .find((e) => /\/(status|labkit)$/.test(e.getAttribute("href") || ""));
  return a ? a.getAttribute("href") : null;
}
"""


def browser_missing() -> str:
    """Why the browser way cannot run here, or ``""``."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; never a downloaded browser)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]'"
    return ""


def run_browser(
    params: dict[str, Any], store: Path, experiment: str, tmp: Path, timeout_s: float, dashboard: bool
) -> str:
    """Run All of the quickstart in JupyterLab in Chromium (with ``dashboard``, the dashboard open
    in a second tab) until the kernel is idle again; a note on the dashboard."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    import browser as b

    root = tmp / "notebooks"
    nb = b.set_parameters(
        QUICKSTART, root / f"{experiment}.ipynb", {**params, "store": str(store), "experiment": experiment}
    )
    note = "dashboard not opened: the notebook showed no link" if dashboard else "dashboard not opened (this way)"
    with b.jupyter_lab(root, tmp / f"jupyter-{experiment}") as server, b.chromium() as chrome:
        page = chrome.new_page(viewport={"width": 1400, "height": 1000})
        dash = None
        try:
            b.block_network(page, allow=f"{server.base}/")
            page.goto(server.notebook_url(nb.name))
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", state="attached", timeout=60_000)
            b.wait_kernel_idle(page, 120)
            b.run_all_cells(page)
            start, state = time.monotonic(), {}
            while time.monotonic() - start < timeout_s:
                state = page.evaluate(b.STATE_JS)
                if dashboard and dash is None and (href := page.evaluate(DASHBOARD_HREF_JS)):
                    url = f"{server.base}{href}?token={server.token}" if href.startswith("/") else href
                    dash = chrome.new_page(viewport={"width": 1280, "height": 900})
                    try:
                        dash.goto(url, wait_until="load", timeout=60_000)
                        note = f"dashboard open at {href}"
                    except Exception as e:  # noqa: BLE001 - say so and go on: the sweep is running
                        note = f"dashboard did not load ({type(e).__name__}: {str(e)[:200]})"
                if state["ran"] and not state["busy"]:
                    break
                time.sleep(0.5)
            else:
                raise TimeoutError(f"the notebook did not finish within {timeout_s:.0f} s")
            if state["errors"]:
                raise RuntimeError(f"a cell failed:\n{state['errors'][0][-1500:]}")
            b.wait_kernel_idle(page, 120)
        except Exception as e:
            raise RuntimeError(f"{type(e).__name__}: {e}\nJupyterLab log:\n{server.log_tail(15)}") from e
        finally:
            if dash is not None:
                dash.close()
            page.close()
    return note
