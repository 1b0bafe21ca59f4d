"""What a person sees while a sweep runs: a live view in Jupyter, a progress line elsewhere.

In Jupyter, :class:`LiveView` shows one ipywidgets box: a header (cluster, workers,
dashboard link), a progress bar, a Matplotlib figure (per-worker CPU and memory timelines,
throughput points with their spread, where each trial's time went) redrawn at a bounded
rate, a table of the latest trials and the alerts. It is displayed with a display handle;
when the sweep ends the handle is updated in place with the final static figure, so an
executed notebook and its HTML export hold a real image, not a widget that needs
JavaScript. Under ``labkit run`` (papermill, no one watching) the figure is drawn only at
the end: its frames would cost the kernel, where the scheduler runs, and show nothing. Outside
Jupyter a terminal progress line shows the same progress;
``live=False`` turns it all off.
"""

from __future__ import annotations

import base64
import html
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from labkit.common import progress
from labkit.common.format import format_rate
from labkit.common.jupyter import in_jupyter

if TYPE_CHECKING:
    import pandas as pd

    from labkit.store import Trial

#: Fewest seconds between two redraws of the live figure (at most 2 per second).


class FinishedSweep(Protocol):
    """What the view needs of a finished sweep's results (``labkit.Results`` is one)."""

    @property
    def ok(self) -> pd.DataFrame: ...

    def plot(self) -> Any: ...


MIN_REDRAW_S = 0.5
#: A timed run longer than this gets live redraws while it runs.
LONG_RUN_S = 5.0
#: Back-to-back short runs still get a redraw this often, so the figure never looks stuck.
MAX_STALE_S = 3.0


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
        if n > 0:
            self.done += n
            progress.emit("reused", title=self.title, reused=n, total=self.total)
            self.show(None, skipped=n)

    def trial(self, trial: Trial) -> None:
        self.done += 1
        self.failed += trial.status != "ok"
        progress.emit("trials", title=self.title, done=self.done, total=self.total, failed=self.failed)
        self.show(trial)

    def timing(self, active: bool) -> None:
        """Told when a timed run starts and ends (a view may hold back work meanwhile)."""

    def alert(self, message: str) -> None:
        """An alert from the monitor."""
        progress.emit("alert", title=self.title, text=message)
        self.show_alert(message)

    def note(self, message: str) -> None:
        """A sentence from the sweep about what it is doing (resumed trials, the time budget)."""
        progress.emit("note", title=self.title, text=message)
        self.show_note(message)

    def show_alert(self, message: str) -> None:
        """Show an alert (nothing here)."""

    def show_note(self, message: str) -> None:
        """Show a note (nothing here)."""

    def metrics(self, trial_id: int, metrics: dict[str, Any]) -> None:
        """Figures of a finished trial that arrived after it (resources, time split)."""

    def show(self, trial: Trial | None, skipped: int = 0) -> None:
        pass

    def close(self, results: FinishedSweep | None) -> None:
        pass


class NullView(_View):
    """``live=False``: nothing shown."""


class TerminalView(_View):
    """tqdm's progress bar on stderr, with the latest trial beside it."""

    def __init__(self, total: int, title: str) -> None:
        super().__init__(total, title)
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=title, unit="trial", file=sys.stderr, dynamic_ncols=True, leave=True)

    def show(self, trial: Trial | None, skipped: int = 0) -> None:
        self.bar.update(min(self.done, self.total) - self.bar.n)
        last = f"resumed {skipped} already done" if trial is None else _trial_text(trial)
        self.bar.set_postfix_str(last[:80], refresh=True)

    def show_alert(self, message: str) -> None:
        self.bar.write(f"ALERT {message}", file=sys.stderr)

    def show_note(self, message: str) -> None:
        self.bar.write(f"{self.title}: {message}", file=sys.stderr)

    def close(self, results: FinishedSweep | None) -> None:
        failed = f", {self.failed} failed" if self.failed else ""
        self.bar.set_postfix_str(f"{self.done} trials{failed}", refresh=True)
        self.bar.close()
        for line in _notes(results):
            sys.stderr.write(f"{self.title}: {line}\n")


