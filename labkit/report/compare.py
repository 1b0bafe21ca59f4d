"""``labkit compare A B``: two sets of trials matched by point, changes flagged only beyond run-to-run noise.

A and B each name trials as ``STORE[::EXPERIMENT[::RUN_ID]]``: a store (``results/a.db``),
one experiment (``results/a.db::quickstart``) or one run (``results/a.db::quickstart::3fa2c1d9e0b1``;
``results/a.db::::3fa2c1d9e0b1``: that run, whatever its experiment). The statistics are
:mod:`labkit.analysis.compare`'s; this module reads the stores, says whether A and B ran on
the same setup (their fingerprints; :mod:`.compare_sides`) and, where not, shows both stores' hardware probes side
by side; it prints a table and writes a self-contained HTML page (PNG data URIs, no script), by default
``compare.html`` in the folder of A's store (``results/compare.html`` for ``results/a.db``).
"""

from __future__ import annotations

import argparse
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.analysis.compare import ALPHA, MARGIN, NO_DIRECTION, Comparison, check_options, compare_trials
from labkit.common.errors import ParameterError
from labkit.store import resolve_store_path
from labkit.store.schema import check_path_text

from .compare_sides import NOT_MEASURED, Side, open_side, parse_spec, setup_label, setup_rows

__all__ = [
    "FAIL_ON",
    "CompareReport",
    "Side",
    "add_compare_parser",
    "check_fail_on",
    "compare",
    "compare_command",
    "default_page",
    "exit_status",
    "format_report",
    "parse_spec",
    "render_page",
    "run_compare",
    "setup_label",
    "setup_rows",
    "table_frame",
    "write_page",
]

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PAGE = "compare.html"  # written in the folder of A's store
FAIL_ON = {
    "slower": "exit 1 when a point is flagged slower (the default)",
    "any": "exit 1 when a point is flagged slower or faster",
    "none": "never exit 1",
}
ANOTHER_SETUP = "B ran on another setup than A: a change in time may come from the setup, not a regression."


@dataclass
class CompareReport:
    """A comparison with what it compared: both sides, the setup label, the statistics."""

    a: Side
    b: Side
    comparison: Comparison
    setup: str
    same_setup: bool


def compare(
    a: str, b: str, *, ignore: list[str] | tuple[str, ...] = (), alpha: float = ALPHA, margin: float = MARGIN
) -> CompareReport:
    """Compare the trials ``b`` names against those ``a`` names (B over A).

    Parameters
    ----------
    a, b : str
        ``STORE[::EXPERIMENT[::RUN_ID]]`` (see the module's docstring).
    ignore, alpha, margin
        As for :func:`labkit.analysis.compare.compare_trials`.

    Returns
    -------
    CompareReport
    """
    check_options(alpha, margin)
    side_a, side_b = open_side(a, "A"), open_side(b, "B")
    if (side_a.store, side_a.experiment, side_a.run_id) == (side_b.store, side_b.experiment, side_b.run_id):
        raise ParameterError("B", b, "another set of trials than A (another store, experiment or run)")
    comparison = compare_trials(side_a.trials, side_b.trials, ignore=list(ignore), alpha=alpha, margin=margin)
    label = setup_label(side_a, side_b)
    return CompareReport(side_a, side_b, comparison, label, label.startswith("same setup"))


def _ratio(r: pd.Series) -> str:
    return f"{r['ratio']:.3f} " + ("(no interval)" if r["lo"] != r["lo"] else f"({r['lo']:.3f}–{r['hi']:.3f})")


def _caveat(row: pd.Series) -> str:
    """Which side's trials ran under outside load (left out), or that the load was not measured."""
    if row["verdict"] == NO_DIRECTION:
        return str(row["note"])
    parts = []
    for side, k, words in (("A", row["loaded_a"], row.get("load_a")), ("B", row["loaded_b"], row.get("load_b"))):
        if k is None or k != k:
            parts.append(f"{side}: load {NOT_MEASURED}")
        elif k:
            parts.append(f"{side}: {int(k)} trials ran under outside load, left out")
        elif isinstance(words, str) and NOT_MEASURED in words:
            parts.append(f"{side}: load {words}")
    return "; ".join(parts)


def _verdict_cell(row: pd.Series) -> str:
    """The verdict as the table shows it: a point that claims no direction says why, there."""
    return str(row["note"]) if row["verdict"] == NO_DIRECTION else str(row["verdict"])


def _p_cell(p: float, p_adj: float) -> str:
    if p != p:
        return "not tested"
    return f"{p_adj:.3g}" if p_adj == p_adj else f"{p:.3g} (not corrected: cannot be flagged)"


