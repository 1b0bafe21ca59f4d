"""Helpers for the real-browser tests: JupyterLab and Chromium as context managers.

``jupyter_lab(root, state)`` starts JupyterLab on 127.0.0.1 with a random token, every
Jupyter directory (config, data, runtime, settings, workspaces, IPython) under ``state``
so the user's own are never read or written, and stops it (kernels and their Dask
workers included) on exit. ``chromium()`` launches Debian's Chromium through Playwright;
nothing here downloads a browser. ``watch_live_view(page, url)`` opens a notebook, runs
all its cells and records, in the page, every change of the labkit live view.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "apt-get update && apt-get install -y --no-install-recommends chromium (`make test` does this)"
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    """Skip when Chromium or Playwright is missing on a workstation; fail in CI, where it never should be."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} is missing: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is missing: pip install -e '.[dev]' (never `playwright install`)")
    if missing:
        reason = "; ".join(missing)
        if in_ci():
            pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Debian Chromium driven by Playwright, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def block_network(page: Page, allow: str, blocked: list[str] | None = None) -> None:
    """Abort every request whose URL does not start with ``allow`` (this machine is offline anyway)."""

    def route(r: Any) -> None:
        if r.request.url.startswith(allow):
            r.continue_()
        else:
            if blocked is not None:
                blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)


# --- notebooks ---------------------------------------------------------------------------


def set_parameters(src: Path, dest: Path, params: Mapping[str, Any]) -> Path:
    """Copy notebook ``src`` to ``dest`` with new values in its ``parameters`` cell, outputs cleared.

    Every name in ``params`` must already be assigned in that cell, so a renamed parameter
    fails here rather than silently running the notebook's defaults.
    """
    import nbformat

    nb = nbformat.read(src, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))
    values = {
        n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body if isinstance(n, ast.Assign)
    }
    unknown = set(params) - set(values)
    assert not unknown, f"{src.name} has no parameters {sorted(unknown)} (it has {sorted(values)})"
    values.update(params)
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


# --- JupyterLab --------------------------------------------------------------------------


