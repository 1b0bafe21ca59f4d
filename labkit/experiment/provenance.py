"""What a trial measured (its fingerprint), what a resumed sweep reuses, and both in words.

A trial's fingerprint hashes what its timing depends on besides its grid point: the machine
(host, CPU, memory, GPUs), the versions (Python, Dask, NumPy, ...), the cluster's shape
(threads per worker, memory limit per worker, worker processes or threads) and the
workload's code (a hash of its source). The worker count is not in it: every grid point
holds its worker count already, so the trials of one setup share one fingerprint across a
scaling sweep, and ``frame[frame["fingerprint"] == key]`` is one setup's measurements.

>>> then = {"shape": {"threads_per_worker": 1}, "workload": {"code": "ab12"}}
>>> now = {"shape": {"threads_per_worker": 2}, "workload": {"code": "ab12"}}
>>> differences(then, now)
['on another cluster shape (threads per worker 1 then, 2 now)']
>>> reuse_sentence(measured_now=3, reused={"r1": [7, 1795609860.0]})
'7 of 10 trials reused from a run on 2026-11-25 12:31 UTC; 3 measured now.'
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError

if TYPE_CHECKING:
    from labkit.store import ResultStore

REUSE = ("same", "any", "none")
#: The environment variable that sets the default of ``Sweep(reuse=...)`` (``labkit run --fresh`` sets "none").
REUSE_ENV = "LABKIT_REUSE"


def check_reuse(reuse: Any) -> str:
    """``reuse`` checked; None takes :data:`REUSE_ENV`'s value, else "same".

    >>> check_reuse(None), check_reuse("none")
    ('same', 'none')
    """
    name = "reuse"
    if reuse is None:
        name, reuse = REUSE_ENV, os.environ.get(REUSE_ENV) or "same"
    if reuse not in REUSE:
        raise ParameterError(name, reuse, " or ".join(map(repr, REUSE)))
    return str(reuse)


def code_version(workload: Any) -> str:
    """A short hash of a workload's source: its function (short form) or its class.

    Only that source counts, not helpers it calls; where no source can be read (a class
    built at run time) the hash is of its qualified name.
    """
    target = getattr(workload, "fn", None)
    if not callable(target):
        target = workload if inspect.isclass(workload) or inspect.isfunction(workload) else type(workload)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        source = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"
    return hashlib.sha1(source.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Fingerprint:
    """A fingerprint's key (stored on each trial) and the parts it hashes."""

    key: str
    parts: dict[str, Any] = field(compare=False)


class Fingerprinter:
    """The fingerprints of one sweep's trials: its environment and workload code, read
    once; the cluster's shape, given each time it may have changed (after a rescale)."""

    def __init__(self, env: dict[str, Any], workload: Any) -> None:
        from labkit.cluster.env import fingerprint_parts

        self.base = {
            **fingerprint_parts(env),
            "workload": {"name": workload.name, "code": code_version(workload)},
        }

    def of(self, shape: dict[str, Any]) -> Fingerprint:
        parts = {**self.base, "shape": {k: v for k, v in shape.items() if k != "workers"}}
        key = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return Fingerprint(key, parts)


def setup_value(name: str, v: Any) -> str:
    """One part of a fingerprint in words ("not recorded" where it was not)."""
    from dask.utils import format_bytes

    if v is None:
        return "not recorded"
    if name in ("memory_total", "memory_limit") and isinstance(v, (int, float)):
        return format_bytes(int(v)) if v else "no limit"
    if name == "processes" and isinstance(v, bool):
        return "processes" if v else "threads"
    if name == "gpus" and isinstance(v, list):
        return f"{len(v)} GPU{'s' if len(v) != 1 else ''}" if v else "none"
    return str(v)


#: Labels of a fingerprint's machine and cluster-shape parts, as sentences and tables name them.
MACHINE_LABELS = {
    "hostname": "host",
    "cpu_model": "CPU",
    "cpu_count": "CPU count",
    "memory_total": "memory",
    "gpus": "GPUs",
}
SHAPE_LABELS = {
    "threads_per_worker": "threads per worker",
    "memory_limit": "memory limit per worker",
    "processes": "workers as",
}

# section -> (how the trials differ, labels of its parts; None: the part's name is its label)
_SECTIONS: dict[str, tuple[str, dict[str, str] | None]] = {
    "machine": ("on another machine", MACHINE_LABELS),
    "versions": ("with other versions", None),
    "shape": ("on another cluster shape", SHAPE_LABELS),
}


