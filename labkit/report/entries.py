"""What one executed notebook says of itself, for the index: title, status, failing cell,
parameters, start and duration, and a thumbnail of its main figure. Never raises for a bad file."""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labkit.common.errors import one_line

THUMBNAIL_SIZE = (360, 240)
#: Tag of the cell whose last PNG output is the notebook's main figure.
MAIN_FIGURE_TAG = "main-figure"


@dataclass
class IndexEntry:
    """One row of the index: what an executed notebook says about its run."""

    name: str  # the .ipynb's file name
    status: str  # passed | failed | unfinished | unreadable
    detail: str | None = None  # the failing cell, or why the file cannot be read
    title: str | None = None
    started: str | None = None  # ISO time papermill started, with its zone
    duration_s: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    labkit: dict[str, Any] | None = None  # the report header's data (ReportSummary.to_metadata)
    thumbnail: str | None = None  # base64 PNG
    figure_note: str | None = None  # why there is no thumbnail
    html: str | None = None  # file name of the HTML report beside it, if there is one


def _text(value: Any) -> str:
    """A notebook's multiline string, stored either whole or as a list of lines."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tags(cell: dict[str, Any]) -> list[str]:
    tags = _dict(cell.get("metadata")).get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _title(cells: list[dict[str, Any]]) -> str | None:
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in _text(cell.get("source")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip() or None
    return None


def _failure(cells: list[dict[str, Any]]) -> str | None:
    """The first failing cell as papermill finds it: an error output (``SystemExit`` 0 aside),
    or a cell it marked with an exception."""
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        count = cell.get("execution_count")
        where = f"In [{count if isinstance(count, int) else ' '}]"
        first = next((ln.strip() for ln in _text(cell.get("source")).splitlines() if ln.strip()), "")
        code = f" `{first[:120]}{'…' if len(first) > 120 else ''}`" if first else ""
        for out in cell.get("outputs") or []:
            if not isinstance(out, dict) or out.get("output_type") != "error":
                continue
            ename, evalue = str(out.get("ename", "")), one_line(str(out.get("evalue", "")))
            if ename == "SystemExit" and evalue in ("", "0"):
                continue
            evalue = f"{evalue[:300]}{'…' if len(evalue) > 300 else ''}"
            return f"{where}{code} raised {ename}" + (f": {evalue}" if evalue else "")
        if _dict(_dict(cell.get("metadata")).get("papermill")).get("exception") is True:
            return f"{where}{code} stopped the run (no error output: a timeout or a dead kernel)"
    return None


def _main_figure(cells: list[dict[str, Any]]) -> str | None:
    """The base64 PNG of the main figure: the last PNG of the cell tagged ``main-figure``,
    else the last PNG output of the notebook."""
    pngs: list[tuple[bool, str]] = []
    for cell in cells:
        tagged = MAIN_FIGURE_TAG in _tags(cell)
        for out in cell.get("outputs") or [] if cell.get("cell_type") == "code" else []:
            png = _text(_dict(_dict(out).get("data")).get("image/png"))
            if png:
                pngs.append((tagged, png))
    main = [p for tagged, p in pngs if tagged]
    return (main or [p for _, p in pngs] or [None])[-1]


def _thumbnail(png: str) -> tuple[str | None, str | None]:
    """A PNG (base64) made at most :data:`THUMBNAIL_SIZE`, and a note when it cannot be."""
    try:
        raw = base64.b64decode("".join(png.split()), validate=True)
    except (binascii.Error, ValueError):
        return None, "its figure is not valid base64"
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib; without it the figure goes in at full size
        return base64.b64encode(raw).decode("ascii"), None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.thumbnail(THUMBNAIL_SIZE)
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=True)
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a damaged image
        return None, f"its figure cannot be decoded ({type(e).__name__})"
    return base64.b64encode(buf.getvalue()).decode("ascii"), None


def read_entry(path: Path) -> IndexEntry | None:
    """What the index shows of the notebook at ``path``: None when papermill did not execute
    it, an ``unreadable`` entry (with the reason) when it cannot be read. Never raises for a
    bad file."""
    html_name = None
    try:
        html_name = path.with_suffix(".html").name if path.with_suffix(".html").is_file() else None
        return _entry(path.name, json.loads(path.read_text(encoding="utf-8")), html_name)
    except json.JSONDecodeError as e:
        why = f"not complete JSON (half-written or damaged): {e}"
    except Exception as e:  # noqa: BLE001 - a file of any shape is listed with what is wrong, never a traceback
        why = f"{type(e).__name__}: {one_line(str(e))[:200]}"
    return IndexEntry(path.name, "unreadable", why, html=html_name)


def _entry(name: str, nb: Any, html_name: str | None) -> IndexEntry | None:
    meta = _dict(nb.get("metadata")) if isinstance(nb, dict) else {}
    pm = meta.get("papermill")
    if isinstance(nb, dict) and not isinstance(pm, dict):
        return None
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        return IndexEntry(name, "unreadable", "not a Jupyter notebook of format 4 with a list of cells", html=html_name)
    cells = [c for c in nb["cells"] if isinstance(c, dict)]
    entry = IndexEntry(name, "passed", title=_title(cells), html=html_name)
    entry.parameters = _dict(pm.get("parameters"))
    entry.labkit = meta.get("labkit") if isinstance(meta.get("labkit"), dict) else None
    entry.started = pm.get("start_time") if isinstance(pm.get("start_time"), str) else None
    duration = pm.get("duration")
    entry.duration_s = (
        float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None
    )
    entry.detail = _failure(cells)
    if entry.detail is not None or pm.get("exception") is True:
        entry.status = "failed"
        entry.detail = entry.detail or "papermill marked the run as failed without naming a cell"
    elif not pm.get("end_time"):
        entry.status = "unfinished"
        entry.detail = "no end time: still running, or stopped before the end"
    png = _main_figure(cells)
    entry.thumbnail, entry.figure_note = _thumbnail(png) if png else (None, "no figure")
    return entry


def _latest_good_first(e: IndexEntry) -> tuple:
    return (e.status == "unreadable", e.status != "passed", _epoch(e.started) * -1, e.name)


def _epoch(iso: str | None) -> float:
    try:
        when = datetime.fromisoformat(iso) if iso else None
    except ValueError:
        when = None
    if when is None:
        return float("-inf")
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _when(entry: IndexEntry) -> str:
    t = _epoch(entry.started)
    if t == float("-inf"):
        return "not recorded"
    text = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return text + (f", ran {entry.duration_s:.0f} s" if entry.duration_s is not None else "")
