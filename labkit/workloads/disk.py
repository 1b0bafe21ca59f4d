"""Work on disk: a scratch folder a workload may write in, and the bytes its files hold."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from labkit.common.errors import ParameterError


def bytes_on_disk(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Bytes and number of the files under ``path`` (their sizes, as ``os.stat`` gives them).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_bytes(b"abc")
    >>> bytes_on_disk(d)
    (3, 1)
    """
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            total += os.stat(os.path.join(root, name)).st_size
            files += 1
    return total, files


def check_work_path(path: Any) -> None:
    """A ParameterError unless ``path`` is ``""`` (a temporary folder) or a folder this machine
    can write in, existing or not: it is tried by making and removing an empty folder in it,
    or in its nearest existing parent, so a read-only or pseudo file system (``/proc``) is
    refused before any cluster work, not in ``setup`` on the cluster.

    >>> check_work_path("")
    >>> check_work_path("/proc/labkit")
    Traceback (most recent call last):
    ...
    labkit.common.errors.ParameterError: path='/proc/labkit' is not allowed: ...
    """
    if path == "":
        return
    allowed = "'' (a temporary folder) or a folder that exists or can be made, and can be written in"
    target = Path(path)
    existing = next((p for p in (target, *target.parents) if p.exists()), None)
    try:
        if existing is None or not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a folder")
        os.rmdir(tempfile.mkdtemp(prefix=".labkit-check-", dir=existing))
    except OSError as e:
        raise ParameterError("path", path, f"{allowed} ({e.strerror or e})") from None


def work_folder(path: str, prefix: str) -> Path:
    """A new empty folder for one workload's files: under ``path`` if given, else a temp one."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=path or None))
