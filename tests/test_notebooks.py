"""Every notebook is committed thin: no outputs, a parameters cell first, the python3 kernel,
every parameter explained, and no logic a test cannot reach (it lives in labkit)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name == "00_quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_thin(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "a title first"
    assert not any(c.outputs or c.execution_count for c in code), "commit notebooks without outputs"
    assert nb.metadata["kernelspec"]["name"] == "python3"


# Loops, functions, comprehensions and error handling belong in labkit, where tests reach them.
LOGIC = (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
LOGIC += (ast.comprehension, ast.Try, ast.With)


def _guard(node: ast.AST) -> bool:
    """An ``if``/``... if ... else ...`` whose test is one name: a switch on a flag labkit computed
    (e.g. ``torch_ok``), the one kind of branch a notebook may keep."""
    return isinstance(node, (ast.If, ast.IfExp)) and isinstance(node.test, ast.Name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_no_logic_and_explains_its_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        nodes = list(ast.walk(ast.parse(cell.source)))
        assert not [n for n in nodes if isinstance(n, LOGIC)], cell.source
        assert all(_guard(n) for n in nodes if isinstance(n, (ast.If, ast.IfExp))), cell.source
    declared = papermill.inspect_notebook(str(path))
    assert declared and all(p["help"] for p in declared.values()), "every parameter says what it is, in a comment"
    assert "store" in declared, "a store parameter, so a run can keep its trials elsewhere"
    assert "lab.close()" in code[-1].source, "the last cell closes the cluster"
