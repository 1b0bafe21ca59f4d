"""What an executed notebook printed (the text of its code cells' stream outputs, in order), and
whether a machine busy with other work left any of its trials able to carry a claim."""

from __future__ import annotations

import os

import nbformat


def printed_text(notebook: str | os.PathLike[str]) -> str:
    """The stdout/stderr text the code cells of an executed notebook wrote, joined by newlines."""
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )


def all_loaded(frame) -> bool:
    """Whether every ok trial ran under outside load: on a busy machine no trial may carry a
    claim (labkit.analysis.trust), and an answer says so instead of estimating."""
    ok = frame[frame["status"].eq("ok")] if "status" in frame else frame
    return "under_load" in ok and len(ok) > 0 and ok["under_load"].eq(True).all()


NOTHING_LEFT = "No trial is left to claim from: left out"
