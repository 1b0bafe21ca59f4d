"""Where the libraries' log lines and warnings go in a Jupyter kernel: a log file, not the cells.

Dask (``distributed``), Tornado and Bokeh log to the kernel's stderr, which a notebook shows
under the running cell and an executed notebook keeps in its report: lines such as
``distributed.scheduler - WARNING - Removing worker ...`` followed by task keys, or a
``UserWarning`` about a busy port. Once a Lab starts or connects in a kernel,
:func:`route_in_kernel` sends the records of those loggers, and the Python warnings raised in
those libraries' own modules, elsewhere:

- under ``labkit run``, which names a log file in :data:`ENV` (``OUT/labkit-run.log``, kept
  next to the reports and linked from their header), to that file, whole;
- in an interactive kernel (no :data:`ENV`), to the cell still, but warnings and errors only,
  one short line each (``distributed.scheduler warning: Removing worker ...``, cut at
  :data:`SHORT` characters): who watches the notebook sees that a worker was lost, without
  a traceback or a list of task keys.

It is done once per process, with handlers of the standard :mod:`logging` module, and
warnings from any other module are shown as before. labkit's own loggers (``labkit.*``:
alerts the user must see) are left as they are. The worker processes of a cluster a Lab
starts load this module as a Dask preload (:data:`PRELOAD`) and send theirs the same way.

>>> route_in_kernel() is None   # not in a kernel: Dask's own logging stays
True
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from .jupyter import in_jupyter

#: Environment variable naming the file the libraries' log lines are appended to.
ENV = "LABKIT_LOG"
#: The loggers (and their children) routed, and the packages whose warnings are.
LIBRARIES = ("distributed", "tornado", "bokeh")
#: Longest line a library record or warning takes in a cell of an interactive kernel.
SHORT = 160
#: How a record is written to the log file.
FILE_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
#: The module name Dask's ``preload=`` takes to do the same in worker processes.
PRELOAD = __name__

_handler: logging.Handler | None = None


class OneLine(logging.Formatter):
    """A record as one short line: ``logger level: message``, whitespace folded, cut at :data:`SHORT`.

    >>> record = logging.makeLogRecord({"name": "distributed.scheduler", "levelname": "WARNING",
    ...                                 "msg": "Removing worker\\n  {'x-1', 'x-2'}"})
    >>> OneLine().format(record)
    "distributed.scheduler warning: Removing worker {'x-1', 'x-2'}"
    """

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name} {record.levelname.lower()}: {' '.join(record.getMessage().split())}"
        return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def route_in_kernel() -> logging.Handler | None:
    """In a Jupyter kernel, route the libraries' logs and warnings (see the module's text) and
    return the handler they go to; elsewhere (a script, a test, a worker) change nothing: None."""
    if not in_jupyter():
        return None
    return route_library_logs(os.environ.get(ENV) or None)


def routed() -> bool:
    """Whether this process routes the libraries' logs (so the workers it starts should too)."""
    return _handler is not None


def route_library_logs(path: str | os.PathLike[str] | None) -> logging.Handler:
    """Send the records of :data:`LIBRARIES`' loggers, and the warnings raised in their modules,
    to the file at ``path`` (appended; created now), or with None (or a file that cannot be
    opened) as one short line each, warnings and errors only, to stderr.

    Once per process: a later call returns the first call's handler and changes nothing.
    """
    global _handler
    if _handler is not None:
        return _handler
    import distributed  # noqa: F401 - importing it sets up the handlers replaced here

    handler = _file_handler(path) if path else None
    if handler is None:
        import sys

        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(OneLine())
    for name in LIBRARIES:
        _take_over(logging.getLogger(name), handler)
    _capture_warnings(handler)
    _handler = handler
    return handler


def _file_handler(path: str | os.PathLike[str]) -> logging.Handler | None:
    try:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    return handler


def _to_console(handler: logging.Handler) -> bool:
    """A handler that writes to a stream (stderr, the cell) rather than a file of its own."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def _take_over(top: logging.Logger, handler: logging.Handler) -> None:
    """``handler`` in place of the console handlers of ``top`` and its children; the children
    that keep no handler pass their records up to ``top``, which passes them no further."""
    prefix = top.name + "."
    children = [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if name.startswith(prefix) and isinstance(logger, logging.Logger)
    ]
    for logger in (top, *children):
        for old in [h for h in logger.handlers if _to_console(h)]:
            logger.removeHandler(old)
        if logger is not top and not logger.handlers:
            logger.propagate = True  # else Python's last-resort handler would print its warnings to stderr
    top.addHandler(handler)
    top.propagate = False


def _library_of(filename: str, roots: dict[str, list[str]]) -> str | None:
    """The library whose package holds the file ``filename``, or None."""
    path = os.path.realpath(filename)
    for name, folders in roots.items():
        if any(path.startswith(folder + os.sep) for folder in folders):
            return name
    return None


def _capture_warnings(handler: logging.Handler) -> None:
    """Warnings raised in :data:`LIBRARIES`' modules go to ``handler`` (as ``logging.captureWarnings``
    does for all); the others to the ``warnings.showwarning`` there was before."""
    import importlib.util

    roots = {}
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots[name] = [os.path.realpath(p) for p in spec.submodule_search_locations]
    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None):
        library = _library_of(filename, roots)
        if library is None:
            shown(message, category, filename, lineno, file, line)
            return
        text = f"{category.__name__}: {message}"
        handler.handle(logging.LogRecord(library, logging.WARNING, filename, lineno, text, None, None))

    warnings.showwarning = show


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in a worker's process as it starts: route its libraries' logs as
    the kernel that started it does (to the file named in :data:`ENV`, else short lines)."""
    route_library_logs(os.environ.get(ENV) or None)
