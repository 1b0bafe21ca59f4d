"""An index of reports: one offline HTML page that lists every executed notebook of a folder.

>>> path = write_index("reports")  # doctest: +SKIP
>>> path                           # doctest: +SKIP
PosixPath('reports/index.html')

Each notebook that papermill executed (its metadata has ``papermill``) gets a row: its title
(the first ``# `` heading), when it ran, its parameters, the environment and the trial counts
that ``labkit run`` stored in its metadata, whether it passed or which cell failed, a
thumbnail of its main figure and links to its HTML and its notebook. A file that cannot be
read (half-written, damaged) is listed as unreadable with the reason; a notebook papermill
did not execute is named in a note below the table. The page loads nothing: no script, no
font, no style sheet from elsewhere (its Content-Security-Policy allows only inline styles
and ``data:`` images), and it holds no secret.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from labkit.common.errors import ParameterError
from labkit.store.schema import check_path_text
from labkit.store.secrets import is_secret_name, redact, redact_text, secret_values

from .entries import IndexEntry, _dict, _latest_good_first, _when, read_entry

INDEX_NAME = "index.html"


#: The largest thumbnail, in pixels (width, height); the aspect ratio is kept.
def check_report_dir(folder: Any, name: str = "folder") -> Path:
    """``folder`` if it is an existing folder with at least one executed (or unreadable)
    notebook in it; otherwise a ParameterError naming ``name`` and what is allowed."""
    text = check_path_text(folder, name)
    path = Path(text)
    allowed = "a folder of notebooks executed by papermill (as `labkit run --out DIR` writes them)"
    try:
        if not path.exists():
            raise ParameterError(name, text, f"{allowed}; this path does not exist")
        if not path.is_dir():
            raise ParameterError(name, text, f"{allowed}; this path is not a folder")
        notebooks = [p for p in path.glob("*.ipynb") if p.is_file()]
    except OSError as e:
        raise ParameterError(name, text, f"{allowed} ({e.strerror or e})") from None
    if not notebooks:
        raise ParameterError(name, text, f"{allowed}; it has no .ipynb file")
    if not any(_listed(p) for p in notebooks):
        raise ParameterError(name, text, f"{allowed}; none of its {len(notebooks)} .ipynb files was executed")
    return path


def _listed(path: Path) -> bool:
    """Whether the index lists ``path``: executed by papermill, or unreadable."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        return not isinstance(nb, dict) or isinstance(_dict(nb.get("metadata")).get("papermill"), dict)
    except Exception:  # noqa: BLE001 - unreadable: listed as such
        return True


def collect(folder: Path) -> tuple[list[IndexEntry], list[str]]:
    """The entries of every ``*.ipynb`` in ``folder`` (the latest good run first, then the
    others newest first, unreadable files last), and the names of the notebooks papermill did
    not execute."""
    entries, skipped = [], []
    for path in sorted(p for p in folder.glob("*.ipynb") if p.is_file()):
        entry = read_entry(path)
        if entry is None:
            skipped.append(path.name)
        else:
            entries.append(entry)
    entries.sort(key=_latest_good_first)
    return entries, skipped


def history(folder: Path) -> list[IndexEntry]:
    """Every run kept by date in ``folder/history`` (``labkit run`` keeps each one there), the
    latest good run first; names relative to ``folder``."""
    out = []
    for path in sorted(p for p in (folder / "history").glob("*.ipynb") if p.is_file()):
        entry = read_entry(path)
        if entry is not None:
            entry.name = f"history/{entry.name}"
            entry.html = f"history/{entry.html}" if entry.html else None
            out.append(entry)
    return sorted(out, key=_latest_good_first)


def _history_table(folder: Path) -> str:
    runs = history(folder)
    if not runs:
        return ""
    e, secrets = html.escape, secret_values()
    items = "".join(
        f'<tr class="h-{e(r.status)}"><td><code>{e(redact_text(r.name, secrets))}</code></td>'
        f'<td><span class="s-{e(r.status)}">{e(r.status)}</span></td><td>{e(_when(r))}</td><td>'
        + " · ".join(
            f'<a href="{e(quote(p))}">{label}</a>' for p, label in ((r.html, "report"), (r.name, "notebook")) if p
        )
        + "</td></tr>"
        for r in runs
    )
    return (
        f"<h2>History</h2><p>Every run, kept by date ({len(runs)}), the latest good run first.</p>"
        f"<table><thead><tr><th>run</th><th>status</th><th>when</th><th>links</th></tr></thead><tbody>{items}</tbody></table>"
    )


def _environment(env: dict[str, Any]) -> list[str]:
    gpus = env.get("gpus")
    memory = env.get("memory_total")
    machine = ", ".join(
        str(x)
        for x in (
            env.get("hostname"),
            env.get("cpu_model"),
            f"{env['cpu_count']} CPUs" if env.get("cpu_count") else None,
            f"{memory / 2**30:.0f} GiB" if isinstance(memory, (int, float)) and memory > 0 else None,
            f"{len(gpus)} GPU(s)" if isinstance(gpus, list) and gpus else "no GPU" if isinstance(gpus, list) else None,
        )
        if x
    )
    versions = _dict(env.get("versions"))
    software = ", ".join(
        f"{k} {v}"
        for k, v in (("Python", env.get("python")), *((p, versions.get(p)) for p in ("dask", "distributed", "labkit")))
        if v
    )
    commit = env.get("git_commit")
    cluster = _dict(env.get("cluster"))
    n = cluster.get("workers")
    shape = f"{cluster.get('kind')} cluster, {n} worker{'' if n == 1 else 's'}" if cluster.get("kind") else None
    lines = [machine or "machine not recorded", software or "versions not recorded"]
    return [*lines, f"git {str(commit)[:12] if commit else 'commit not recorded'}", *([shape] if shape else [])]


