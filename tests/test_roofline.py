"""The roofline against per-worker limits and the host's ceiling: which limit each configuration
is compared with, and what the sentences may claim.

Trials go through a real ResultStore (only their wall times are made up); probes are real
runs, or records built from known figures where the test needs exact limits.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from labkit import ParameterError, plots, roofline
from labkit.analysis.roofline import HardwareLimits
from labkit.probes import HardwareProbe, MatmulResult, NodeCeiling, StreamResult, run_probes
from labkit.store import ResultStore, Trial

GB = 1e9


def _frame(points: list[dict], workload: str = "array-sum"):
    """Trials from ``{"workers", "rates": [...], "threads"?, **params}``: one trial per rate, 1 GB each."""
    with ResultStore(":memory:") as store:
        run_id = store.start_run("test", workload, env={}, config={})
        for p in points:
            p = dict(p)
            workers, rates = p.pop("workers"), p.pop("rates")
            threads = p.pop("threads", workers)
            point = json.dumps({"workload": workload, "workers": workers, **p}, sort_keys=True)
            for r, rate in enumerate(rates):
                store.add_trial(
                    Trial(
                        run_id=run_id,
                        experiment="test",
                        workload=workload,
                        point=point,
                        params=p,
                        repeat=r,
                        workers=workers,
                        threads=threads,
                        backend="numpy",
                        status="ok",
                        wall_s=GB / rate,
                        amount=GB,
                        unit="bytes",
                    )
                )
        return store.trials_frame("test")


def _stream(copy: float, triad: float, threads: int = 1, nbytes: int = 64 * 2**20) -> StreamResult:
    return StreamResult(
        nbytes=nbytes,
        repeats=5,
        copy_best=copy,
        copy_median=copy,
        triad_best=triad,
        triad_median=triad,
        threads=threads,
    )


def _matmul(best: float, threads: int = 1) -> MatmulResult:
    return MatmulResult(n=1024, dtype="float64", repeats=5, best=best, median=best, threads=threads)


def _probe() -> HardwareProbe:
    """Two workers of 1 thread, a client far faster than either, and a host ceiling."""
    return HardwareProbe(
        params={},
        memory={
            "client": _stream(90 * GB, 95 * GB),
            "tcp://w1": _stream(8 * GB, 10 * GB),
            "tcp://w2": _stream(12 * GB, 9 * GB),
        },
        matmul={
            "client": {"float64": _matmul(500 * GB)},
            "tcp://w1": {"float64": _matmul(20 * GB)},
            "tcp://w2": {"float64": _matmul(30 * GB)},
        },
        node=NodeCeiling(
            host="h",
            workers=2,
            threads=2,
            memory=_stream(14 * GB, 15 * GB, threads=2, nbytes=128 * 2**20),
            matmul=_matmul(45 * GB, threads=2),
            start_spread_s=1e-4,
        ),
    )


def test_limits_come_from_the_workers_and_the_host_never_the_client() -> None:
    limits = roofline.hardware_limits(_probe())
    # Per worker: the higher of copy and triad (10 and 12 GB/s), median over workers.
    assert limits == {"bytes": pytest.approx(11 * GB), "flops": pytest.approx(25 * GB)}
    assert limits.node == {"bytes": 15 * GB, "flops": 45 * GB}
    assert limits.node_workers == 2 and limits.threads == 1 and limits.missing == {}
    given = roofline.hardware_limits(_probe(), bandwidth=20 * GB)
    assert given["bytes"] == 20 * GB and given.node["bytes"] == 15 * GB


def test_limits_from_a_probe_under_outside_load_are_said_to_be_no_ceiling() -> None:
    import dataclasses

    frame = _frame([{"workers": 1, "rates": [4.9 * GB, 5 * GB, 5.1 * GB, 4.95 * GB, 5.05 * GB]}])
    quiet = roofline.describe_roofline(roofline.roofline_fraction(frame, roofline.hardware_limits(_probe())))
    loaded_probe = dataclasses.replace(_probe(), under_load=True)
    loaded = roofline.describe_roofline(roofline.roofline_fraction(frame, roofline.hardware_limits(loaded_probe)))
    assert "probe taken under outside load" not in quiet
    assert (
        loaded.startswith(quiet)
        and "probe taken under outside load" in loaded
        and "not this machine's ceiling" in loaded
    )


def test_n_workers_meet_the_smaller_of_n_times_a_worker_and_the_host() -> None:
    limits = HardwareLimits({"bytes": 10 * GB}, node={"bytes": 15 * GB}, node_workers=2, threads=1)
    frame = _frame([{"workers": w, "rates": [4.9 * GB, 5 * GB, 5.1 * GB, 4.95 * GB, 5.05 * GB]} for w in (1, 2, 4)])
    table = roofline.roofline_fraction(frame, limits, per_worker=True).set_index("workers")
    assert table["limit"].tolist() == [10 * GB, 15 * GB, 40 * GB]
    assert table.loc[1, "limit_source"] == "1 × per-worker"
    assert table.loc[2, "limit_source"] == "host ceiling (2 workers at once)"
    # Four workers are more than the host ceiling was measured with: only 4 × per-worker applies.
    assert "measured with 2 workers" in table.loc[4, "note"]
    assert table["fraction"].tolist() == pytest.approx([0.5, 5 / 15, 0.125])
    assert (table["fraction_lo"] < table["fraction"]).all() and (table["fraction"] < table["fraction_hi"]).all()


def test_a_limit_measured_with_other_threads_per_worker_is_not_used() -> None:
    limits = HardwareLimits({"bytes": 10 * GB}, threads=1)
    frame = _frame([{"workers": 2, "threads": 4, "rates": [5 * GB, 6 * GB]}])
    row = roofline.roofline_fraction(frame, limits, per_worker=True).iloc[0]
    assert math.isnan(row["limit"]) and math.isnan(row["fraction"]) and row["limit_source"] == "not measured"
    assert "measured with 1 thread(s) per worker; this ran 2" in row["note"]


def test_without_worker_figures_the_limit_is_not_measured() -> None:
    probe = run_probes(array_mb=4, matmul_n=128, repeats=2)  # no client: the client process only
    assert probe.bandwidth("client") > 0
    limits = roofline.hardware_limits(probe)
    assert dict(limits) == {} and limits.node == {}
    for unit in ("bytes", "flops"):
        assert "no Dask client" in limits.missing[unit] and "not a worker's" in limits.missing[unit]
    table = roofline.roofline_fraction(_frame([{"workers": 1, "rates": [5 * GB, 6 * GB]}]), limits, per_worker=True)
    assert table["fraction"].isna().all() and "no Dask client" in table["note"].iloc[0]
    text = roofline.describe_roofline(table)
    assert text.startswith("array-sum: the fraction of its hardware limit is not measured (")
    assert "%" not in text
    assert plots.roofline_figure(table).axes[0].texts[0].get_text() == "limit not measured"
    with pytest.raises(ParameterError, match="HardwareProbe with figures"):
        roofline.hardware_limits()


def test_limits_from_a_real_probe(lab) -> None:
    probe = run_probes(lab.client, array_mb=4, matmul_n=128, repeats=2, task_counts=(1, 2, 4), network_duration=0.1)
    limits = roofline.hardware_limits(probe)
    workers = probe.workers
    assert len(workers) == 2 and limits.threads == 1 and limits.node_workers == 2
    assert limits["bytes"] == pytest.approx(np.median([probe.memory[w].best for w in workers]))
    assert limits.node["bytes"] == probe.node.memory.best and limits.node["flops"] == probe.node.matmul.best
    table = roofline.roofline_fraction(_frame([{"workers": 2, "rates": [1 * GB, 1.1 * GB]}]), limits, per_worker=True)
    assert table["limit"].iloc[0] == pytest.approx(min(2 * limits["bytes"], limits.node["bytes"]))


def _described(rates: dict[int, list[float]], limit: float = 10 * GB) -> str:
    frame = _frame([{"workers": w, "rates": r} for w, r in rates.items()])
    return roofline.describe_roofline(roofline.roofline_fraction(frame, {"bytes": limit}))


def test_sentences_claim_only_what_the_interval_says() -> None:
    near = _described({1: [8.8 * GB, 9 * GB, 9.1 * GB, 9.2 * GB, 8.9 * GB]})
    assert "an estimated 90% (" in near and "close to that limit" in near
    low = _described({1: [2.9 * GB, 3 * GB, 3.1 * GB, 3 * GB, 2.95 * GB]})
    assert "below half" in low and "close to" not in low
    wide = _described({1: [4 * GB, 9 * GB, 6 * GB, 8.5 * GB, 4.5 * GB]})  # the interval spans 40%-90%
    assert "close to" not in wide and "below half" not in wide
    overlapping = _described(
        {1: [5 * GB, 6 * GB, 7 * GB, 5.5 * GB, 6.5 * GB], 2: [5.2 * GB, 6.1 * GB, 6.9 * GB, 5.8 * GB, 6.4 * GB]}
    )
    assert "the runs cannot tell which came closest" in overlapping
    apart = _described(
        {1: [2 * GB, 2.05 * GB, 2.1 * GB, 2.02 * GB, 2.07 * GB], 2: [6 * GB, 6.1 * GB, 6.2 * GB, 6.05 * GB, 6.15 * GB]}
    )
    assert "cannot tell" not in apart and "on 2 workers" in apart
    same = _described({1: [5 * GB] * 5})
    assert "no interval" in same and "(50%–50%)" not in same
