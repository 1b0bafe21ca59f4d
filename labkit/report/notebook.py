"""Reports: execute a notebook with papermill and export it to self-contained HTML.

>>> result = run_notebook("notebooks/00_quickstart.ipynb", {"repeats": 2}, "reports")  # doctest: +SKIP
>>> result.ok, result.html                                                              # doctest: +SKIP
(True, PosixPath('reports/00_quickstart.html'))

The executed notebook and its HTML are written even when a cell fails, so the report shows
the error; ``ok`` says whether every cell ran.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.common.errors import ParameterError

from .summary import ReportSummary, summarize_run


@dataclass(frozen=True)
class ReportResult:
    """Where a notebook run left its outputs, and whether every cell ran."""

    notebook: Path
    html: Path
    ok: bool
    error: str | None = None


def export_html(notebook: str | os.PathLike[str], html: str | os.PathLike[str] | None = None) -> Path:
    """Write an executed notebook as one HTML file, figures embedded as data URIs."""
    import nbformat
    from nbconvert import HTMLExporter

    src = Path(notebook)
    out = Path(html) if html is not None else src.with_suffix(".html")
    exporter = HTMLExporter(embed_images=True)
    body, _ = exporter.from_notebook_node(nbformat.read(src, as_version=4))
    out.write_text(body, encoding="utf-8")
    return out


def add_header(executed: Path, summary: ReportSummary) -> None:
    """Put the report's header (trials measured and reused, environment, parameters) first in
    the executed notebook, as a cell with an HTML output."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "labkit-report-header" not in c.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_code_cell(
        source="# what this report is made of (added by labkit run)",
        metadata={"tags": ["labkit-report-header"], "jupyter": {"source_hidden": True}},
        outputs=[nbformat.v4.new_output("display_data", data={"text/html": summary.to_html(), "text/plain": ""})],
    )
    nb.cells.insert(0, cell)
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
        Longest a single cell may run.
    log_output : bool, default False
        Echo the notebook's output as it runs.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    src = Path(notebook)
    if not src.is_file() or src.suffix != ".ipynb":
        raise ParameterError("notebook", str(notebook), "the path of an existing .ipynb file")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    executed = out / src.name
    error = None
    started = time.time()
    try:
        papermill.execute_notebook(
            str(src),
            str(executed),
            parameters=parameters or {},
            cwd=str(cwd or os.getcwd()),
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=log_output,
            execution_timeout=timeout_s,
            # ipykernel's "running over TCP without encryption" warning on every run says
            # nothing about the notebook: the kernel logs errors only.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as e:
        error = f"cell {e.cell_index} raised {e.ename}: {e.evalue}"
    add_header(executed, summarize_run(parameters or {}, started))
    html = export_html(executed, executed.with_suffix(".html"))
    return ReportResult(executed, html, error is None, error)