def _trials(meta: dict[str, Any] | None) -> list[str]:
    if meta is None:
        return ["not recorded (run it with `labkit run`)"]
    lines = [f"{meta.get('measured')} measured, {meta.get('reused')} reused"]
    for e in meta.get("experiments") or []:
        if isinstance(e, dict):
            failed = f", {e.get('failed')} not ok" if e.get("failed") else ""
            lines.append(f"{e.get('experiment')}: {e.get('measured')} measured{failed}, {e.get('reused')} reused")
    if not meta.get("experiments"):
        lines.append("no sweep ran in this notebook")
    return lines


def _row(entry: IndexEntry) -> str:
    e = html.escape
    extra = [str(v) for k, v in entry.parameters.items() if is_secret_name(str(k)) and isinstance(v, (str, int, float))]
    secrets = secret_values(extra=extra)

    def t(text: Any) -> str:  # every text shown: redacted, then escaped
        return e(redact_text(str(text), secrets))

    links = [(entry.html, "report"), (entry.name, "notebook")]
    link_html = " · ".join(f'<a href="{e(quote(f))}">{label}</a>' for f, label in links if f)
    title = f"<b>{t(entry.title)}</b><br>" if entry.title else ""
    cell = f"{title}<code>{t(entry.name)}</code><br>{link_html}"
    status = f'<span class="s-{e(entry.status)}">{e(entry.status)}</span>'
    if entry.detail:
        status += f"<br>{t(entry.detail)}"
    if entry.status == "unreadable":
        return f'<tr class="r-unreadable"><td>{cell}</td><td colspan="5">{status}</td></tr>'
    params = redact(entry.parameters, secrets)
    param_html = "".join(f"<li><code>{t(k)} = {t(repr(v))}</code></li>" for k, v in params.items())
    param_html = f"<ul>{param_html}</ul>" if param_html else "none passed: the notebook's defaults"
    meta = redact(entry.labkit, secrets) if entry.labkit else None
    env = _environment(_dict(meta.get("environment"))) if meta else ["not recorded (run it with `labkit run`)"]
    figure = (
        f'<img alt="main figure of {t(entry.name)}" src="data:image/png;base64,{entry.thumbnail}">'
        if entry.thumbnail
        else f"<i>{t(entry.figure_note or 'no figure')}</i>"
    )
    return (
        f'<tr class="r-{e(entry.status)}"><td>{cell}<br><small>{t(_when(entry))}</small></td><td>{status}</td>'
        f"<td>{'<br>'.join(t(x) for x in _trials(meta))}</td><td>{param_html}</td>"
        f"<td>{'<br>'.join(t(x) for x in env)}</td><td>{figure}</td></tr>"
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: 0.5em; text-align: left; vertical-align: top; font-size: 0.9em; }
ul { margin: 0; padding-left: 1.1em; }
img { max-width: 360px; height: auto; border: 1px solid #ddd; }
.s-passed { color: #176f2c; font-weight: bold; }
.s-failed, .s-unreadable { color: #b00020; font-weight: bold; }
.s-unfinished { color: #8a5a00; font-weight: bold; }
.note { color: #555; }
"""


def render_index(entries: list[IndexEntry], skipped: list[str], folder: Path) -> str:
    """The index page of ``entries`` (see :func:`collect`), standalone HTML."""
    secrets = secret_values()
    name = html.escape(redact_text(folder.absolute().name or str(folder), secrets))
    counts = {s: sum(e.status == s for e in entries) for s in ("passed", "failed", "unfinished", "unreadable")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    rows = "".join(_row(e) for e in entries)
    note = ""
    if skipped:
        names = ", ".join(html.escape(redact_text(s, secrets)) for s in skipped)
        note = f'<p class="note">Not listed (not executed by papermill): {names}.</p>'
    written = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Reports in {name}</title><style>{STYLE}</style></head><body>"
        f"<h1>Reports in <code>{name}</code></h1>"
        f"<p>{len(entries)} report{'s' if len(entries) != 1 else ''}: {summary}. Index written {written}.</p>"
        "<table><thead><tr><th>report</th><th>status</th><th>trials</th><th>parameters</th>"
        f"<th>environment</th><th>main figure</th></tr></thead><tbody>{rows}</tbody></table>{note}"
        f"{_history_table(folder)}</body></html>\n"
    )


def write_index(folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/index.html``: every executed notebook in ``folder``, for a reader offline.

    Parameters
    ----------
    folder : path
        A folder of executed notebooks (``labkit run --out``); it must hold at least one
        notebook executed by papermill, or one that cannot be read.

    Returns
    -------
    Path
        The index, replaced whole (never seen half-written by a reader or another run).

    Raises
    ------
    ParameterError
        When ``folder`` is missing, is not a folder, or holds no executed notebook.
    """
    path = check_report_dir(folder)
    entries, skipped = collect(path)
    page = render_index(entries, skipped, path)
    out = path / INDEX_NAME
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".index-", suffix=".html")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