def differences(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """How the setup of stored trials (``then``) differs from this run's (``now``), one
    clause per part that differs."""
    out = []
    for section, (how, labels) in _SECTIONS.items():
        a, b = then.get(section) or {}, now.get(section) or {}
        names = list(labels) if labels else sorted(set(a) | set(b))
        changed = [
            f"{(labels or {}).get(n, n)} {setup_value(n, a.get(n))} then, {setup_value(n, b.get(n))} now"
            for n in names
            if a.get(n) != b.get(n)
        ]
        if changed:
            out.append(f"{how} ({'; '.join(changed)})")
    if (then.get("workload") or {}).get("code") != (now.get("workload") or {}).get("code"):
        out.append("with another version of the workload's code")
    return out


@dataclass
class ReusePlan:
    """What a sweep takes from the store before it runs."""

    done: dict[str, dict[int, float]]  # point -> repeat -> wall_s of the ok trials it reuses
    reused: dict[str, list[Any]]  # run_id -> [trials, run started_at] of those trials
    set_aside: str  # why stored trials of these points are not reused ("" when none are left)

    @property
    def count(self) -> int:
        return sum(n for n, _ in self.reused.values())

    def first_line(self, total: int) -> str:
        """The sweep's first line where the store holds trials of its points: what it reuses, and how not to."""
        if not self.count:
            return self.set_aside
        fresh = "Sweep(..., reuse='none') or `labkit run --fresh` measures them again."
        reused = f"Resuming: {self.count} of {total} trials reused from the store."
        return " ".join(t for t in (reused, fresh, self.set_aside) if t)


def plan_reuse(store: ResultStore, experiment: str, keys: list[str], current: Fingerprint, reuse: str) -> ReusePlan:
    """The stored ok trials a sweep's points may reuse: with ``reuse="same"`` only those
    measured under the ``current`` fingerprint; with ``"any"`` all of them; with ``"none"`` none."""
    wanted = set(keys)
    done: dict[str, dict[int, float]] = {}
    source: dict[tuple[str, int], tuple[str, float | None]] = {}
    other: Counter[str | None] = Counter()
    stored = [t for t in store.ok_trials(experiment) if t[0] in wanted]
    if reuse == "none":
        n = len(stored)
        kept = f"{n} stored trial{'s' if n != 1 else ''} of these points {'were' if n != 1 else 'was'} not reused"
        return ReusePlan({}, {}, f"{kept} (reuse='none'): every trial is measured again." if n else "")
    for point, repeat, wall, fp, run_id, started in stored:
        if reuse == "any" or fp == current.key:
            done.setdefault(point, {})[repeat] = wall
            source[(point, repeat)] = (run_id, started)
        else:
            other[fp] += 1
    reused: dict[str, list[Any]] = {}
    for run_id, started in source.values():
        reused.setdefault(run_id, [0, started])[0] += 1
    return ReusePlan(done, reused, set_aside_sentence(store, other, current))


def set_aside_sentence(store: ResultStore, other: Counter[str | None], current: Fingerprint) -> str:
    """Why stored trials were not reused, one sentence per other fingerprint."""
    parts = store.fingerprint_parts(other)
    sentences = []
    for fp, n in sorted(other.items(), key=lambda kv: -kv[1]):
        were = f"{n} stored trial{'s' if n != 1 else ''} of these points {'were' if n != 1 else 'was'} not reused"
        if fp is None:
            why = "stored without a fingerprint (by an older labkit), what they measured cannot be checked"
        elif fp not in parts:
            why = f"measured under fingerprint {fp}, whose parts this store does not hold"
        else:
            why = "measured " + (" and ".join(differences(parts[fp], current.parts)) or f"under fingerprint {fp}")
        sentences.append(f"{were}: {why}.")
    if sentences:
        sentences.append("Sweep(..., reuse='any') would reuse them.")
    return " ".join(sentences)


def _when(ts: float | None) -> str:
    if ts is None:
        return "an unknown date"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def reuse_sentence(measured_now: int, reused: dict[str, list[Any]], other_setup: int = 0) -> str:
    """``"7 of 10 trials reused from a run on 2026-11-25 12:31 UTC; 3 measured now."``

    ``reused`` maps each run the reused trials come from to ``[trials, run started_at]``;
    ``other_setup`` counts reused trials measured under another fingerprint than now.
    """
    n_reused = sum(n for n, _ in reused.values())
    total = measured_now + n_reused
    if n_reused == 0:
        return f"All {total} trials measured in this run." if total else "No trials."
    starts = sorted((s for _, s in reused.values()), key=lambda s: (s is None, s or 0))
    where = (
        f"a run on {_when(starts[0])}"
        if len(reused) == 1
        else f"{len(reused)} runs, {_when(starts[0])} to {_when(starts[-1])}"
    )
    text = f"{n_reused} of {total} trials reused from {where}; {measured_now} measured now."
    if other_setup:
        text += (
            f" {other_setup} of the reused trials carry another fingerprint than this run's, or none"
            " (reuse='any'): they were measured on another setup, or one not recorded."
        )
    return text
