"""The package's layout: public names, small documented modules, layers checked by a tool."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import labkit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "labkit"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Names the design and earlier notes promise, beyond what the notebooks and README use.
PROMISED = [
    "labkit.Lab", "labkit.Sweep", "labkit.workload", "labkit.Work", "labkit.Results", "labkit.ResultStore",
    "labkit.workloads.get", "labkit.workloads.names", "labkit.workloads.register", "labkit.workloads.BaseWorkload",
    "labkit.analysis.fit_usl", "labkit.analysis.fit_amdahl", "labkit.analysis.fit_overhead",
    "labkit.analysis.weak_sizes", "labkit.analysis.strong_scaling", "labkit.analysis.predict_throughput",
    "labkit.plots.fit_figure", "labkit.plots.roofline_figure", "labkit.probes.cached_probes",
    "labkit.probes.run_probes", "labkit.recommend.recommend_workers", "labkit.recommend.recommend_chunk",
    "labkit.roofline.hardware_limits", "labkit.roofline.roofline_fraction", "labkit.analysis.fits.fit_usl",
    "labkit.common.errors.ParameterError",
]  # fmt: skip


def _code_of_notebooks_and_readme() -> list[str]:
    sources = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        sources.append("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))
    readme = (ROOT / "README.md").read_text()
    sources.append("\n".join(re.findall(r"```python\n(.*?)```", readme, re.S)))
    return sources


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def used_names() -> set[str]:
    """Every ``labkit.…`` name the notebooks and the README's code use, as a dotted path."""
    names = set()
    for source in _code_of_notebooks_and_readme():
        tree = ast.parse(source)
        aliases = {"labkit": "labkit"}  # local name -> labkit path
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    names.add(f"{node.module}.{a.name}")
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("labkit"))
        for node in ast.walk(tree):
            dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
            if dotted and dotted.split(".")[0] in aliases:
                head, _, rest = dotted.partition(".")
                path = f"{aliases[head]}.{rest}"
                if path.startswith("labkit"):
                    names.add(path)
    return names


def resolve(path: str) -> object:
    """``labkit.a.b`` as ``import labkit.a`` then attributes, or attributes of ``labkit``."""
    parts = path.split(".")
    obj: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def test_the_scan_finds_what_the_notebooks_use() -> None:
    names = used_names()
    assert {"labkit.Lab", "labkit.Sweep", "labkit.analysis.fit_usl", "labkit.plots.fit_figure"} <= names
    assert "labkit.roofline.hardware_limits" in names and "labkit.recommend.recommend_chunk" in names


# Instance attributes reached through a class name are not module names: none are used now.
@pytest.mark.parametrize("name", sorted(used_names() | set(PROMISED)))
def test_every_public_name_imports(name: str) -> None:
    assert resolve(name) is not None


@pytest.mark.parametrize("module", ["labkit.fits", "labkit.recommend", "labkit.roofline", "labkit.errors"])
def test_no_module_is_aliased_under_another_path(module: str) -> None:
    """Names moved in 0.x are said in the README, not kept alive through ``sys.modules``."""
    code = f"import {module}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


def _public_callables() -> list[tuple[str, object]]:
    import pkgutil

    found = []
    for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            found.append((f"{info.name}.{name}", getattr(module, name)))
    return found


def test_no_function_shadows_a_module() -> None:
    """``labkit.analysis.scaling`` was once a function hiding the module of the same name."""
    import pkgutil

    modules = {info.name for info in pkgutil.walk_packages(labkit.__path__, "labkit.")}
    shadowing = [
        path
        for path, obj in _public_callables()
        if path in modules and callable(obj) and not hasattr(obj, "__path__") and type(obj).__name__ == "function"
    ]
    assert not shadowing, shadowing


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_modules_are_small_and_say_what_they_are_for(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{path.name} is over 400 lines: split it"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and len(doc.splitlines()[0].split()) >= 3, (
        f"{path} needs a docstring whose first line says what it is for"
    )


