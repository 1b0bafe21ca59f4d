"""Reports: execute a notebook with papermill and export it to self-contained HTML.

>>> result = run_notebook("notebooks/00_quickstart.ipynb", {"repeats": 2}, "reports")  # doctest: +SKIP
>>> result.ok, result.html                                                              # doctest: +SKIP
(True, PosixPath('reports/00_quickstart.html'))

The executed notebook and its HTML are written even when a cell fails, so the report shows
the error; ``ok`` says whether every cell ran. No run destroys an earlier report: every run
is kept by date in ``OUT/history/NAME-YYYYmmdd-HHMMSS.{ipynb,html}``; ``OUT/NAME.html`` is the
latest run that passed (a stable link to share), and a failed run is written beside it as
``OUT/NAME.failed.html`` rather than over it. Everything is checked (the notebook can be
read, its kernel exists, the output folder can be made) before any cell runs. Neither the
executed notebook nor the HTML keeps a secret: tokens, passwords and keys (the values of
such environment variables and parameters, ``token=`` in URLs, private keys) are replaced
by ``<redacted>``.
"""

from __future__ import annotations

import ast
import html as html_text
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from threading import TIMEOUT_MAX
from typing import IO, Any

from labkit.common.errors import LabkitError, ParameterError, ParameterTypeError, one_line
from labkit.store.schema import check_path_text
from labkit.store.secrets import is_secret_name, redact, redact_text, secret_values

from .index import write_index
from .summary import ReportSummary, summarize_run


@dataclass(frozen=True)
class ReportResult:
    """Where a notebook run left its outputs, and whether every cell ran."""

    notebook: Path
    html: Path
    ok: bool
    error: str | None = None
    index: Path | None = None  # the folder's index of reports, refreshed after this run


def export_html(
    notebook: str | os.PathLike[str], html: str | os.PathLike[str] | None = None, *, no_input: bool = False
) -> Path:
    """Write an executed notebook as one HTML file, figures embedded as data URIs.

    Parameters
    ----------
    notebook : path
        The executed notebook.
    html : path, optional
        Where the HTML goes (default: beside ``notebook``, ending in ``.html``).
    no_input : bool, default False
        Leave out the code of code cells and their prompts: outputs and markdown stay.
    """
    import nbformat
    from nbconvert import HTMLExporter

    src = Path(notebook)
    out = Path(html) if html is not None else src.with_suffix(".html")
    exporter = HTMLExporter(embed_images=True, exclude_input=no_input, exclude_input_prompt=no_input)
    body, _ = exporter.from_notebook_node(nbformat.read(src, as_version=4))
    secrets = secret_values()
    out.write_text(redact_text(body, secrets + [html_text.escape(v) for v in secrets]), encoding="utf-8")
    return out


def check_notebook(notebook: Any) -> Path:
    """The path of ``notebook`` if it is an existing, readable Jupyter notebook; otherwise a
    ParameterError naming it and saying what is wrong."""
    import nbformat

    text = check_path_text(notebook, "notebook")
    src = Path(text)
    try:
        exists = src.is_file() and src.suffix == ".ipynb"
    except OSError:
        exists = False
    if not exists:
        raise ParameterError("notebook", text, "the path of an existing .ipynb file")
    try:
        nbformat.read(src, as_version=4)
    except Exception as e:  # noqa: BLE001 - nbformat raises many kinds; all mean "not a notebook"
        raise ParameterError(
            "notebook", text, f"a readable Jupyter notebook ({type(e).__name__}: {one_line(str(e))[:200]})"
        ) from None
    return src


