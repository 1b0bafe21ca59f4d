"""What an executed notebook printed (the text of its code cells' stream outputs, in order), and
whether a machine busy with other work left any of its trials able to carry a claim."""

from __future__ import annotations

import os

import nbformat


def printed_text(notebook: str | os.PathLike[str]) -> str:
    """The text the code cells of an executed notebook showed, joined by newlines: what they
    wrote to stdout/stderr, and the plain text of what they displayed as formatted text (a
    conclusion, shown as HTML in Jupyter, carries its text too)."""
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(_text(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/plain", "") if "text/html" in data else ""


def all_loaded(frame) -> bool:
    """Whether every ok trial ran under outside load: on a busy machine no trial may carry a
    claim (labkit.analysis.trust), and an answer says so instead of estimating."""
    ok = frame[frame["status"].eq("ok")] if "status" in frame else frame
    return "under_load" in ok and len(ok) > 0 and ok["under_load"].eq(True).all()


NOTHING_LEFT = "No trial is left to claim from: left out"
