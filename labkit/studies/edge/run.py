"""The edge study's run: on-device compute against sending the input to the cloud, at each input size.

:class:`EdgeStudy` checks its parameters when it is made, before any cluster work.
:meth:`EdgeStudy.run` adds the edge worker (:class:`~.offload.EdgeWorker`), times the model
on it at each size (the input made on the device: compute only), then, through a shaped link
where one can be made (:class:`~.link.ShapedLink`; otherwise over this machine's loopback,
unshaped, and said so), has the device process send each input to the gateway, which runs
it on the cloud worker; last, the link alone (echo) at the largest size. The edge worker,
the gateway and the namespace are closed whatever happens.

>>> EdgeStudy(sizes_kb=[0])
Traceback (most recent call last):
...
labkit.common.errors.ParameterError: sizes_kb=[0] is not allowed: a list of input sizes in KiB, each >= 1
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.cluster.capacity import usable_cores
from labkit.common.errors import LabkitError, ParameterError
from labkit.experiment.lifecycle import RecordedRun, StudyCode
from labkit.store import ResultStore, Trial, check_store_path

from . import analysis as an
from . import figures as plots
from .link import ShapedLink, link_support
from .offload import EdgeWorker, Gateway, infer


def _device(prefix: list[str], host: str, port: int, mode: str, repeats: int, sizes: list[int]) -> list[list[float]]:
    command = [*prefix, sys.executable, "-m", "labkit.studies.edge.device", host, str(port), mode, str(repeats)]
    done = subprocess.run([*command, *map(str, sizes)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise LabkitError(f"the device process failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class EdgeStudy:
    """An edge worker (one pinned core, small memory) against the cloud worker behind a shaped link.

    Parameters
    ----------
    sizes_kb : list of int
        Input sizes, KiB.
    bandwidth_mbit : float
        The link's rate each way, megabits per second.
    hidden : int
        The model's units: its compute per byte of input.
    repeats : int
        Runs per size and place.
    edge_memory : str
        The edge worker's memory limit (Dask's ``memory_limit``).
    edge_core : int
        The core the edge worker is pinned to.
    store, experiment
        Each size's runs are stored as trials under ``f"{experiment}/offload"``.
    """

    sizes_kb: Any = (16, 64, 256, 1024, 4096)
    bandwidth_mbit: float = 200.0
    hidden: int = 8192
    repeats: int = 5
    edge_memory: str = "512MiB"
    edge_core: int = 0
    store: Any = None
    experiment: str = "edge"
    cores: int = field(default_factory=usable_cores)

    def __post_init__(self) -> None:
        sizes = self.sizes_kb
        if (
            not isinstance(sizes, (list, tuple))
            or not sizes
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
        ):
            raise ParameterError("sizes_kb", sizes, "a list of input sizes in KiB, each >= 1")
        object.__setattr__(self, "sizes_kb", sorted(set(sizes)))
        bw = self.bandwidth_mbit
        if isinstance(bw, bool) or not isinstance(bw, (int, float)) or not 0.1 <= bw <= 10000:
            raise ParameterError("bandwidth_mbit", bw, "megabits per second, from 0.1 to 10,000")
        for name, least in (("hidden", 1), ("repeats", 1), ("edge_core", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ParameterError(name, v, f"an integer >= {least}")
        if self.edge_core >= self.cores:
            raise ParameterError("edge_core", self.edge_core, f"a core of this machine: 0 to {self.cores - 1}")
        from dask.utils import parse_bytes

        try:
            parse_bytes(self.edge_memory)
        except (TypeError, ValueError) as e:
            raise ParameterError("edge_memory", self.edge_memory, 'a size such as "512MiB"') from e
        if self.store is not None and not isinstance(self.store, ResultStore):
            check_store_path(self.store)

    def run(self, lab: Any) -> EdgeResult:
        """Every size on the edge and through the link to the cloud; the edge worker and link closed after."""
        sizes = [kb * 1024 for kb in self.sizes_kb]
        config = {k: v for k, v in vars(self).items() if k != "store"}
        support = link_support()
        with RecordedRun(
            self.store, f"{self.experiment}/offload", StudyCode("edge-infer", infer), lab, config=config
        ) as rec:
            with EdgeWorker(lab, self.edge_memory, self.edge_core) as edge:
                rows = self._local(lab, rec, edge.address, sizes)
                link = ShapedLink(self.bandwidth_mbit) if not support else contextlib.nullcontext()
                with link as shaped:
                    rows += self._offload(lab, rec, edge.cloud, shaped, sizes)
        return EdgeResult(rows, self, support)

    def _local(self, lab: Any, rec: RecordedRun, edge: str, sizes: list[int]) -> list[dict[str, Any]]:
        rows = []
        for size in sizes:
            lab.client.submit(infer, size, self.hidden, workers=[edge], pure=False).result()  # warm
            t0 = time.time()
            with rec.load_window() as load:
                futs = [
                    lab.client.submit(infer, size, self.hidden, workers=[edge], pure=False) for _ in range(self.repeats)
                ]
                times = [f.result() for f in futs]
            rows.append(_add(rec, {"place": "edge", "size": size}, t0, times, 0, load))
        return rows

    def _offload(
        self, lab: Any, rec: RecordedRun, cloud: str, link: ShapedLink | None, sizes: list[int]
    ) -> list[dict[str, Any]]:
        host, prefix = (link.host_ip, link.prefix()) if link is not None else ("127.0.0.1", [])
        rows = []
        with Gateway(lab, cloud, host, self.hidden) as gw:
            for mode, place, measured in (("c", "cloud", sizes), ("e", "link", sizes[-1:])):
                for size in measured:
                    before = link.received_bytes() if link is not None else 0
                    t0 = time.time()
                    with rec.load_window() as load:
                        times = [t for _, t in _device(prefix, host, gw.port, mode, self.repeats, [size])]
                    moved = (link.received_bytes() - before) / self.repeats if link is not None else float(size + 9)
                    compute = [c for s, c in gw.compute[-self.repeats :]] if mode == "c" else []
                    rows.append(_add(rec, {"place": place, "size": size}, t0, times, moved, load, compute))
            if gw.errors:
                raise LabkitError(f"the gateway failed: {gw.errors[0]!r}") from gw.errors[0]
        return rows


def _add(
    rec: RecordedRun,
    point: dict[str, Any],
    t0: float,
    times: list[float],
    moved: float,
    load: dict[str, Any],
    compute: Any = (),
) -> dict[str, Any]:
    row = {
        **point,
        "times": list(times),
        "bytes_moved": moved,
        "cloud_compute": list(compute),
        "status": "ok",
        "under_load": load.get("under_load"),
    }
    if rec.store is not None:
        wall = float(np.sum(times))
        rec.store.add_trial(
            Trial(
                rec.run_id,
                rec.experiment,
                "edge-infer",
                json.dumps(point, sort_keys=True),
                point,
                0,
                None,
                1,
                None,
                "ok",
                wall_s=wall,
                amount=float(point["size"] * len(times)),
                unit="bytes",
                started_at=t0,
                ended_at=t0 + wall,
                metrics={**row, **load},
                fingerprint=rec.fingerprint.key,
            )
        )
    return row


@dataclass
class EdgeResult:
    """Each place's runs at each size (one row each), the study, and why the link was not shaped ("" when it was)."""

    rows: list[dict[str, Any]]
    study: EdgeStudy
    support: str

    @property
    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def table(self) -> Any:
        return an.size_table(self.frame, self.study.bandwidth_mbit, self.support)

    def transfer_check(self) -> str:
        return an.transfer_words(self.frame, self.study.bandwidth_mbit, self.support)

    def describe(self) -> Any:
        return an.describe_edge(self.frame, self.study.bandwidth_mbit, self.support)

    def figure(self) -> Any:
        return plots.edge_figure(self.table(), self.study.bandwidth_mbit)
