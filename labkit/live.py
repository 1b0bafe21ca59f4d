"""Progress while a sweep runs: widgets in Jupyter, a progress line in a terminal.

In Jupyter the view is displayed with a display handle; when the sweep ends the handle is
updated in place with the final static figure, so an executed notebook and its HTML
export hold a real image rather than a widget that needs JavaScript.
"""

from __future__ import annotations

import html
import sys
import time
from typing import TYPE_CHECKING, Any

from .analysis import format_rate

if TYPE_CHECKING:
    from .results import Results
    from .store import Trial


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, or papermill)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _trial_text(t: Trial) -> str:
    params = " ".join(f"{k}={v}" for k, v in t.params.items() if k != "backend")
    if t.status == "ok":
        return f"workers={t.workers} {params} #{t.repeat}: {t.wall_s:.3f} s, {format_rate(t.throughput, t.unit or '')}"
    return f"workers={t.workers} {params} #{t.repeat}: {t.status.upper()} {t.error or ''}"


class _View:
    """Counts trials done; subclasses show them."""

    def __init__(self, total: int, title: str) -> None:
        self.total, self.title, self.done, self.failed = total, title, 0, 0
        self.started = time.monotonic()

    def skip(self, n: int) -> None:
        if n:
            self.done += n
            self.show(None, skipped=n)

    def trial(self, trial: Trial) -> None:
        self.done += 1
        self.failed += trial.status != "ok"
        self.show(trial)

    def show(self, trial: Trial | None, skipped: int = 0) -> None:
        pass

    def close(self, results: Results | None) -> None:
        pass


class NullView(_View):
    """``live=False``: nothing shown."""


class TerminalView(_View):
    """A one-line progress bar on stderr."""

    width = 24


    def show(self, trial: Trial | None, skipped: int = 0) -> None:
        filled = int(self.width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        last = f"resumed {skipped} already done" if trial is None else _trial_text(trial)
        line = f"{self.title} [{bar}] {self.done}/{self.total} {time.monotonic() - self.started:5.1f}s  {last}"
        # Redraw in place on a terminal; one line per step in a log file.
        sys.stderr.write("\r" + line[:160].ljust(160) if sys.stderr.isatty() else line + "\n")
        sys.stderr.flush()

    def close(self, results: Results | None) -> None:
        failed = f", {self.failed} failed" if self.failed else ""
        end = f"{self.title}: {self.done}/{self.total} trials in {time.monotonic() - self.started:.1f}s{failed}"
        sys.stderr.write(("\r" + end.ljust(160) if sys.stderr.isatty() else end) + "\n")


class WidgetView(_View):
    """A progress bar and the latest trials in an ipywidgets box."""

    keep = 8

    def __init__(self, total: int, title: str, lab: Any) -> None:
        super().__init__(total, title)
        import ipywidgets as w
        from IPython.display import display

        link = getattr(lab, "dashboard_link", None)
        head = f"<b>{html.escape(title)}</b> — {lab.workers} workers" + (f', <a href="{link}" target="_blank">dashboard</a>' if link else "")
        self.header = w.HTML(head)
        self.bar = w.IntProgress(value=0, min=0, max=max(total, 1), description="trials", bar_style="info")
        self.status = w.HTML("")
        self.table = w.HTML("")
        self.lines: list[str] = []
        self.box = w.VBox([self.header, w.HBox([self.bar, self.status]), self.table])
        self.box.add_class("labkit-live")  # a stable hook for the browser test
        self.handle = display(self.box, display_id=True)

    def show(self, trial: Trial | None, skipped: int = 0) -> None:
        self.bar.value = self.done
        self.status.value = f"{self.done}/{self.total} &nbsp; {time.monotonic() - self.started:.1f}s" + (f" &nbsp; <span style='color:#b00'>{self.failed} failed</span>" if self.failed else "")
        line = f"resumed {skipped} trials already in the store" if trial is None else _trial_text(trial)
        self.lines = (self.lines + [html.escape(line)])[-self.keep :]
        self.table.value = "<pre style='margin:0'>" + "\n".join(self.lines) + "</pre>"

    def close(self, results: Results | None) -> None:
        self.bar.bar_style = "danger" if self.failed else "success"
        if results is not None and len(results.ok):
            self.handle.update(results.plot())
        else:
            from IPython.display import HTML

            self.handle.update(HTML(f"<p>{html.escape(self.title)}: {self.done}/{self.total} trials, {self.failed} failed; no successful trial to plot.</p>"))
        self.box.close()


def make_view(live: bool, *, total: int, title: str, lab: Any) -> _View:
    """The right view for where the code runs: widgets, terminal, or nothing."""
    if not live:
        return NullView(total, title)
    if in_jupyter():
        return WidgetView(total, title, lab)
    return TerminalView(total, title)
