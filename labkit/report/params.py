"""A notebook's parameters: what it declares, and the values a run passes, checked before it runs.

papermill only warns about a parameter the notebook does not declare and runs on the
defaults; labkit refuses it before anything executes, naming the parameter and listing the
notebook's own (read with ``papermill.inspect_notebook``).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

from labkit.common.errors import ParameterError, did_you_mean, show


def declared_parameters(notebook: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The parameters a notebook's ``parameters`` cell declares: name -> papermill's record
    (``default``, ``help``, ``inferred_type_name``)."""
    import logging

    import papermill

    # papermill logs "Unable to parse line" for lines it cannot read; the check below
    # (every assignment found) is what tells the user, so its warnings are not repeated.
    log = logging.getLogger("papermill.translators")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return dict(papermill.inspect_notebook(str(notebook)))
    finally:
        log.setLevel(level)


def assigned_names(notebook: str | os.PathLike[str]) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (what papermill should find)."""
    import nbformat

    nb = nbformat.read(Path(notebook), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return [
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    return []


def check_parameters(notebook: str | os.PathLike[str], parameters: dict[str, Any]) -> None:
    """Refuse, before anything runs, a parameter that ``notebook`` does not declare."""
    declared = declared_parameters(notebook)
    unknown = [name for name in parameters if name not in declared]
    if unknown:
        listing = ", ".join(f"{n} (default {r.get('default')})" for n, r in declared.items()) or "none"
        raise ParameterError(
            f"parameter {unknown[0]!r}" if len(unknown) == 1 else f"parameters {', '.join(map(repr, unknown))}",
            parameters[unknown[0]],
            f"{did_you_mean(unknown[0], declared)}a parameter of {Path(notebook).name}: {listing}",
        )


def load_yaml_parameters(files: list[str], strings: list[str]) -> dict[str, Any]:
    """Parameters from YAML files (``-f``) and YAML strings (``-y``), later ones winning, as papermill does."""
    import yaml

    out: dict[str, Any] = {}
    sources = [(f"-f {f}", Path(f)) for f in files] + [(f"-y {show(s)}", s) for s in strings]
    for label, source in sources:
        try:
            text = source.read_text() if isinstance(source, Path) else source
            data = yaml.safe_load(text)
        except (OSError, ValueError, RecursionError, yaml.YAMLError) as e:  # ValueError: not UTF-8 text
            raise ParameterError(
                label, str(source), f"readable YAML mapping of parameter names to values ({type(e).__name__}: {e})"
            ) from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ParameterError(label, str(source), "a YAML mapping of parameter names to values")
        out.update(data)
    return out
