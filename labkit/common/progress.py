"""Progress told to the process that runs this one: ``labkit run`` follows a kernel's sweeps.

``labkit run`` names a file in :data:`ENV` for the kernel papermill starts (a kernel
inherits its environment); each sweep's view appends one JSON line per event to it (a
trial done, trials reused, a note, an alert) and ``labkit run`` reads the new lines twice a
second and shows them on its terminal. Where :data:`ENV` is not set, :func:`emit` does
nothing: a sweep in JupyterLab or a script writes no file.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "progress.jsonl")
>>> os.environ[ENV] = path
>>> emit("trials", title="quickstart", done=3, total=10)
>>> follower = Follower(path)
>>> follower.read()
[{'kind': 'trials', 'title': 'quickstart', 'done': 3, 'total': 10}]
>>> follower.read()
[]
>>> del os.environ[ENV]
"""

from __future__ import annotations

import json
import os
from typing import Any

#: The environment variable naming the file a sweep's progress goes to.
ENV = "LABKIT_PROGRESS"


def emit(kind: str, **fields: Any) -> None:
    """Append one event to the file :data:`ENV` names, if any (a failure to write is ignored:
    progress must never stop a sweep)."""
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")
    except OSError:
        pass


class Follower:
    """Reads the events appended to a progress file since the last read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path, self.offset, self.partial = os.fspath(path), 0, ""

    def read(self) -> list[dict[str, Any]]:
        """The complete events written since the last call (a line still being written waits)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self.offset)
                text = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events
