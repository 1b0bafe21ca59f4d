"""What a machine can do: the records the hardware probes fill, and how they print.

:mod:`labkit.probes` measures; this module holds the results as plain dataclasses
(JSON round-trip for the store's cache, a tidy DataFrame, a readable table).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.common.errors import ParameterError
from labkit.common.format import format_probe_value

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 3  # 2: triad credited with 5 arrays; threads; the node ceiling. 3: outside load; concurrency
_NOT_WORKERS = ("client", "gpu", "cluster", "workers", "node", "load")


@dataclass(frozen=True)
class StreamResult:
    """Copy and triad bandwidth (bytes/s) for arrays of ``nbytes`` each, split over ``threads``
    threads running at once (copy credited with 2 arrays' bytes, the two-pass triad with 5)."""

    nbytes: int
    repeats: int
    copy_best: float
    copy_median: float
    triad_best: float
    triad_median: float
    threads: int = 1

    @property
    def best(self) -> float:
        """The higher of the copy and triad figures: the most bandwidth either kernel reached."""
        return max(self.copy_best, self.triad_best)


@dataclass(frozen=True)
class MatmulResult:
    """FLOP/s of ``threads`` ``n x n`` matrix products in ``dtype`` at once (``2 n**3`` flops each)."""

    n: int
    dtype: str
    repeats: int
    best: float
    median: float
    threads: int = 1


@dataclass(frozen=True)
class NodeCeiling:
    """One host's ceiling: every worker on it running a kernel at the same moment.

    ``memory`` and ``matmul`` (float64) sum what all ``threads`` threads of the ``workers``
    workers moved or computed per iteration over the slowest thread's time; ``memory.nbytes``
    is the bytes per array over all of them. ``start_spread_s`` is the gap between the first
    and the last thread's start, median over every timed iteration of the three kernels.
    """

    host: str
    workers: int
    threads: int
    memory: StreamResult
    matmul: MatmulResult
    start_spread_s: float


@dataclass(frozen=True)
class ConcurrencyCeiling:
    """The cores' own scaling ceiling: ``k`` single-thread ``n x n`` matmuls at once against one alone.

    ``rates[k]`` holds, per interleaved round, the flop/s of all ``k`` products together
    (everything computed over the slowest one's time; median of the round's timed
    iterations). ``ratio(k)`` is the median ratio to one alone; its interval comes from these
    repeats (``labkit.analysis.intervals.ratio_estimate``). ``load`` is the outside load over
    the probe (:func:`labkit.measure.load.load_rates`'s metrics, None: not measured);
    ``under_load`` True means the figures measured that load too: never a ceiling.
    """

    n: int
    rounds: int
    rates: dict[int, tuple[float, ...]]
    host: str = ""
    load: dict[str, float | None] = field(default_factory=dict)
    under_load: bool | None = None
    created: str = ""

    @property
    def ks(self) -> list[int]:
        """The numbers of products run at once, 1 first."""
        return sorted(self.rates)

    def ratio(self, k: int, k0: int = 1) -> float | None:
        """Median flop/s of ``k`` at once over that of ``k0`` at once (None: ``k`` or ``k0`` not probed)."""
        if k not in self.rates or k0 not in self.rates:
            return None
        return statistics.median(self.rates[k]) / statistics.median(self.rates[k0])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rates": {str(k): list(v) for k, v in self.rates.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConcurrencyCeiling:
        rates = {int(k): tuple(float(x) for x in v) for k, v in data["rates"].items()}
        return cls(**{**data, "rates": rates, "load": dict(data.get("load") or {})})


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

    ``memory`` and ``matmul`` are keyed by location: ``"client"``, a worker address (measured
    with that worker's threads at once), or ``"gpu"``. ``node`` is the whole host with every
    worker at once, when all workers share one host. ``missing`` maps ``"<location>/<probe>"``
    (location also ``"workers"``, ``"node"``, ``"cluster"``; probe: memory, matmul,
    task_overhead, network) to the reason that figure is absent; ``notes`` maps a location
    to caveats on its figures. ``concurrency`` is the cores' own scaling ceiling
    (:class:`ConcurrencyCeiling`); ``load`` the outside load over the whole probe and
    ``under_load`` whether it was above :class:`labkit.measure.alerts.AlertRules`' thresholds
    (None: not measured): a probe under load is not the machine's ceiling and is never cached.
    """

    params: dict[str, Any]
    memory: dict[str, StreamResult] = field(default_factory=dict)
    matmul: dict[str, dict[str, MatmulResult]] = field(default_factory=dict)
    task_overhead: TaskOverhead | None = None
    network: NetworkResult | None = None
    node: NodeCeiling | None = None
    missing: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    created: str = ""
    duration_s: float = 0.0
    concurrency: ConcurrencyCeiling | None = None
    load: dict[str, float | None] = field(default_factory=dict)
    under_load: bool | None = None

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
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency.to_dict()
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
        net, node = data.get("network"), data.get("node")
        if node is not None:
            node = NodeCeiling(
                **{**node, "memory": StreamResult(**node["memory"]), "matmul": MatmulResult(**node["matmul"])}
            )
        return cls(
            params=dict(data["params"]),
            memory={loc: StreamResult(**r) for loc, r in data["memory"].items()},
            matmul={loc: {dt: MatmulResult(**r) for dt, r in by.items()} for loc, by in data["matmul"].items()},
            task_overhead=over,
            network=None if net is None else NetworkResult(**net),
            node=node,
            missing=dict(data["missing"]),
            notes=dict(data["notes"]),
            created=data["created"],
            duration_s=data["duration_s"],
            concurrency=None if data.get("concurrency") is None else ConcurrencyCeiling.from_dict(data["concurrency"]),
            load=dict(data.get("load") or {}),
            under_load=data.get("under_load"),
        )

    def rows(self) -> list[tuple[str, str, float | None, str, str]]:
        """``(location, metric, value, unit, note)`` per figure; value None when missing."""
        rows: list[tuple[str, str, float | None, str, str]] = []
        failed = [key.rsplit("/", 1)[0] for key in self.missing]
        workers = [loc for loc in dict.fromkeys([*self.workers, *failed]) if loc not in _NOT_WORKERS]
        for loc in ["client", *workers, "workers", "gpu"]:
            rows += _memory_rows(loc, self.memory.get(loc), self.missing)
            rows += _matmul_rows(loc, self.matmul.get(loc), self.missing)
        node = self.node
        rows += _memory_rows("node", None if node is None else node.memory, self.missing, node)
        rows += _matmul_rows("node", None if node is None else {"float64": node.matmul}, self.missing, node)
        rows += _cluster_rows(self.task_overhead, self.network, self.missing)
        return rows + _concurrency_rows(self.concurrency, self.missing)

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
        # Workers by their order, not by an address that means nothing once the cluster is gone.
        names = {addr: f"worker {i + 1}" for i, addr in enumerate(self.workers)}
        lines = [header] + [
            (names.get(loc, loc), metric, format_probe_value(value, unit), note)
            if value is not None
            else (names.get(loc, loc), metric, f"not measured: {note}", "")
            for loc, metric, value, unit, note in self.rows()
        ]
        measured = [line for line in lines if not line[2].startswith("not measured")]
        # Column widths from measured rows only: a long reason overhangs instead of
        # pushing every other row's note far to the right.
        widths = [max(len(line[i]) for line in (lines if i < 2 else measured)) for i in range(4)]
        out = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in lines]
        out.insert(1, "-" * (sum(widths) + 6))
        for loc, note in self.notes.items():
            out.append(f"note ({names.get(loc, loc)}): {note}")
        p = self.params
        out.append(
            f"measured {self.created or 'at an unrecorded time'}, in {self.duration_s:.1f} s (array_mb={p.get('array_mb')}, "
            f"matmul_n={p.get('matmul_n')}, repeats={p.get('repeats')})"
        )
        return "\n".join(out)


def _memory_rows(
    loc: str, r: StreamResult | None, missing: dict[str, str], node: NodeCeiling | None = None
) -> list[tuple]:
    if r is None:
        why = missing.get(f"{loc}/memory")
        return [] if why is None else [(loc, "memory bandwidth", None, "B/s", why)]
    each = r.nbytes / (node.workers if node else 1) / 2**20
    how = f"{each:g} MiB arrays{' per worker' if node else ''}, {_at_once(r.threads, 'thread', node)}"
    return [
        (
            loc,
            f"{kind} bandwidth",
            getattr(r, f"{kind}_best"),
            "B/s",
            f"best of {r.repeats}, median {format_probe_value(getattr(r, f'{kind}_median'), 'B/s')}, "
            f"{arrays} arrays counted, {how}",
        )
        for kind, arrays in (("copy", 2), ("triad", 5))
    ]


def _matmul_rows(
    loc: str, by_dtype: dict[str, MatmulResult] | None, missing: dict[str, str], node: NodeCeiling | None = None
) -> list[tuple]:
    if not by_dtype:
        why = missing.get(f"{loc}/matmul")
        return [] if why is None else [(loc, "matmul", None, "flop/s", why)]
    return [
        (
            loc,
            f"matmul {dt}",
            r.best,
            "flop/s",
            f"best of {r.repeats}, median {format_probe_value(r.median, 'flop/s')}, n={r.n}, "
            f"{_at_once(r.threads, 'product', node)}",
        )
        for dt, r in by_dtype.items()
    ]


def _at_once(count: int, what: str, node: NodeCeiling | None) -> str:
    text = f"1 {what}" if count == 1 else f"{count} {what}s at once"
    if node is None:
        return text
    return f"{text} on {node.workers} workers, starts {format_probe_value(node.start_spread_s, 's')} apart (median)"


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


def _concurrency_rows(c: ConcurrencyCeiling | None, missing: dict[str, str]) -> list[tuple]:
    """The flop/s of ``k`` single-thread matmuls at once (all of them together), each ``k``'s ratio to one alone in its note."""
    if c is None:
        why = missing.get("cores/concurrency")
        return [] if why is None else [("cores", "matmuls at once", None, "flop/s", why)]
    load = "" if c.under_load is not True else "; taken under outside load: not this machine's ceiling"
    how = f"median of {c.rounds} interleaved rounds, n={c.n}, 1 BLAS thread each{load}"
    return [
        (
            "cores",
            "1 matmul alone" if k == 1 else f"{k} matmuls at once",
            statistics.median(c.rates[k]),
            "flop/s",
            how if k == 1 else f"{c.ratio(k):.2f}× 1 alone, {how}",
        )
        for k in c.ks
    ]
