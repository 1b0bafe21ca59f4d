"""``labkit run NOTEBOOK``: execute a notebook with papermill, show its progress, write its report.

While the notebook runs, the terminal shows papermill's cell bar and, below it, one bar per
sweep (trials done of planned, read from the kernel's progress file, :mod:`labkit.common.progress`),
with the sweep's notes (trials reused, time budget spent) and alerts as lines above the bars.
What the kernel and the libraries write to stderr goes to ``OUT/labkit-run.log``. Ctrl-C
ends with one line that says how many trials were kept and how to resume, exit status 130.
``--fresh`` measures every trial again (``Sweep(reuse="none")`` in every sweep the notebook
runs, through ``LABKIT_REUSE``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from labkit.common import progress
from labkit.common.logs import ENV as LOG_ENV
from labkit.experiment.provenance import REUSE_ENV

#: The log kept beside the reports: the kernel's stderr and the libraries' log lines.
RUN_LOG = "labkit-run.log"


def parse_value(text: str) -> Any:
    """A parameter value from the command line: a Python literal if it is one, else a string.

    >>> parse_value("[4.0, 16.0]"), parse_value("auto"), parse_value("[" * 10_000)[:3]
    ([4.0, 16.0], 'auto', '[[[')
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def run_command(args: argparse.Namespace) -> int:
    """``labkit run``: 0 when every cell ran, 1 when one failed (its report is written), 130 on Ctrl-C."""
    from labkit.report.notebook import check_notebook
    from labkit.report.params import check_parameters, load_yaml_parameters

    notebook = check_notebook(args.notebook)
    params = load_yaml_parameters(args.parameters_file, args.parameters_yaml)
    params.update({name: parse_value(value) for name, value in args.parameters})
    check_parameters(notebook, params)
    started = time.time()
    previous = signal.signal(signal.SIGINT, _first_interrupt_only)
    try:
        result = _execute(args, notebook, params)
    except KeyboardInterrupt:
        # papermill's cell task ends with the interrupt, which asyncio would report at exit
        # ("Task exception was never retrieved", with the kernel's traceback): said here in one line.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print(_interrupted(notebook, params, started), file=sys.stderr)
        return 130
    finally:
        if signal.getsignal(signal.SIGINT) is _first_interrupt_only:  # no Ctrl-C came: as it was
            signal.signal(signal.SIGINT, previous)
    print(f"notebook: {result.notebook}")
    print(f"report: {result.html}")
    print(f"index: {result.index}")
    if not result.ok:
        print(f"FAILED: {result.error}", file=sys.stderr)  # redacted, as the report is
        return 1
    return 0


def _execute(args: argparse.Namespace, notebook: Path, params: dict[str, Any]) -> Any:
    """Run the notebook with the kernel's stderr kept in OUT's log and its progress followed on
    the terminal; papermill's result (:class:`~labkit.report.notebook.ReportResult`)."""
    from labkit.report import run_notebook

    with _quiet_kernel(args.out) as terminal, _followed(terminal) as env:
        env[LOG_ENV] = str(Path(args.out, RUN_LOG).absolute())  # the libraries' logs, out of the cells
        if args.fresh:
            env[REUSE_ENV] = "none"
            print("--fresh: every trial is measured again; stored ones stay in the store", file=terminal)
        with _environ(env):
            return run_notebook(
                notebook,
                params,
                args.out,
                timeout_s=args.timeout,
                log_output=args.log_output,
                kernel_name=args.kernel,
                no_input=args.no_input,
                progress=terminal,
            )


