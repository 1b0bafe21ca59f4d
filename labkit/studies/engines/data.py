"""TPC-H data for the engines study: tpchgen-cli's Parquet, made once per scale factor and kept.

:func:`dataset` runs ``tpchgen-cli parquet`` for the three tables Q1 and Q3 read
(``lineitem``, ``orders``, ``customer``) into a folder of the cache named by the scale factor
and the number of files per table, and reuses that folder when it is complete (a marker file
written last says so; a half-written folder from an interrupted run is made again). Each
table is split into :func:`parts_for` files, so that every engine can read it in parallel.

>>> parts_for(0.1, cores=2), parts_for(10, cores=2)
(4, 80)
>>> default_scale_factors(cores=2, memory=24 * 2**30), default_scale_factors(cores=16, memory=64 * 2**30)
([0.1, 0.2], [0.1, 0.2, 0.5, 1.0, 2.0])
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.common.errors import LabkitError, ParameterError

TABLES = ("lineitem", "orders", "customer")
"""The tables Q1 and Q3 read."""
HINT = "pip install -e '.[spark]' (pyspark 4, duckdb and tpchgen-cli; Spark also needs Java 17 or 21)"
"""How to install what the study needs."""
LADDER = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
"""The scale factors a default run climbs, from 0.1 upwards (1, 2, 5 in each decade)."""
GB_PER_SF = 1.0
"""TPC-H's raw data per unit of scale factor (all eight tables, as text): about 1 GB."""
MARKER = "_complete.json"


def tpchgen() -> str | None:
    """The ``tpchgen-cli`` command: beside this Python (a virtual environment's scripts) or on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "tpchgen-cli"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("tpchgen-cli")


def parts_for(scale_factor: float, cores: int) -> int:
    """Files per table: 8 per unit of scale factor (about 100 MB of lineitem in memory each), and at
    least twice the cores, so that N = 1 … cores workers all get files to read."""
    return max(2 * cores, math.ceil(8 * scale_factor))


def default_scale_factors(cores: int, memory: int) -> list[float]:
    """The scale factors of a run sized to this machine: from 0.1 up the ladder 0.1, 0.2, 0.5, 1, 2, …
    while a scale factor stays at most an eighth of the cores and its raw size (about 1 GB per
    unit) at most a sixteenth of the memory (each engine holds its own copy of what it reads);
    the first two at least."""
    fits = [sf for sf in LADDER if sf <= cores / 8 and sf * GB_PER_SF * 2**30 <= memory / 16]
    return fits if len(fits) >= 2 else list(LADDER[:2])


def default_data_dir() -> Path:
    """``$LABKIT_TPCH_DIR``, else ``~/.cache/labkit/tpch``."""
    return Path(os.environ.get("LABKIT_TPCH_DIR") or Path.home() / ".cache" / "labkit" / "tpch")


@dataclass(frozen=True)
class Dataset:
    """One scale factor's tables on disk: where, how many files each, its size, and how it was obtained."""

    scale_factor: float
    path: Path
    parts: int
    bytes: int
    generated_s: float | None  # None: found in the cache

    def table(self, name: str) -> str:
        """The folder of one table's Parquet files."""
        return str(self.path / name)

    def row(self) -> dict[str, Any]:
        """One row of the study's data table."""
        how = "reused from the cache" if self.generated_s is None else f"made in {self.generated_s:.1f} s"
        return {
            "scale_factor": self.scale_factor,
            "files_per_table": self.parts,
            "parquet_mb": self.bytes / 1e6,
            "data": how,
            "path": str(self.path),
        }


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def dataset(scale_factor: float, data_dir: str | os.PathLike[str] | None, parts: int) -> Dataset:
    """The tables at ``scale_factor`` in ``data_dir`` (None: :func:`default_data_dir`), made with
    tpchgen-cli unless a complete copy with the same files per table is there."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / f"sf{scale_factor:g}-parts{parts}"
    if (folder / MARKER).is_file():
        return Dataset(scale_factor, folder, parts, _size(folder), None)
    command = tpchgen()
    if command is None:
        raise LabkitError(f"the engines study makes its TPC-H data with tpchgen-cli, which is not installed: {HINT}")
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    scratch = root / f".{folder.name}-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    args = [command, "parquet", "-s", f"{scale_factor:g}", f"--tables={','.join(TABLES)}", f"--parts={parts}"]
    start = time.perf_counter()
    done = subprocess.run([*args, "-o", str(scratch), "--quiet"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise LabkitError(f"tpchgen-cli failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    seconds = time.perf_counter() - start
    (scratch / MARKER).write_text(json.dumps({"scale_factor": scale_factor, "parts": parts, "tables": TABLES}))
    try:
        scratch.rename(folder)
    except OSError:  # another process made the same folder meanwhile: keep its copy
        shutil.rmtree(scratch, ignore_errors=True)
        if not (folder / MARKER).is_file():
            raise
    return Dataset(scale_factor, folder, parts, _size(folder), seconds)


def check_data_dir(value: Any) -> None:
    """None or a folder path that exists or can be made (its nearest existing parent a folder)."""
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ParameterError("data_dir", value, "None (~/.cache/labkit/tpch) or a folder path")
    path = Path(value)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ParameterError("data_dir", value, "None (~/.cache/labkit/tpch) or a folder that exists or can be made")