def check_kernel(notebook: Path, kernel_name: Any) -> None:
    """Refuse a kernel that is not installed: ``kernel_name``, or else the notebook's own."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    if kernel_name is not None and not isinstance(kernel_name, str):
        raise ParameterTypeError("kernel", kernel_name, "str, the name of an installed Jupyter kernel")
    name = kernel_name or nbformat.read(notebook, as_version=4).metadata.get("kernelspec", {}).get("name")
    manager = KernelSpecManager()
    try:
        if not name:
            raise NoSuchKernel(name)
        manager.get_kernel_spec(name)
    except (NoSuchKernel, ValueError, OSError):
        known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        label = "kernel" if kernel_name is not None else f"kernel (the kernelspec of {notebook.name})"
        raise ParameterError(label, name, f"an installed Jupyter kernel: {known}") from None


def check_timeout(timeout_s: Any) -> int | None:
    """The longest a cell may run, in whole seconds (nbclient counts in seconds), or None."""
    if timeout_s is None:
        return None
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= TIMEOUT_MAX:
        raise ParameterError("timeout", timeout_s, f"None or a number of seconds > 0 and <= {TIMEOUT_MAX:.0f}")
    return max(1, math.ceil(timeout_s))


def check_out_dir(out_dir: Any, src: Path) -> Path:
    """The folder a report goes to, if it can be one and would not overwrite ``src``."""
    text = check_path_text(out_dir, "out")
    out = Path(text)
    try:
        if out.exists() and not out.is_dir():
            raise ParameterError("out", text, "a folder (this path is a file)")
        if (out / src.name).is_dir():
            raise ParameterError("out", text, f"a folder without a subfolder named {src.name}")
        if (out / src.name).resolve() == src.resolve():
            raise ParameterError("out", text, "a folder other than the notebook's own (its copy would replace it)")
        above = next(p for p in (out, *out.absolute().parents) if p.exists())
        if not above.is_dir():
            raise ParameterError("out", text, f"a path whose existing part is a folder ({above} is a file)")
    except OSError as e:
        raise ParameterError("out", text, f"a usable folder path ({e.strerror or e})") from None
    return out


def redact_notebook(path: Path, parameters: dict[str, Any]) -> None:
    """Rewrite the executed notebook at ``path`` without secrets: those of the environment,
    the values of secret-named ``parameters``, and those :func:`~labkit.store.secrets.redact_text` finds."""
    import nbformat

    extra = [str(v) for k, v in parameters.items() if is_secret_name(str(k)) and isinstance(v, (str, int, float))]
    nb = nbformat.read(path, as_version=4)
    nbformat.write(nbformat.from_dict(redact(nb, secret_values(extra=extra))), path)


def default_store(notebook: Path) -> str | None:
    """The store a notebook's ``parameters`` cell names by default, when it is a literal
    string: where its sweeps write when the run passes no ``store``."""
    from .params import declared_parameters

    try:
        value = ast.literal_eval(str(declared_parameters(notebook).get("store", {}).get("default")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) and value else None


def add_header(executed: Path, summary: ReportSummary) -> None:
    """Put the report's header (trials measured and reused, environment, parameters) first in
    the executed notebook, as a markdown cell of HTML tagged ``labkit-report-header`` (it reads
    as the report's opening prose, in Jupyter and in the exported HTML, with or without
    ``--no-input``), and the same as data in its metadata (``nb.metadata["labkit"]``, see
    :meth:`ReportSummary.to_metadata`)."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.metadata["labkit"] = summary.to_metadata()
    nb.cells = [c for c in nb.cells if "labkit-report-header" not in c.get("metadata", {}).get("tags", [])]
    # One line: a blank line would end markdown's raw HTML block and leave the rest to be read as markdown.
    source = " ".join(summary.to_html().splitlines())
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(source, metadata={"tags": ["labkit-report-header"]}))
    nbformat.write(nb, executed)