def table_frame(report: CompareReport) -> pd.DataFrame:
    """The printed table: point, runs, medians, ratio (interval), adjusted p, verdict (a point that
    claims no direction says why), outside load, setup, caveat."""
    import pandas as pd

    pts = report.comparison.points
    confidence = pts["confidence"].iloc[0]
    level = "no interval" if confidence != confidence else f"{confidence:.2%} interval"
    same = [
        "not recorded" if fa is None or fb is None else "same" if fa == fb else "differs"
        for fa, fb in zip(pts["fingerprints_a"], pts["fingerprints_b"])
    ]
    return pd.DataFrame(
        {
            "point": pts["label"],
            "n A": pts["n_a"],
            "n B": pts["n_b"],
            "median A (s)": [f"{v:.4g}" for v in pts["median_a"]],
            "median B (s)": [f"{v:.4g}" for v in pts["median_b"]],
            f"B/A ({level})": [_ratio(r) for _, r in pts.iterrows()],
            "p (Holm)": [_p_cell(p, q) for p, q in zip(pts["p"], pts["p_adj"])],
            "verdict": [_verdict_cell(r) for _, r in pts.iterrows()],
            "outside load (A; B)": [f"{a}; {b}" for a, b in zip(pts["load_a"], pts["load_b"])],
            "setup": same,
            "caveat": [_caveat(r) for _, r in pts.iterrows()],
        }
    ).reset_index(drop=True)


def _describe(side: Side) -> str:
    what = side.experiment or "every experiment"
    runs = f"run {side.run_id}" if side.run_id else f"{len(side.runs)} run{'s' if len(side.runs) != 1 else ''}"
    commit = f", git {', '.join(c[:12] for c in side.git_commits)}" if side.git_commits else ""
    return f"{side.name}: {side.store} ({what}, {runs}{commit})"


def format_report(report: CompareReport) -> str:
    """The comparison as text: both sides, the setup, the table, the summary and the notes."""
    table = table_frame(report)
    lines = [_describe(report.a), _describe(report.b), f"setup: {report.setup}", ""]
    lines += [table.drop(columns=["caveat"]).to_string(index=False), "", report.comparison.summary()]
    for _, r in report.comparison.points.iterrows():
        note = "; ".join(dict.fromkeys(t for t in (r["note"], _caveat(r)) if t))
        if note:
            lines.append(f"  {r['label']}: {note}")
    if not report.same_setup:
        lines.append(f"{ANOTHER_SETUP} The page shows both setups and probes side by side.")
    return "\n".join(lines)


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}.slower{color:#b00}.faster{color:#070}.note{color:#555}section{margin:1.5em 0}
.banner{padding:.6em 1em;border-left:5px solid #c80;background:#fff6e0}.same{border-left-color:#7a7}img{max-width:100%}"""


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, escape=True, na_rep=NOT_MEASURED)


def _probes_html(a: Side, b: Side) -> str:
    import pandas as pd

    frames = [s.probe.set_index(["location", "metric"])["value"].rename(s.name) for s in (a, b) if s.probe is not None]
    table = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=pd.MultiIndex.from_tuples([("-", "-")]))
    for side in (a, b):
        table[side.name] = table.get(side.name, NOT_MEASURED)
    table = table[["A", "B"]].fillna(NOT_MEASURED).reset_index()
    notes = "".join(f"<li>{s.name}: {html.escape(s.probe_note)}</li>" for s in (a, b))
    return f"<h2>Hardware probes, side by side</h2><ul class='note'>{notes}</ul>{_html_table(table)}"


def render_page(report: CompareReport) -> str:
    """The whole comparison as one self-contained HTML page."""
    import pandas as pd

    from labkit.plots.compare import figure_uri, point_figure, ratios_figure

    c, e = report.comparison, html.escape
    parts = [
        f"<h1>labkit compare: {e(report.a.spec)} against {e(report.b.spec)}</h1>",
        f"<p>{e(_describe(report.a))}<br>{e(_describe(report.b))}</p>",
        f"<p class='banner{' same' if report.same_setup else ''}'><b>{e(report.setup)}</b></p>",
        f"<p>{e(c.summary())}</p>",
    ]
    if not report.same_setup:
        parts.append(f"<p class='note'>{e(ANOTHER_SETUP)} The setups and probes are below.</p>")
        rows = [(*r, "differs" if r[2] != r[3] else "") for r in setup_rows(report.a.parts, report.b.parts)]
        setup = pd.DataFrame(rows, columns=["part of the setup", "", "A", "B", "A and B"])
        parts += ["<h2>Setups</h2>", _html_table(setup), _probes_html(report.a, report.b)]
    parts += ["<h2>Points</h2>", _html_table(table_frame(report))]
    title = "median time B / median time A"
    parts.append(
        f"<img alt='ratios of every point' src='{figure_uri(ratios_figure(c.points, margin=c.margin, title=title))}'>"
    )
    for key, row in c.points.iterrows():
        a, b = c.samples[key]
        fig = point_figure(a, b, row, margin=c.margin, title=str(row["label"]))
        notes = "; ".join(dict.fromkeys(t for t in (row["note"], _caveat(row)) if t))
        verdict = _verdict_cell(row)
        parts.append(
            f"<section><h3>{e(str(row['label']))}: <span class='{e(str(row['verdict']))}'>{e(verdict)}"
            f"</span></h3><p class='note'>{e(notes)}</p><img alt='{e(str(row['label']))}' src='{figure_uri(fig)}'></section>"
        )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>labkit compare</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>"
    )