@dataclass
class LabServer:
    """A running JupyterLab: where it listens and how to open a notebook in it."""

    port: int
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        return f"{self.base}/lab/tree/{name}?token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(state: Path) -> dict[str, str]:
    """This process's environment with every Jupyter/IPython directory moved under ``state``."""
    dirs = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "IPYTHONDIR": "ipython",
    }
    env = dict(os.environ)
    for var, sub in dirs.items():
        (state / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(state / sub)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def _write_lab_settings(state: Path, disabled_extensions: Sequence[str]) -> None:
    settings = {
        # No news pop-up over the page, no request to the internet for it.
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # Every cell attached to the DOM, so prompts and outputs can be read wherever they are.
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }
    for plugin, values in settings.items():
        path = state / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    if disabled_extensions:
        path = state / "config" / "labconfig" / "page_config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"disabledExtensions": {name: True for name in disabled_extensions}}))


def _wait_ready(server: LabServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.base}/api/status?token={server.token}", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"JupyterLab did not answer /api/status within {timeout_s:.0f} s:\n{server.log_tail()}")


def _stop(server: LabServer) -> None:
    """Shut down kernels and server; then end whatever of their process tree is left."""
    import psutil

    try:
        tree = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if server.process.poll() is None:
        try:  # shuts every kernel down first (a kernel ends its own Dask cluster)
            req = urllib.request.Request(
                f"{server.base}/api/shutdown", method="POST", headers={"Authorization": f"token {server.token}"}
            )
            urllib.request.urlopen(req, timeout=10).close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.terminate()
            try:
                server.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for p in alive:  # only processes this server started (kernel, Dask nannies and workers)
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


@contextmanager
def jupyter_lab(
    root: Path,
    state: Path,
    *,
    disabled_extensions: Sequence[str] = (),
    timeout_s: float = 60,
    dashboard_port: int | None = None,
) -> Iterator[LabServer]:
    """JupyterLab serving ``root`` on 127.0.0.1 with a random token; stopped on exit, kernels too.

    Its application settings are labkit's, as ``make lab`` installs them: the Dask sidebar
    points at a Lab's dashboard on ``dashboard_port`` (default: the port a Lab asks for)."""
    from labkit.cluster.dashboard import DEFAULT_PORT, write_sidebar_settings

    env = jupyter_env(state)
    _write_lab_settings(state, disabled_extensions)
    write_sidebar_settings(state / "app-settings", dashboard_port or DEFAULT_PORT)
    for attempt in range(3):  # a free port may be taken between the check and the bind
        port, token = free_port(), secrets.token_hex(16)
        log = state / f"jupyterlab-{attempt}.log"
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",
            f"--LabApp.app_settings_dir={state / 'app-settings'}",
            "--allow-root",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        server = LabServer(port, token, process, log)
        try:
            _wait_ready(server, timeout_s)
        except RuntimeError:
            _stop(server)
            if attempt == 2 or "already in use" not in server.log_tail():
                raise
            continue
        except BaseException:
            _stop(server)
            raise
        break
    try:
        yield server
    finally:
        _stop(server)


# --- the live view in the page -----------------------------------------------------------

# Installed in the page before the notebook runs: a MutationObserver sees every change, so a
# fast sweep cannot slip between two polls. Progress is the IntProgress bar's width (percent);
# figures are the ``src`` of the <img> elements inside the box (a hash: data URIs are large).
RECORDER_JS = r"""
() => {
  const rec = window.__labkitLive = {appeared: null, gone: null, progress: [], figures: [], broken: []};
  const t0 = performance.now();
  let lastSrc = null;
  const hash = (s) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
    return (h >>> 0).toString(16) + ":" + s.length;
  };
  const check = () => {
    const now = (performance.now() - t0) / 1000;
    const box = document.querySelector(".labkit-live");
    if (!box) {
      if (rec.appeared !== null && rec.gone === null) rec.gone = now;
      return;
    }
    if (rec.appeared === null) {
      rec.appeared = now;
      const area = box.closest(".jp-OutputArea");
      if (area) area.setAttribute("data-labkit-live-area", "");
    }
    rec.gone = null;
    const bar = box.querySelector(".progress-bar");
    if (bar) {
      const v = parseFloat(bar.style.width || bar.style.height);
      const last = rec.progress[rec.progress.length - 1];
      if (!Number.isNaN(v) && (!last || last[1] !== v)) rec.progress.push([now, v]);
    }
    const imgs = Array.from(box.querySelectorAll("img"));
    // A broken image: shown on the page, and loaded or given up on without a picture.
    if (imgs.some((i) => getComputedStyle(i).display !== "none" && (!i.getAttribute("src") || (i.complete && i.naturalWidth === 0)))) {
      rec.broken.push(now);
    }
    const src = imgs.map((i) => i.src).filter(Boolean).join(" ");
    if (src && src !== lastSrc) {
      lastSrc = src;
      const drawn = box.querySelector("img[data-trials]");
      const done = /(\d+)\/(\d+)/.exec(box.innerText);
      rec.figures.push([now, hash(src), drawn ? Number(drawn.dataset.trials) : null, done ? Number(done[1]) : null]);
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["style", "src", "class"]});
  check();
}
"""

# What the page shows instead when the widget JavaScript is missing or broken.
FALLBACK = re.compile(r"VBox\(children=|Error displaying widget[^\n]*|Loading widget\.\.\.")
FINAL_FALLBACK = re.compile(r"VBox\(children=|Error displaying widget")

STATE_JS = r"""
() => {
  const prompts = Array.from(document.querySelectorAll(".jp-CodeCell .jp-InputPrompt")).map((e) => e.textContent.trim());
  const outputs = Array.from(document.querySelectorAll(".jp-OutputArea-output")).map((e) => e.innerText);
  const errors = Array.from(document.querySelectorAll(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"))
    .map((e) => e.innerText).filter((t) => /Traceback/.test(t));
  const rec = window.__labkitLive || {};
  return {
    busy: prompts.some((p) => p.includes("*")), ran: prompts.some((p) => /\d/.test(p)),
    outputs, errors, appeared: rec.appeared, gone: rec.gone, present: !!document.querySelector(".labkit-live"),
    progress: rec.progress || [], figures: rec.figures || [], broken: rec.broken || [],
  };
}
"""

FINAL_FIGURE_JS = r"""
() => {
  const area = document.querySelector("[data-labkit-live-area]");
  if (!area) return null;
  const imgs = Array.from(area.querySelectorAll("img")).filter((i) => !i.closest(".labkit-live") && i.complete && i.getBoundingClientRect().width > 0);
  return imgs.length ? Math.max(...imgs.map((i) => i.naturalWidth)) : 0;
}
"""


@dataclass
class LiveRun:
    """What the browser saw while a notebook with a labkit live view ran."""

    appeared_s: float | None = None  # when ``.labkit-live`` was first in the page (s after Run All)
    gone_s: float | None = None  # when it left the page again
    progress: list[tuple[float, float]] = field(default_factory=list)  # (s, bar width in %), each change
    # (s, hash of the <img> srcs, trials the figure shows, trials done by then), each change
    figures: list[tuple[float, str, int | None, int | None]] = field(default_factory=list)
    broken: list[float] = field(default_factory=list)  # times a broken image was on the page
    final_figure_width: int | None = None  # naturalWidth of the image that replaced the box, None: no box
    fallback: str | None = None  # text shown where a widget should be ("VBox(children=...", ...)
    errors: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    finished: bool = False  # every queued cell ran
    answer: dict[str, Any] | None = None  # the rendered conclusion: its paragraphs, list items and text
    elapsed_s: float = 0.0
    screenshots: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for an assertion message."""
        outs = "\n".join(f"  | {o[:300]}" for o in self.outputs[-6:]) or "  (no output)"
        errs = "\n".join(f"  ! {e[-600:]}" for e in self.errors) or "  (none)"
        return (
            f"finished={self.finished} after {self.elapsed_s:.1f} s; widget appeared at {self.appeared_s}, gone at {self.gone_s}; "
            f"progress {[round(v, 1) for _, v in self.progress]}; {len(self.figures)} distinct figure src(s) "
            f"(trials drawn/done: {[(f[2], f[3]) for f in self.figures]}); broken images at {self.broken[:5]}; "
            f"widget fallback text: {self.fallback!r}\n"
            f"errors:\n{errs}\nlast outputs:\n{outs}\nscreenshots: {[str(p) for p in self.screenshots]}"
        )


def wait_kernel_idle(page: Page, timeout_s: float = 60) -> None:
    """Until the status bar names a kernel and says it is idle (the toolbar's indicator says idle too early)."""
    page.wait_for_function(
        r"""() => Array.from(document.querySelectorAll(".jp-StatusBar-TextItem"))
                .some((e) => /\|\s*Idle/.test(e.textContent) && !/No Kernel/.test(e.textContent))""",
        timeout=timeout_s * 1000,
    )


def run_all_cells(page: Page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()


def _screenshot(page: Page, selector: str, path: Path) -> Path | None:
    try:
        page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'center'})", timeout=2000)
        page.screenshot(path=str(path))
        return path
    except Exception:  # noqa: BLE001 - the element left the page between the check and the shot
        return None


# The conclusion as JupyterLab rendered it (its HTML output), or null when it is not in the page.
ANSWER_JS = r"""
() => {
  const a = document.querySelector(".jp-OutputArea-output .labkit-answer");
  if (!a) return null;
  return {paragraphs: a.querySelectorAll("p").length, items: a.querySelectorAll("li").length,
          terms: a.querySelectorAll("i").length, text: a.innerText, width: a.getBoundingClientRect().width};
}
"""


def watch_live_view(page: Page, url: str, shots: Path, *, timeout_s: float = 120, poll_s: float = 0.2) -> LiveRun:
    """Open notebook ``url``, run all cells, and record the labkit live view until every cell ran.

    Stops early when the page shows a widget's text fallback instead of the widget. Takes a
    screenshot while the live view is on screen (``live.png``) and one at the end (``final.png``).
    """
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", state="attached", timeout=60_000)
    wait_kernel_idle(page)
    page.evaluate(RECORDER_JS)
    run_all_cells(page)
    run, start, state = LiveRun(), time.monotonic(), {}
    live_shot = False
    while time.monotonic() - start < timeout_s:
        state = page.evaluate(STATE_JS)
        run.elapsed_s = time.monotonic() - start
        fallback = next((m.group(0) for o in state["outputs"] if (m := FALLBACK.search(o))), None)
        if fallback:
            run.fallback = fallback
        if state["present"] and not live_shot and state["progress"] and state["progress"][-1][1] >= 50:
            live_shot = bool(shot := _screenshot(page, ".labkit-live", shots / "live.png"))
            run.screenshots += [shot] if shot else []
        if state["appeared"] is None and fallback and FINAL_FALLBACK.search(fallback):
            break  # no widget will come: its text stands in its place
        if state["ran"] and not state["busy"]:  # a failed cell unqueues the rest: also done
            run.finished = True
            break
        time.sleep(poll_s)
    run.appeared_s, run.gone_s = state.get("appeared"), state.get("gone")
    run.progress = [tuple(p) for p in state.get("progress", [])]
    run.figures = [tuple(f) for f in state.get("figures", [])]
    run.broken = list(state.get("broken", []))
    run.errors, run.outputs = state.get("errors", []), state.get("outputs", [])
    if run.appeared_s is not None:  # the replacing image may still be decoding
        deadline = time.monotonic() + 10
        while not (width := page.evaluate(FINAL_FIGURE_JS)) and width is not None and time.monotonic() < deadline:
            time.sleep(poll_s)
        run.final_figure_width = width
    run.answer = page.evaluate(ANSWER_JS)
    selector = (
        "[data-labkit-live-area] img, [data-labkit-live-area]"
        if run.appeared_s is not None
        else ".jp-OutputArea-output"
    )
    if shot := _screenshot(page, selector, shots / "final.png"):
        run.screenshots.append(shot)
    return run