def _code_lines(lines: list[str], node: ast.AST) -> int:
    """Lines of code of a function: not blank, not a comment alone, not its docstring."""
    body = node.body
    doc = range(0)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            doc = range(body[0].lineno, body[0].end_lineno + 1)
    kept = [i for i in range(node.lineno, node.end_lineno + 1) if i not in doc]
    return sum(1 for i in kept if lines[i - 1].strip() and not lines[i - 1].strip().startswith("#"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_functions_are_short(path: Path) -> None:
    text = path.read_text()
    lines = text.splitlines()
    long = [
        f"{node.name} (line {node.lineno}): {n} lines of code"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (n := _code_lines(lines, node)) > 60
    ]
    assert not long, f"{path.name}: functions over 60 lines of code, cut them along their seams: {long}"


def test_the_function_size_check_can_fail() -> None:
    long = "def f():\n" + "".join(f"    x{i} = {i}\n" for i in range(61))
    node = ast.parse(long).body[0]
    assert _code_lines(long.splitlines(), node) == 62


STUDIES = sorted(p.name for p in (PACKAGE / "studies").iterdir() if (p / "__init__.py").exists())


def test_every_study_is_a_folder_with_a_public_init() -> None:
    assert {"autoscale", "recovery", "search", "training", "pipeline", "federated", "optimize"} <= set(STUDIES)
    assert {"variety", "storage", "stream", "compression", "memory"} <= set(STUDIES)
    for study in STUDIES:
        module = importlib.import_module(f"labkit.studies.{study}")
        assert module.__all__, f"labkit.studies.{study} exports nothing"
        assert all(hasattr(module, n) for n in module.__all__)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_core_imports_no_study() -> None:
    """Not even lazily, inside a function (import-linter sees those too; this says which file)."""
    core = [p for p in PACKAGE.rglob("*.py") if "studies" not in p.relative_to(PACKAGE).parts]
    leaks = [str(p.relative_to(ROOT)) for p in core if any(m.startswith("labkit.studies") for m in _imports(p))]
    assert not leaks, leaks


def test_notebooks_import_only_labkit_and_its_studies() -> None:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
                assert node.module in ("labkit", "labkit.studies"), f"{path.name}: from {node.module} import …"
            elif isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.startswith("labkit") and a.name != "labkit"]
                assert not bad, f"{path.name}: import {bad}"


def test_built_in_workloads_come_from_the_entry_point_table() -> None:
    """labkit's own workloads register as a plugin's do: ``names()`` reads one table."""
    from importlib.metadata import entry_points

    from labkit import workloads

    table = {ep.name for ep in entry_points(group=workloads.ENTRY_POINT_GROUP) if ep.value.startswith("labkit.")}
    assert {"synthetic", "matmul", "fedavg", "optuna-search", "zarr-codecs"} <= table
    assert table <= set(workloads.names())
    for path in PACKAGE.rglob("*.py"):
        assert not re.search(r"^register\(", path.read_text(), re.M), f"{path} registers at import time"


def test_study_independence_is_checked(tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "labkit" / "studies" / "recovery" / "analysis.py"
    target.write_text(target.read_text() + "\nfrom labkit.studies.federated import analysis as _other  # noqa\n")
    done = _lint_imports(copy)
    assert done.returncode != 0 and "studies are independent of each other BROKEN" in done.stdout


def test_every_part_is_a_folder() -> None:
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {
        "common",
        "store",
        "cluster",
        "workloads",
        "measure",
        "probes",
        "analysis",
        "plots",
        "experiment",
        "report",
        "studies",
    } <= parts
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py", "live.py"], loose


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, timeout=300, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_the_layers_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("common/format.py", "from labkit.cli import main", "labkit's layers"),  # a bottom layer reaching up
        ("store/schema.py", "from labkit.cluster import Lab", "labkit's layers"),
        ("analysis/frames.py", "from labkit.analysis import recommend", "no import cycles"),  # a cycle within a part
    ],
)
def test_the_contract_fails_when_an_import_points_up(tmp_path: Path, module: str, line: str, broken: str) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(PACKAGE, copy / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "labkit" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = _lint_imports(copy)
    assert done.returncode != 0, done.stdout[-2000:]
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout


def test_import_labkit_stays_light() -> None:
    code = "import sys, labkit; print(sorted(m for m in ('matplotlib', 'ipywidgets', 'papermill') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert labkit.__all__ and all(hasattr(labkit, n) for n in labkit.__all__)


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_import(path: Path) -> None:
    """A benchmark whose imports went stale fails here, not on the day someone runs it."""
    code = f"import importlib.util as u; s = u.spec_from_file_location('bench', {str(path)!r}); s.loader.exec_module(u.module_from_spec(s))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