def check_page(path: str | Path) -> Path:
    """Refuse a page path that is a folder, or under a file."""
    out = Path(path)
    if out.is_dir() or any(p.exists() and not p.is_dir() for p in out.parents):
        raise ParameterError("html", str(path), "the path of an .html file, in a folder (or one that can be made)")
    return out


def default_page(store: str | Path) -> Path:
    """The page's path without ``--html``: :data:`DEFAULT_PAGE` in the folder of ``store``
    (A's store; a relative one is taken from the project's root, as every store path is)."""
    return resolve_store_path(check_path_text(store, "A")).parent / DEFAULT_PAGE


def write_page(report: CompareReport, path: str | Path | None = None) -> Path:
    """Write :func:`render_page` to ``path`` (its folder is created; default: :func:`default_page`
    of A's store); return the path."""
    out = check_page(default_page(report.a.store) if path is None else path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(report), encoding="utf-8")
    return out


def add_compare_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``compare`` to a ``labkit`` command's subparsers (its ``func`` takes the parsed args)."""
    p = subparsers.add_parser("compare", help="compare two sets of trials point by point; flag changes beyond noise")
    _arguments(p)
    p.set_defaults(func=run_compare)
    return p


def _arguments(p: argparse.ArgumentParser) -> None:
    spec = "STORE[::EXPERIMENT[::RUN_ID]], e.g. results/labkit.db::quickstart"
    p.add_argument("a", metavar="A", help=f"the trials to compare against: {spec}")
    p.add_argument("b", metavar="B", help="the trials compared, in the same form")
    ignore = "leave parameter NAME out of the match (e.g. work_s); repeatable"
    p.add_argument("--ignore", action="append", default=[], metavar="NAME", help=ignore)
    p.add_argument("--alpha", type=float, default=ALPHA, help=f"false-alarm rate over all points (default {ALPHA})")
    margin = f"changes within ±margin are never flagged (default {MARGIN}: ±5%%)"
    p.add_argument("--margin", type=float, default=MARGIN, help=margin)
    p.add_argument(
        "--html", default=None, help=f"the page to write (default: {DEFAULT_PAGE} in the folder of A's store)"
    )
    fail = "; ".join(f"{k}: {v}" for k, v in FAIL_ON.items())
    p.add_argument("--fail-on", default="slower", metavar="{slower,any,none}", help=f"the exit status, for CI: {fail}")


def check_fail_on(value: Any) -> str:
    """Refuse a ``--fail-on`` other than ``slower``, ``any`` or ``none``."""
    if value not in FAIL_ON:
        allowed = "; ".join(f"{k} ({v})" for k, v in FAIL_ON.items())
        raise ParameterError("--fail-on", value, allowed)
    return str(value)


def exit_status(comparison: Comparison, fail_on: str = "slower") -> int:
    """1 when ``comparison`` flags what ``fail_on`` fails on (``slower``; ``any``: slower or
    faster; ``none``: nothing), else 0. A point that claims no direction is never flagged."""
    if check_fail_on(fail_on) == "none":
        return 0
    return 1 if comparison.flagged(fail_on) else 0


def run_compare(args: argparse.Namespace) -> int:
    """Compare, print the table, write the page; the exit status of ``--fail-on`` (1: a flagged
    change it fails on, 0 otherwise; a ParameterError on bad input, before any work)."""
    fail_on = check_fail_on(getattr(args, "fail_on", "slower"))
    page = check_page(default_page(parse_spec(args.a, "A")[0]) if args.html is None else args.html)
    report = compare(args.a, args.b, ignore=args.ignore, alpha=args.alpha, margin=args.margin)
    print(format_report(report))
    print(f"page: {write_page(report, page)}")
    status = exit_status(report.comparison, fail_on)
    if status:
        what = "slower" if fail_on == "slower" else "slower or faster"
        print(f"exit 1: {report.comparison.flagged(fail_on)} point(s) flagged {what} (--fail-on {fail_on})")
    return status


def compare_command(argv: list[str]) -> int:
    """``labkit compare`` on ``argv`` (the words after ``compare``); its exit code (see
    :func:`run_compare`). Bad input raises
    :class:`~labkit.common.errors.ParameterError` before any work; a usage error exits 2."""
    parser = argparse.ArgumentParser(prog="labkit compare", description=__doc__.splitlines()[0])
    _arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    return run_compare(args)