def run_notebook(
    notebook: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    out_dir: str | os.PathLike[str] = "reports",
    *,
    cwd: str | os.PathLike[str] | None = None,
    kernel_name: str | None = None,
    timeout_s: float | None = None,
    log_output: bool = False,
    no_input: bool = False,
    progress: IO[str] | None = None,
) -> ReportResult:
    """Execute ``notebook`` with papermill into ``out_dir`` and export it to HTML.

    Parameters
    ----------
    notebook : path
        The notebook to run; its cell tagged ``parameters`` receives ``parameters``.
    parameters : dict, optional
        Values injected by papermill.
    out_dir : path, default "reports"
        Folder for ``NAME.ipynb`` (executed) and ``NAME.html``; created if missing.
    cwd : path, optional
        Working directory of the kernel (default: this process's), so relative paths such
        as the default store ``results/labkit.db`` resolve as they do on the command line.
    kernel_name : str, optional
        Jupyter kernel (default: the notebook's own).
    timeout_s : float, optional
        Longest a single cell may run, in seconds (rounded up to a whole second).
    log_output : bool, default False
        Echo the notebook's output as it runs.
    no_input : bool, default False
        Hide the code of code cells in the HTML (outputs and markdown stay); the executed
        notebook keeps it.
    progress : text stream, optional
        Where papermill's bar of cells done goes (default: no bar); a line per cell where it
        is not a terminal.

    Returns
    -------
    ReportResult
        The executed notebook, its HTML, whether every cell ran (else the error) and the
        folder's ``index.html``, written again to list every report in ``out_dir``
        (:func:`labkit.report.index.write_index`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    src = check_notebook(notebook)
    check_kernel(src, kernel_name)
    cell_timeout = check_timeout(timeout_s)
    out = check_out_dir(out_dir, src)
    if not isinstance(no_input, bool):
        raise ParameterTypeError("no_input", no_input, "bool")
    if parameters is not None and not isinstance(parameters, dict):
        raise ParameterTypeError("parameters", parameters, "dict of parameter name -> value")
    if cwd is not None and not Path(check_path_text(cwd, "cwd")).is_dir():
        raise ParameterError("cwd", str(cwd), "an existing folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParameterError("out", str(out_dir), f"a folder that can be created ({e.strerror or e})") from None
    parameters = parameters or {}
    error = None
    started = time.time()
    executed = _dated(out, src, started)
    try:
        papermill.execute_notebook(
            str(src),
            str(executed),
            parameters=parameters,
            cwd=str(cwd or os.getcwd()),
            kernel_name=kernel_name,
            progress_bar=_cell_bar(progress, src.stem),
            log_output=log_output,
            execution_timeout=cell_timeout,
            # ipykernel's "running over TCP without encryption" warning on every run says
            # nothing about the notebook: the kernel logs errors only.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as e:
        error = f"cell {e.cell_index} raised {e.ename}: {e.evalue}"
    except Exception as e:  # noqa: BLE001 - a cell timeout, a dead kernel: the report says what stopped it
        error = f"{type(e).__name__}: {one_line(str(e))}"
        if not executed.is_file():
            raise LabkitError(f"{src} could not be run: {redact_text(error)}") from None
    redact_notebook(executed, parameters)
    store = None if parameters.get("store") else default_store(src)  # the header counts the trials it stored
    add_header(executed, summarize_run(parameters, started, store=store))
    export_html(executed, executed.with_suffix(".html"), no_input=no_input)
    shown = publish(executed, out / src.name, passed=error is None)
    index = write_index(out)
    return ReportResult(
        shown, shown.with_suffix(".html"), error is None, None if error is None else redact_text(error), index
    )


def _cell_bar(stream: IO[str] | None, name: str) -> dict[str, Any] | bool:
    """papermill's ``progress_bar`` argument: tqdm's settings for a bar on ``stream``, or False."""
    if stream is None:
        return False
    if getattr(stream, "isatty", lambda: False)():
        return {"file": stream, "desc": name, "leave": True}
    # a log or a pipe: one plain line per cell begun, no redraws
    return {"file": stream, "desc": name, "mininterval": 0, "bar_format": "{desc}: {n_fmt} of {total_fmt} cells done\n"}


def _dated(out: Path, src: Path, started: float) -> Path:
    """Where this run's executed notebook goes: ``OUT/history/NAME-<UTC start>.ipynb`` (a new name)."""
    history = out / "history"
    history.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    path, n = history / f"{src.stem}-{stamp}.ipynb", 1
    while path.exists():
        n += 1
        path = history / f"{src.stem}-{stamp}-{n}.ipynb"
    return path


def publish(run: Path, latest: Path, *, passed: bool) -> Path:
    """Copy a dated run (notebook and HTML) to where a reader looks: ``latest`` when it passed
    or when there is no passed run there to keep, else ``NAME.failed`` beside it. Each file
    is replaced whole (a copy, then a rename), so no reader sees half of one."""
    from .index import read_entry

    kept = latest.is_file() and getattr(read_entry(latest), "status", None) == "passed"
    target = latest if passed or not kept else latest.with_name(f"{latest.stem}.failed.ipynb")
    for suffix in (".ipynb", ".html"):
        part = target.with_suffix(suffix)
        tmp = part.with_name(f".{part.name}.tmp")
        shutil.copyfile(run.with_suffix(suffix), tmp)
        os.replace(tmp, part)
    if passed:  # an older failure is in the history; beside a newer good run it would mislead
        for suffix in (".ipynb", ".html"):
            latest.with_name(f"{latest.stem}.failed{suffix}").unlink(missing_ok=True)
    return target