def _first_interrupt_only(_signum: int, _frame: Any) -> None:
    """Ctrl-C: a KeyboardInterrupt the first time; pressed again while the run winds down
    (the terminal given back, the line that says what was kept), ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _environ(changes: dict[str, str]) -> Iterator[None]:
    """These environment variables set while the kernel starts (it inherits them), then put back."""
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_kernel(out_dir: str) -> Iterator[IO[str]]:
    """While a notebook runs, what the kernel and the libraries write to stderr (tracebacks of an
    interrupt, Tornado's and Dask's logs) goes to ``OUT/labkit-run.log``, kept with the reports;
    labkit's own lines go to the terminal, which this yields (a copy of the old stderr). The log
    is gathered in a temporary file first, so a run refused before it starts creates no folder."""
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)
    try:
        yield terminal
    finally:
        with contextlib.suppress(OSError, ValueError):
            terminal.close()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.seek(0)
        text = log.read()
        log.close()
        if text and Path(out_dir).is_dir():
            with contextlib.suppress(OSError), open(Path(out_dir) / RUN_LOG, "ab") as kept:
                kept.write(text)


class _Progress:
    """The sweeps' progress on the terminal, from the kernel's progress events: a bar per sweep
    on a terminal, a plain line every :data:`LINE_EVERY_S` seconds (and at its end) in a log."""

    def __init__(self, terminal: IO[str]) -> None:
        self.terminal, self.bars, self.lines = terminal, {}, {}
        self.tty = bool(getattr(terminal, "isatty", lambda: False)())

    def show(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        title, kind = str(event.get("title", "sweep")), event.get("kind")
        if kind in ("note", "alert"):
            tag = "ALERT " if kind == "alert" else ""
            line = f"{title}: {tag}{event.get('text', '')}"
            if self.tty:
                tqdm.write(line, file=self.terminal)
            else:
                print(line, file=self.terminal)
            return
        total = int(event.get("total") or 0)
        if not self.tty:
            self._line(title, kind, event, total)
            return
        bar = self.bars.get(title)
        if bar is None or bar.total != total or bar.disable:
            bar = self.bars[title] = tqdm(total=total, desc=title, file=self.terminal, leave=True, bar_format=BAR)
        done = int(event.get("reused", 0)) + bar.n if kind == "reused" else int(event.get("done", bar.n))
        bar.update(max(0, min(done, total) - bar.n))
        if bar.n >= total:
            bar.close()

    def _line(self, title: str, kind: Any, event: dict[str, Any], total: int) -> None:
        done, last = self.lines.get(title, (0, 0.0))
        done = done + int(event.get("reused", 0)) if kind == "reused" else int(event.get("done", done))
        now = time.monotonic()
        if done >= total or now - last >= LINE_EVERY_S:
            failed = int(event.get("failed") or 0)
            print(f"{title}: {done} of {total} trials" + (f", {failed} failed" if failed else ""), file=self.terminal)
            last = now
        self.lines[title] = (done, last)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


#: A sweep's bar: trials done of planned and the time so far (no rate: reused trials count at once).
BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} trials [{elapsed}]"
#: Seconds between two progress lines where the terminal is a file or a pipe.
LINE_EVERY_S = 10.0


@contextlib.contextmanager
def _followed(terminal: IO[str], every_s: float = 0.5) -> Iterator[dict[str, str]]:
    """Follow the kernel's progress file while the block runs; yields the environment the
    kernel needs to write it (:data:`labkit.common.progress.ENV`)."""
    folder = tempfile.TemporaryDirectory(prefix="labkit-run-")
    path = Path(folder.name) / "progress.jsonl"
    path.touch()
    follower, shown, stop = progress.Follower(path), _Progress(terminal), threading.Event()

    def follow() -> None:
        while True:
            stopping = stop.wait(every_s)
            for event in follower.read():
                with contextlib.suppress(Exception):  # the terminal must not stop the run
                    shown.show(event)
            if stopping:
                return

    thread = threading.Thread(target=follow, name="labkit-run-progress", daemon=True)
    thread.start()
    try:
        yield {progress.ENV: str(path)}
    finally:
        stop.set()
        thread.join(timeout=5)
        shown.close()
        folder.cleanup()


def _interrupted(notebook: Any, params: dict[str, Any], since: float) -> str:
    """The one line Ctrl-C on ``labkit run`` ends with: what was kept, and how to go on."""
    import sqlite3

    from labkit.report.notebook import default_store
    from labkit.store.schema import resolve_store_path

    store = params.get("store") or default_store(notebook)
    if not store:
        return "interrupted: this notebook names no store; nothing to resume"
    path = resolve_store_path(store)
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            (kept,) = conn.execute(
                "SELECT COUNT(*) FROM trials WHERE status = 'ok' AND started_at >= ?", (since,)
            ).fetchone()
    except sqlite3.Error:
        return f"interrupted: no trial was stored in {path}; run the same command to start again"
    return f"interrupted: {kept} trials kept in {path}; run the same command to resume"


def add_run_parser(sub: Any) -> None:
    """``labkit run NOTEBOOK [-p NAME VALUE]... [--out DIR] [--no-input] [--fresh]``."""
    run = sub.add_parser("run", help="execute a notebook with papermill and write an HTML report")
    run.add_argument("notebook", help="path of the .ipynb to run")
    run.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (Python literal or string); repeatable",
    )
    run.add_argument(
        "--out", default="reports", help="folder for the executed notebook and its HTML (default: reports)"
    )
    for short, flag, meta, what in (
        ("-f", "--parameters-file", "FILE", "YAML file"),
        ("-y", "--parameters-yaml", "YAML", "YAML string"),
    ):
        run.add_argument(
            short,
            flag,
            action="append",
            default=[],
            metavar=meta,
            help=f"{what} of parameters (papermill's {short}); repeatable",
        )
    run.add_argument("--kernel", default=None, help="Jupyter kernel to run it with (default: the notebook's)")
    run.add_argument("--timeout", type=float, default=None, help="longest a cell may run, in seconds")
    run.add_argument("--log-output", action="store_true", help="echo the notebook's output while it runs")
    run.add_argument(
        "--no-input", action="store_true", help="hide the code of code cells in the HTML report (outputs stay)"
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="measure every trial again, reusing none from the store (stored trials are kept)",
    )
    run.set_defaults(func=run_command)
