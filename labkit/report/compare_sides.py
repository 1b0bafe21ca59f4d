"""The two sides of ``labkit compare``: which trials each names, what setup they ran on, and its hardware probe.

:func:`open_side` reads ``STORE[::EXPERIMENT[::RUN_ID]]`` into a :class:`Side` (a
ParameterError names the side when the store, experiment or run does not exist);
:func:`setup_label` says whether two sides ran on the same setup and, where not, what
differs. :mod:`labkit.report.compare` builds the comparison on them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError
from labkit.common.format import format_probe_value
from labkit.experiment.provenance import MACHINE_LABELS, SHAPE_LABELS, setup_value
from labkit.store import ResultStore

from .listing import existing_store

if TYPE_CHECKING:
    import pandas as pd

NOT_MEASURED = "not measured"


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


def open_side(spec: str, name: str) -> Side:
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
