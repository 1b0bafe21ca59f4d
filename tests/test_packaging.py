"""environment.yml and pyproject.toml list the same dependencies."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda names that differ from the pip requirement they stand for
CONDA_TO_PIP = {"dask": "dask[distributed]", "distributed": "dask[distributed]"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()


def _conda_deps() -> tuple[set[str], str]:
    text = (ROOT / "environment.yml").read_text()
    names = set()
    deps = text.split("\ndependencies:\n", 1)[1].split("  - pip:", 1)[0]
    for line in deps.splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-\[\]]+)", line)
        if m and m.group(1) not in ("python", "pip"):
            names.add(CONDA_TO_PIP.get(_name(m.group(1)), _name(m.group(1))))
    return names, text


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    conda, text = _conda_deps()
    assert conda == pip, f"only in environment.yml: {conda - pip}; only in pyproject.toml: {pip - conda}"
    gpu = project["optional-dependencies"]["gpu"]
    gpu_line = next(line for line in text.splitlines() if line.lstrip("# ").startswith("gpu:"))
    for req in gpu:
        conda_name = "cupy" if _name(req).startswith("cupy") else _name(req)
        assert conda_name in gpu_line, f"{req} missing from environment.yml's gpu line"
    torch_line = next(line for line in text.splitlines() if line.lstrip("# ").startswith("torch:"))
    for req in project["optional-dependencies"]["torch"]:
        assert req.replace("torch", "pytorch") in torch_line, f"{req} missing from environment.yml's torch line"


def test_the_license_is_an_spdx_expression_so_installs_print_no_deprecation() -> None:
    # A `license = {text = ...}` table makes every install print setuptools' deprecation
    # warning; an SPDX string needs setuptools >= 77 to build.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "BSD-3-Clause"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]
