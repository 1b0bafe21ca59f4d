"""What an executed notebook printed: the text of its code cells' stream outputs, in order."""

from __future__ import annotations

import os

import nbformat


def printed_text(notebook: str | os.PathLike[str]) -> str:
    """The stdout/stderr text the code cells of an executed notebook wrote, joined by newlines."""
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )
