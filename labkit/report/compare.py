"""``labkit compare A B``: two sets of trials matched by point, changes flagged only beyond run-to-run noise.

A and B each name trials as ``STORE[::EXPERIMENT[::RUN_ID]]``: a store (``results/a.db``),
one experiment (``results/a.db::quickstart``) or one run (``results/a.db::quickstart::3fa2c1d9e0b1``;
``results/a.db::::3fa2c1d9e0b1``: that run, whatever its experiment). The statistics are
:mod:`labkit.analysis.compare`'s; this module reads the stores, says whether A and B ran on
the same setup (their fingerprints) and, where not, shows both stores' hardware probes side
by side; it prints a table and writes a self-contained HTML page (PNG data URIs, no script).
"""

from __future__ import annotations

import argparse
import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.analysis.compare import ALPHA, MARGIN, Comparison, check_options, compare_trials
from labkit.common.errors import ParameterError
from labkit.common.format import format_probe_value
from labkit.experiment.provenance import MACHINE_LABELS, SHAPE_LABELS, setup_value
from labkit.store import ResultStore

from .listing import existing_store

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PAGE = "reports/compare.html"
NOT_MEASURED = "not measured"
ANOTHER_SETUP = "B ran on another setup than A: a change in time may come from the setup, not a regression."


@dataclass
class Side:
    """One set of trials: where it comes from, its trials, its setup and its store's probe."""

    name: str
    spec: str
    store: Path
    experiment: str | None
    run_id: str | None
    trials: pd.DataFrame
    runs: list[str]
    parts: dict[str, Any] = field(default_factory=dict)  # fingerprint parts of its most common setup
    fingerprints: tuple[str | None, ...] = ()
    git_commits: tuple[str, ...] = ()
    probe: pd.DataFrame | None = None  # location, metric, value (text); None: none of its environment
    probe_note: str = ""


def parse_spec(text: str, name: str) -> tuple[str, str | None, str | None]:
    """``(store, experiment, run_id)`` of ``STORE[::EXPERIMENT[::RUN_ID]]``.

    >>> parse_spec("results/a.db::quickstart", "A")
    ('results/a.db', 'quickstart', None)
    >>> parse_spec("b.db::::3fa2c1d9e0b1", "B")
    ('b.db', None, '3fa2c1d9e0b1')
    """
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(name, text, "STORE[::EXPERIMENT[::RUN_ID]], e.g. results/labkit.db::quickstart")
    parts = text.split("::")
    if len(parts) > 3 or not parts[0]:
        raise ParameterError(name, text, "STORE[::EXPERIMENT[::RUN_ID]]: a store path, then at most two '::' parts")
    store, experiment, run_id = (parts + [""] * 2)[:3]
    return store, experiment or None, run_id or None


def _open_side(spec: str, name: str) -> Side:
    """Check that ``spec`` names trials that exist, and read them (a ParameterError names ``name``)."""
    path, experiment, run_id = parse_spec(spec, name)
    try:
        store = existing_store(path)
    except ParameterError as e:
        raise ParameterError(name, spec, e.allowed) from None
    with ResultStore(store) as db:
        runs = db.runs_frame()
        if experiment is not None and experiment not in set(runs["experiment"]):
            known = ", ".join(sorted(set(runs["experiment"]))) or "none"
            raise ParameterError(name, spec, f"an experiment of {store}: {known}")
        if run_id is not None:
            mine = runs if experiment is None else runs[runs["experiment"] == experiment]
            if run_id not in set(mine["run_id"]):
                raise ParameterError(name, spec, f"a run of {experiment or store}: {', '.join(mine['run_id'][-8:])}")
        trials = db.trials_frame(experiment, run_id)
        if trials.empty:
            raise ParameterError(name, spec, "a set holding trials (this one has none)")
        ok = trials[trials["status"] == "ok"]
        fps = tuple(ok["fingerprint"].where(ok["fingerprint"].notna(), None)) if "fingerprint" in ok else (None,)
        common = Counter(fps).most_common(1)[0][0] if fps else None
        parts = db.fingerprint_parts([common]).get(common, {}) if common else {}
        run_ids = list(dict.fromkeys(trials["run_id"]))
        envs = [db.run_env(r) for r in run_ids]
    commits = tuple(dict.fromkeys(str(e.get("git_commit")) for e in envs if e.get("git_commit")))
    side = Side(
        name, spec, store, experiment, run_id, trials, run_ids, parts, tuple(sorted(set(fps), key=str)), commits
    )
    side.probe, side.probe_note = _probe(store, envs)
    return side


def _probe(store: Path, envs: list[dict[str, Any]]) -> tuple[pd.DataFrame | None, str]:
    """The latest ``labkit probe`` result the store caches for the environment of these runs."""
    from labkit.cluster.env import fingerprint
    from labkit.probes.records import HardwareProbe

    wanted = {fingerprint(e) for e in envs if e}
    with ResultStore(store) as db:
        rows = db.cache_items("probe:")
    mine = [v for k, v in rows if k.split(":")[1] in wanted]
    if not mine:
        return None, f"no `labkit probe` result for this environment in {store.name}"
    try:
        probe = HardwareProbe.from_dict(mine[-1])
    except ParameterError:
        return None, "the store's probe is in an older format; `labkit probe --refresh` measures again"
    names = {addr: f"worker {i + 1}" for i, addr in enumerate(probe.workers)}
    table = probe.to_frame()
    table["location"] = table["location"].map(lambda loc: names.get(loc, loc))
    table["value"] = [
        format_probe_value(v, u) if v == v else f"{NOT_MEASURED}: {n}"
        for v, u, n in zip(table["value"], table["unit"], table["note"])
    ]
    return table[["location", "metric", "value"]], f"measured {probe.created or 'at an unrecorded time'}"


_LABELS = {"machine": MACHINE_LABELS, "shape": SHAPE_LABELS}
_SECTIONS = {"machine": "machine", "versions": "versions", "shape": "cluster shape", "workload": "workload"}


def setup_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(section, part, A's value, B's value)`` for every part of two fingerprints' parts."""
    rows = []
    for section, title in _SECTIONS.items():
        pa, pb = a.get(section) or {}, b.get(section) or {}
        labels = _LABELS.get(section) or {n: n for n in sorted(set(pa) | set(pb))}
        rows += [(title, label, setup_value(n, pa.get(n)), setup_value(n, pb.get(n))) for n, label in labels.items()]
    return rows


def setup_label(a: Side, b: Side) -> str:
    """``"same setup"``, ``"across machines (...)"`` or ``"across environments (...)"``: what differs."""
    if None in a.fingerprints or None in b.fingerprints or not a.parts or not b.parts:
        return "setup not recorded (trials without a fingerprint): A and B may have run on different machines"
    if set(a.fingerprints) == set(b.fingerprints):
        return "same setup (machine, versions, cluster shape and workload code)"
    differ = [r for r in setup_rows(a.parts, b.parts) if r[2] != r[3]]
    sections = list(dict.fromkeys(r[0] for r in differ))
    what = "; ".join(
        f"{s}: {', '.join(f'{p} {va} in A, {vb} in B' for t, p, va, vb in differ if t == s)}" for s in sections
    )
    what += "".join(f"; {s.name} mixes {len(s.fingerprints)} setups" for s in (a, b) if len(s.fingerprints) > 1)
    return f"across {'machines' if 'machine' in sections else 'environments'} ({what or 'setups differ'})"


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
    side_a, side_b = _open_side(a, "A"), _open_side(b, "B")
    if (side_a.store, side_a.experiment, side_a.run_id) == (side_b.store, side_b.experiment, side_b.run_id):
        raise ParameterError("B", b, "another set of trials than A (another store, experiment or run)")
    comparison = compare_trials(side_a.trials, side_b.trials, ignore=list(ignore), alpha=alpha, margin=margin)
    label = setup_label(side_a, side_b)
    return CompareReport(side_a, side_b, comparison, label, label.startswith("same setup"))


def _ratio(r: pd.Series) -> str:
    return f"{r['ratio']:.3f} " + ("(no interval)" if r["lo"] != r["lo"] else f"({r['lo']:.3f}–{r['hi']:.3f})")


def _caveat(row: pd.Series) -> str:
    """Which side's trials ran under outside load, or that the load was not measured."""
    parts = []
    for side, k, n in (("A", row["loaded_a"], row["n_a"]), ("B", row["loaded_b"], row["n_b"])):
        if k is None or k != k:
            parts.append(f"{side}: load {NOT_MEASURED}")
        elif k:
            parts.append(f"{side}: {int(k)} of {n} trials ran under outside load")
    return "; ".join(parts)


def table_frame(report: CompareReport) -> pd.DataFrame:
    """The printed table: point, runs, medians, ratio (interval), adjusted p, verdict, setup, caveat."""
    import pandas as pd

    pts = report.comparison.points
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
            f"B/A ({pts['confidence'].iloc[0]:.2%} interval)": [_ratio(r) for _, r in pts.iterrows()],
            "p (Holm)": ["not tested" if v != v else f"{v:.3g}" for v in pts["p_adj"]],
            "verdict": pts["verdict"],
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
        note = "; ".join(t for t in (r["note"], _caveat(r)) if t)
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
        notes = "; ".join(t for t in (row["note"], _caveat(row)) if t)
        parts.append(
            f"<section><h3>{e(str(row['label']))}: <span class='{e(str(row['verdict']))}'>{e(str(row['verdict']))}"
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


def write_page(report: CompareReport, path: str | Path = DEFAULT_PAGE) -> Path:
    """Write :func:`render_page` to ``path`` (its folder is created); return the path."""
    out = check_page(path)
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
    p.add_argument("--html", default=DEFAULT_PAGE, help=f"the page to write (default {DEFAULT_PAGE})")


def run_compare(args: argparse.Namespace) -> int:
    """Compare, print the table, write the page; 0 when done (a ParameterError on bad input)."""
    check_page(args.html)
    report = compare(args.a, args.b, ignore=args.ignore, alpha=args.alpha, margin=args.margin)
    print(format_report(report))
    print(f"page: {write_page(report, args.html)}")
    return 0


def compare_command(argv: list[str]) -> int:
    """``labkit compare`` on ``argv`` (the words after ``compare``); its exit code. Bad input raises
    :class:`~labkit.common.errors.ParameterError` before any work; a usage error exits 2."""
    parser = argparse.ArgumentParser(prog="labkit compare", description=__doc__.splitlines()[0])
    _arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    return run_compare(args)
