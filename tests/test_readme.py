"""The README's Python runs as written: each block pasted into a script and run, as a user would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 2 and all("import labkit" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_as_a_script(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"block{index}.py"
    script.write_text(BLOCKS[index])
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README block {index} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert (tmp_path / "results" / "labkit.db").is_file()  # the trials were stored where the README says
