"""What a machine can do: the records the hardware probes fill, and how they print.

:mod:`labkit.probes` measures; this module holds the results as plain dataclasses
(JSON round-trip for the store's cache, a tidy DataFrame, a readable table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError
from labkit.common.format import format_probe_value

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
_NOT_WORKERS = ("client", "gpu", "cluster", "workers")


@dataclass(frozen=True)
class StreamResult:
    """STREAM copy and triad bandwidth (bytes/s) for arrays of ``nbytes`` each."""

    nbytes: int
    repeats: int
    copy_best: float
    copy_median: float
    triad_best: float
    triad_median: float


@dataclass(frozen=True)
class MatmulResult:
    """FLOP/s of an ``n x n`` matrix product in ``dtype`` (``2 n**3`` flops each)."""

    n: int
    dtype: str
    repeats: int
    best: float
    median: float


@dataclass(frozen=True)
class TaskOverhead:
    """Least-squares fit of wall time ``T = fixed_s + per_task_s * tasks``.

    ``times_s`` holds the median wall time measured at each of ``task_counts``.
    """

    fixed_s: float
    fixed_stderr_s: float
    per_task_s: float
    per_task_stderr_s: float
    task_counts: tuple[int, ...]
    times_s: tuple[float, ...]
    repeats: int


@dataclass(frozen=True)
class NetworkResult:
    """Worker-to-worker bandwidth (bytes/s, both directions counted, as Dask counts them).

    ``by_size`` maps a message size to the bandwidth averaged over worker pairs;
    ``bandwidth`` is the best of those averages.
    """

    bandwidth: float
    by_size: dict[str, float]
    pairs: int
    duration_s: float


@dataclass(frozen=True)
class HardwareProbe:
    """Every figure one :func:`run_probes` call measured, as plain values.

    ``memory`` and ``matmul`` are keyed by location: ``"client"``, a worker address, or
    ``"gpu"``. ``missing`` maps ``"<location>/<probe>"`` (probe: memory, matmul,
    task_overhead, network) to the reason that figure is absent; ``notes`` maps a location
    to caveats on its figures.
    """

    params: dict[str, Any]
    memory: dict[str, StreamResult] = field(default_factory=dict)
    matmul: dict[str, dict[str, MatmulResult]] = field(default_factory=dict)
    task_overhead: TaskOverhead | None = None
    network: NetworkResult | None = None
    missing: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    created: str = ""
    duration_s: float = 0.0

    @property
    def workers(self) -> list[str]:
        """Addresses of the workers whose memory figures were measured."""
        return [loc for loc in self.memory if loc not in _NOT_WORKERS]

    @property
    def gpu(self) -> StreamResult | None:
        """The GPU's memory figures, or None (see ``missing["gpu/memory"]``)."""
        return self.memory.get("gpu")

    def bandwidth(self, location: str = "client", kind: str = "triad") -> float | None:
        """Best STREAM bandwidth (bytes/s) of ``kind`` (copy | triad) at ``location``."""
        result = self.memory.get(location)
        return None if result is None else float(getattr(result, f"{kind}_best"))

    def flops(self, location: str = "client", dtype: str = "float64") -> float | None:
        """Best matmul FLOP/s in ``dtype`` at ``location``, or None."""
        result = self.matmul.get(location, {}).get(dtype)
        return None if result is None else result.best

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` restores an equal probe."""
        out = asdict(self)
        if self.task_overhead is not None:
            for key in ("task_counts", "times_s"):
                out["task_overhead"][key] = list(out["task_overhead"][key])
        out["version"] = SCHEMA_VERSION
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareProbe:
        """Rebuild a probe from :meth:`to_dict` output (also after a JSON round trip)."""
        version = data.get("version")
        if version != SCHEMA_VERSION:
            raise ParameterError("data['version']", version, f"{SCHEMA_VERSION} (this labkit's probe format)")
        over = data.get("task_overhead")
        if over is not None:
            over = TaskOverhead(
                **{**over, "task_counts": tuple(over["task_counts"]), "times_s": tuple(over["times_s"])}
            )
        net = data.get("network")
        return cls(
            params=dict(data["params"]),
            memory={loc: StreamResult(**r) for loc, r in data["memory"].items()},
            matmul={loc: {dt: MatmulResult(**r) for dt, r in by.items()} for loc, by in data["matmul"].items()},
            task_overhead=over,
            network=None if net is None else NetworkResult(**net),
            missing=dict(data["missing"]),
            notes=dict(data["notes"]),
            created=data["created"],
            duration_s=data["duration_s"],
        )

    def rows(self) -> list[tuple[str, str, float | None, str, str]]:
        """``(location, metric, value, unit, note)`` per figure; value None when missing."""
        rows: list[tuple[str, str, float | None, str, str]] = []
        failed = [key.rsplit("/", 1)[0] for key in self.missing]
        workers = [loc for loc in dict.fromkeys([*self.workers, *failed]) if loc not in _NOT_WORKERS]
        for loc in ["client", *workers, "workers", "gpu"]:
            rows += _memory_rows(loc, self.memory.get(loc), self.missing)
            rows += _matmul_rows(loc, self.matmul.get(loc), self.missing)
        rows += _cluster_rows(self.task_overhead, self.network, self.missing)
        return rows

    def to_frame(self) -> pd.DataFrame:
        """A tidy DataFrame, one row per figure: location, metric, value, unit, note.

        Values are in base units (bytes/s, flop/s, s); a missing figure has value NaN
        and its reason as the note.
        """
        import pandas as pd

        frame = pd.DataFrame(self.rows(), columns=["location", "metric", "value", "unit", "note"])
        frame["value"] = frame["value"].astype("float64")
        return frame

    def table(self) -> str:
        """A fixed-width table in human units (GB/s, GFLOP/s, µs/ms); missing figures
        read ``not measured: <reason>``."""
        header = ("location", "metric", "value", "note")
        lines = [header] + [
            (loc, metric, format_probe_value(value, unit), note)
            if value is not None
            else (loc, metric, f"not measured: {note}", "")
            for loc, metric, value, unit, note in self.rows()
        ]
        measured = [line for line in lines if not line[2].startswith("not measured")]
        # Column widths from measured rows only: a long reason overhangs instead of
        # pushing every other row's note far to the right.
        widths = [max(len(line[i]) for line in (lines if i < 2 else measured)) for i in range(4)]
        out = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in lines]
        out.insert(1, "-" * (sum(widths) + 6))
        for loc, note in self.notes.items():
            out.append(f"note ({loc}): {note}")
        p = self.params
        out.append(
            f"probes took {self.duration_s:.1f} s (array_mb={p.get('array_mb')}, "
            f"matmul_n={p.get('matmul_n')}, repeats={p.get('repeats')})"
        )
        return "\n".join(out)


def _memory_rows(loc: str, r: StreamResult | None, missing: dict[str, str]) -> list[tuple]:
    if r is None:
        why = missing.get(f"{loc}/memory")
        return [] if why is None else [(loc, "memory bandwidth", None, "B/s", why)]
    size = f"{r.nbytes / 2**20:g} MiB arrays"
    return [
        (
            loc,
            "copy bandwidth",
            r.copy_best,
            "B/s",
            f"best of {r.repeats}, median {format_probe_value(r.copy_median, 'B/s')}, {size}",
        ),
        (
            loc,
            "triad bandwidth",
            r.triad_best,
            "B/s",
            f"best of {r.repeats}, median {format_probe_value(r.triad_median, 'B/s')}, {size}",
        ),
    ]


def _matmul_rows(loc: str, by_dtype: dict[str, MatmulResult] | None, missing: dict[str, str]) -> list[tuple]:
    if not by_dtype:
        why = missing.get(f"{loc}/matmul")
        return [] if why is None else [(loc, "matmul", None, "flop/s", why)]
    return [
        (
            loc,
            f"matmul {dt}",
            r.best,
            "flop/s",
            f"best of {r.repeats}, median {format_probe_value(r.median, 'flop/s')}, n={r.n}",
        )
        for dt, r in by_dtype.items()
    ]


def _cluster_rows(over: TaskOverhead | None, net: NetworkResult | None, missing: dict[str, str]) -> list[tuple]:
    rows: list[tuple] = []
    if over is None:
        rows.append(("cluster", "task overhead", None, "s", missing.get("cluster/task_overhead", "not run")))
    else:
        fit = f"fit over {len(over.task_counts)} task counts {min(over.task_counts)}..{max(over.task_counts)}"
        rows += [
            (
                "cluster",
                "fixed cost per compute",
                over.fixed_s,
                "s",
                f"± {format_probe_value(over.fixed_stderr_s, 's')}, {fit}",
            ),
            ("cluster", "cost per task", over.per_task_s, "s", f"± {format_probe_value(over.per_task_stderr_s, 's')}"),
        ]
    if net is None:
        rows.append(("cluster", "network bandwidth", None, "B/s", missing.get("cluster/network", "not run")))
    else:
        best = max(net.by_size, key=net.by_size.__getitem__)
        rows.append(
            (
                "cluster",
                "network bandwidth",
                net.bandwidth,
                "B/s",
                f"{best} messages, mean of {net.pairs} worker pair(s), both directions",
            )
        )
    return rows