class LiveView(_View):
    """The live ipywidgets box (see the module docstring).

    Parameters
    ----------
    total : int
        Timed runs expected (the progress bar's maximum).
    title : str
    lab : Lab
        For the header: workers and dashboard link.
    samples : callable, optional
        Returns the monitor's samples so far (long DataFrame); None: no timelines.
    final_figure : callable, optional
        ``(results, samples) -> Figure`` shown in place of the box when the sweep ends.
    headless : bool, default False
        No one watches (``labkit run``): the figure is not drawn as trials come in, only the
        progress and the trial lines change, and the final figure is drawn at the end.
    """

    keep = 8

    def __init__(
        self,
        total: int,
        title: str,
        lab: Any,
        *,
        samples: Callable[[], pd.DataFrame] | None = None,
        final_figure: Callable[..., Any] | None = None,
        headless: bool = False,
    ) -> None:
        super().__init__(total, title)
        import ipywidgets as w
        from IPython.display import display

        self.lab, self.samples, self.final_figure, self.headless = lab, samples, final_figure, headless
        link = getattr(lab, "dashboard_link", None)
        head = f"<b>{html.escape(title)}</b> — {lab.kind} cluster, {lab.workers} workers, {lab.threads} threads" + (
            f' — <a href="{link}" target="_blank">Dask dashboard</a>' if link else ""
        )
        note = capacity_note(lab)
        if note:
            head += f'<br><span class="labkit-oversubscribed">⚠ {html.escape(note)}</span>'
        self.header = w.HTML(head)
        self.bar = w.IntProgress(value=0, min=0, max=max(total, 1), description="trials", bar_style="info")
        self.status = w.HTML("")
        # Hidden until the first draw: an Image widget without a value shows a broken icon.
        # The figure and the count of trials it shows, in one widget so that they change
        # together; empty (no broken-image icon) until the first draw.
        self.image = w.HTML("")
        self.table = w.HTML("")
        self.alerts = w.HTML("")
        self.box = w.VBox([self.header, w.HBox([self.bar, self.status]), self.image, self.table, self.alerts])
        self.box.add_class("labkit-live")  # a stable hook for the browser test
        self.lines: list[str] = []
        self.alert_lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._draw_lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._timing = False
        self._timing_since = 0.0
        self._last_draw = 0.0
        self._t0 = time.time()
        self.redraws = 0
        self.handle = display(self.box, display_id=True)
        self._thread = threading.Thread(target=self._redraw_loop, name="labkit-liveview", daemon=True)
        self._thread.start()

    # -- events from the sweep -----------------------------------------------------------

    def show(self, trial: Trial | None, skipped: int = 0) -> None:
        self.bar.value = min(self.done, self.bar.max)
        elapsed = time.monotonic() - self.started
        self.status.value = f"&nbsp;{self.done}/{self.total} &nbsp; {elapsed:.1f}s" + (
            f" &nbsp; <span style='color:#b00'>{self.failed} failed</span>" if self.failed else ""
        )
        line = f"resumed {skipped} trials already in the store" if trial is None else _trial_text(trial)
        self.lines = (self.lines + [html.escape(line)])[-self.keep :]
        self.table.value = "<pre style='margin:0;font-size:11px'>" + "\n".join(self.lines) + "</pre>"
        if trial is not None:
            from labkit.store import trial_record

            with self._lock:
                self.records.append(trial_record(trial))
        self._dirty.set()
        if trial is not None and not self.headless and time.monotonic() - self._last_draw >= MIN_REDRAW_S:
            # Between two timed runs: draw now, so the figure's newest point is this trial.
            self._draw_quietly()

    def show_alert(self, message: str) -> None:
        self.alert_lines.append(f"<div style='color:#b00'>⚠ {html.escape(message)}</div>")
        self.alerts.value = "".join(self.alert_lines[-6:])

    def show_note(self, message: str) -> None:
        self.alert_lines.append(f"<div style='color:#333'>ℹ {html.escape(message)}</div>")
        self.alerts.value = "".join(self.alert_lines[-6:])

    def metrics(self, trial_id: int, metrics: dict[str, Any]) -> None:
        with self._lock:
            for record in self.records:
                if record.get("trial_id") == trial_id:
                    record.update(metrics)
        self._dirty.set()

    def timing(self, active: bool) -> None:
        self._timing = active
        self._timing_since = time.monotonic()

    # -- drawing -------------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        with self._lock:
            return pd.DataFrame(self.records)

    def _redraw_loop(self) -> None:
        # Trials are drawn by the sweep's own thread right after each one (see show), so the
        # figure never lags them; this thread only keeps the timelines moving while a long
        # run is timed, or when nothing was drawn for MAX_STALE_S (a slow setup).
        while not self._stop.wait(MIN_REDRAW_S / 2):
            now = time.monotonic()
            due = now - self._last_draw >= MIN_REDRAW_S
            long_run = self._timing and now - self._timing_since > LONG_RUN_S
            stale = now - self._last_draw > MAX_STALE_S
            drawn = not self.headless and (self._dirty.is_set() or self.samples is not None)
            if due and (long_run or stale) and drawn:
                self._draw_quietly()

    def _draw_quietly(self) -> None:
        with self._draw_lock:
            self._dirty.clear()
            try:
                self.redraw()
            except Exception:  # noqa: BLE001 - a drawing glitch must not stop the sweep
                pass

    def redraw(self) -> None:
        """Render the live figure into the image widget."""
        from labkit.plots.sweep import live_figure

        samples = self.samples() if self.samples is not None else None
        frame = self.frame()
        fig = live_figure(frame, samples, t0=self._t0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        n = len(frame)
        data = base64.b64encode(buf.getvalue()).decode()
        self.image.value = (
            f"<img class='labkit-figure' data-trials='{n}' style='max-width:940px' "
            f"alt='live figure of the {n} trial(s) measured so far' src='data:image/png;base64,{data}'>"
        )
        self._last_draw = time.monotonic()
        self.redraws += 1

    def close(self, results: FinishedSweep | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._dirty.is_set():  # the last trials, drawn before the static figures take over
            self._draw_quietly()
        self.bar.bar_style = "danger" if self.failed else "success"
        if results is not None and len(results.ok):
            samples = self.samples() if self.samples is not None else None
            fig = self.final_figure(results, samples) if self.final_figure else results.plot()
            self.handle.update(fig)
            notes = _notes(results)
            if notes:
                from IPython.display import HTML, display

                display(HTML("".join(f"<p class='labkit-note'>{html.escape(n)}</p>" for n in notes)))
        else:
            from IPython.display import HTML

            self.handle.update(
                HTML(
                    f"<p>{html.escape(self.title)}: {self.done} trials, {self.failed} failed; no successful trial to plot.</p>"
                )
            )
        self.box.close()


def _notes(results: Any) -> list[str]:
    """What the results say about themselves: trials reused, set aside, short of target."""
    notes = getattr(results, "notes", None)
    try:
        return list(notes()) if callable(notes) else []
    except Exception:  # noqa: BLE001 - a view must not fail a sweep over a note
        return []


def make_view(
    live: bool,
    *,
    total: int,
    title: str,
    lab: Any,
    samples: Callable[[], pd.DataFrame] | None = None,
    final_figure: Callable[..., Any] | None = None,
) -> _View:
    """The right view for where the code runs: widgets, terminal, or nothing."""
    if not live:
        return NullView(total, title)
    if in_jupyter():
        # Under `labkit run` (papermill, no one watching) the figure is drawn once, at the end:
        # its frames as it grows would cost the kernel (where the scheduler runs) and show nothing.
        headless = bool(os.environ.get(progress.ENV))
        return LiveView(total, title, lab, samples=samples, final_figure=final_figure, headless=headless)
    note = capacity_note(lab)
    if note:
        sys.stderr.write(f"{title}: {note}\n")
    return TerminalView(total, title)


def capacity_note(lab: Any) -> str:
    """The lab's oversubscription sentence, or "" when its threads fit its cores."""
    capacity = getattr(lab, "capacity", None)
    if capacity is None:
        return ""
    try:
        c = capacity()
    except Exception:  # noqa: BLE001 - a view must not fail a sweep over a note
        return ""
    return c.describe() if c.oversubscribed else ""
