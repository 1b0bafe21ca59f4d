"""Notebooks 03 (data variety), 04 (batch vs stream) and 05 (compression, memory) run headless
with small parameters; what they print is recomputed from their stores with the same labkit
functions. The conclusion functions are also checked on trials whose answer is known."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

from labkit import ResultStore
from labkit.analysis.shares import SPLIT
from labkit.common.errors import ParameterError
from labkit.studies import compression, memory, stream, variety

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ("03_data_variety", "04_batch_vs_stream", "05_compression_io")
SMALL = {
    "03_data_variety": {
        "workers": [1, 2],
        "array_mb": 16.0,
        "array_chunk_mb": 2.0,
        "table_rows": 40_000,
        "table_partitions": 4,
        "text_documents": 2000,
        "text_partitions": 4,
        "images": 8,
        "image_size": 64,
        "image_batch": 2,
        "repeats": 2,
        "warmup": 0,
        "budget_s": 20.0,
        "experiment": "nb03",
    },
    "04_batch_vs_stream": {
        "workers": [2],
        "batch_sizes": [1, 10, 200],
        "records": 200,
        "rate": 400.0,
        "features": 16,
        "layers": 1,
        "target_p95_s": 0.2,
        "repeats": 5,
        "warmup": 1,
        "budget_s": 20.0,
        "experiment": "nb04",
    },
    "05_compression_io": {
        "workers": [2],
        "data_kinds": ["smooth", "random"],
        "codecs": ["none", "blosc-lz4-shuffle", "zstd"],
        "ops": ["write"],
        "size_mb": 4.0,
        "chunk_mb": 1.0,
        "memory_limit": "512MiB",
        "spill_ratios": [0.1, 1.0],
        "spill_chunk_mb": 16.0,
        "repeats": 3,
        "warmup": 0,
        "budget_s": 20.0,
        "experiment": "nb05",
    },
}


def _run(tmp_path_factory: pytest.TempPathFactory, notebooks_store, name: str) -> tuple[object, Path, str]:
    """Run notebook ``name`` into the session's notebook store (read it by experiment)."""
    result = notebooks_store.run(NOTEBOOKS / f"{name}.ipynb", SMALL[name], tmp_path_factory.mktemp(name))
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    return result, notebooks_store.path, printed


def _trials(store: Path, experiment: str) -> pd.DataFrame:
    with ResultStore(store) as s:
        return s.trials_frame(experiment)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_declares_the_parameters_the_tests_set(name: str) -> None:
    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert set(SMALL[name]) | {"store"} <= set(declared)


@pytest.fixture(scope="module")
def nb03(tmp_path_factory: pytest.TempPathFactory, notebooks_store) -> tuple[object, Path, str]:
    return _run(tmp_path_factory, notebooks_store, "03_data_variety")


def test_data_variety_prints_its_answer_from_the_store(nb03: tuple[object, Path, str]) -> None:
    result, store, printed = nb03
    kinds = {k: _trials(store, f"nb03/{k}") for k in ("arrays", "tables", "text", "images")}
    for kind, frame in kinds.items():
        assert len(frame) == 2 * 2 and (frame["status"] == "ok").all(), kind
        assert sorted(frame["workers"]) == [1, 1, 2, 2]
        assert frame["time_total_s"].notna().any(), f"{kind}: time split not stored"
    answer = variety.describe_data_variety(kinds)
    assert answer in printed
    assert "Dask annotations" not in printed  # dask.dataframe's warning about the trial's span
    # Two runs a point give no interval: no kind may be called the worst (and on a busy machine
    # that flags every trial, nothing is claimed at all).
    # Where outside load left too few trials to compare the kinds, the answer claims nothing instead.
    assert ("do not establish which kind scales worst" in answer or NOTHING_LEFT in answer) and (
        "scales worst here" not in answer
    )
    table = variety.kind_scaling(kinds)
    assert table["speedup_lo"].isna().all() and (table["speedup"] > 0).all()
    shares = table[[f"share_{b}" for b in SPLIT]].sum(axis=1)
    assert np.allclose(shares, 1.0, atol=0.1), shares  # medians of shares that sum to 1 each
    assert result.html.read_text().count("<img") >= 5


@pytest.fixture(scope="module")
def nb04(tmp_path_factory: pytest.TempPathFactory, notebooks_store) -> tuple[object, Path, str]:
    return _run(tmp_path_factory, notebooks_store, "04_batch_vs_stream")


def test_batch_vs_stream_prints_its_answer_from_the_store(nb04: tuple[object, Path, str]) -> None:
    _, store, printed = nb04
    frame = _trials(store, "nb04/stream")
    assert len(frame) == 3 * 5 and (frame["status"] == "ok").all()
    assert frame["latency_p95_s"].notna().all() and (frame["latency_p99_s"] >= frame["latency_p50_s"]).all()
    assert stream.describe_latency_target(frame, 0.2, 400.0) in printed
    if all_loaded(frame):  # a busy machine: no trial may carry a claim, and the answer says so
        assert NOTHING_LEFT in printed
    else:
        assert "Target: p95 latency ≤ 0.2 s at 400 records/s." in printed
    table = stream.latency_table(frame).set_index("batch")
    # One batch of all 200 records arriving over 0.5 s: the first records wait ~0.5 s for the last.
    assert 0.4 < table.loc[200, "p95_s"] < 2.0
    assert (table["p95_lo"] < table["p95_hi"]).all()  # five runs a point: intervals, never of zero width


@pytest.fixture(scope="module")
def nb05(tmp_path_factory: pytest.TempPathFactory, notebooks_store) -> tuple[object, Path, str]:
    return _run(tmp_path_factory, notebooks_store, "05_compression_io")


def test_compression_io_prints_its_answers_from_the_store(nb05: tuple[object, Path, str]) -> None:
    _, store, printed = nb05
    codecs = _trials(store, "nb05/codecs")
    spill = _trials(store, "nb05/spill")
    assert len(codecs) == 2 * 3 * 3 and (codecs["status"] == "ok").all()
    assert compression.describe_codecs(codecs, 0.1) in printed
    assert memory.describe_spill(spill) in printed
    table = compression.codec_table(codecs).set_index(["data", "codec"])
    assert table.loc[("smooth", "zstd"), "compression_ratio"] > 2  # a smooth field compresses
    assert 0.9 < table.loc[("random", "none"), "compression_ratio"] <= 1.0  # raw bytes plus metadata
    assert table.loc[("random", "blosc-lz4-shuffle"), "compression_ratio"] < 1.2  # noise hardly compresses
    spilled = memory.spill_table(spill).set_index("ratio")
    assert spilled.loc[1.0, "runs"] + spilled.loc[1.0, "failed"] == 3
    assert spilled.loc[1.0, "spill_write_bytes"] > 0  # a working set at the limit spills


# -- the conclusion functions on trials whose answer is known ----------------------------


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Trials as the store gives them: a canonical point, status, throughput and metrics."""
    out = []
    for r in rows:
        params = {k: v for k, v in r.items() if k not in ("throughput", "status", "error", "metrics")}
        point = json.dumps({"workload": "w", **params}, sort_keys=True)
        out.append(
            {
                "point": point,
                "workers": params.get("workers", 1),
                "status": r.get("status", "ok"),
                "error": r.get("error"),
                "throughput": r.get("throughput", 1.0),
                "unit": "bytes",
                **r.get("metrics", {}),
            }
        )
    return pd.DataFrame(out)


def test_latency_target_verdicts_follow_the_intervals() -> None:
    rng = np.random.default_rng(1)
    rows = [
        {"workers": 2, "rate": 100.0, "batch": b, "metrics": {"latency_p95_s": p, "records_per_s": 99.0}}
        for b, centre in ((1, 0.05), (10, 0.15), (100, 0.6))
        for p in centre * (1 + 0.05 * rng.standard_normal(6))
    ]
    text = stream.describe_latency_target(_frame(rows), 0.1)
    assert "batch 1 on 2 worker(s)" in text and "batch 100" in text
    lines = {int(line.split()[1]): line for line in text.splitlines() if line.startswith("batch ")}
    assert "meets it" in lines[1] and "misses it" in lines[10] and "misses it" in lines[100]
    answer = next(line for line in text.splitlines() if line.startswith("Answer:"))
    assert text.splitlines()[-1].startswith("Trials: ")  # what the claims left out, said last
    assert answer.startswith("Answer: batch size(s) 1 met the target; batch 1 had the lowest p95 (0.0")
    assert answer.endswith(" s; met by its interval).")
    straddles = stream.describe_latency_target(_frame(rows[6:12]), 0.15)  # batch 10, centred on it
    assert (
        "Answer: no batch size measured was shown to meet the target; for batch size(s) 10 the runs cannot tell."
        in straddles.splitlines()
    )
    few = stream.describe_latency_target(_frame(rows[:3]), 0.1)
    assert "met in each of 3 runs (too few runs for an interval)" in few
    with pytest.raises(ParameterError, match="target_s"):
        stream.describe_latency_target(_frame(rows), 0.0)
    with pytest.raises(ParameterError, match="measured arrival rate"):
        stream.describe_latency_target(_frame(rows), 0.1, rate=50.0)


def test_spill_slowdown_is_claimed_only_with_its_interval() -> None:
    rng = np.random.default_rng(2)
    fits = [
        {"workers": 2, "ratio": 0.25, "throughput": t, "metrics": {"spilled_bytes": 0.0}}
        for t in 2e8 * rng.normal(1, 0.02, 6)
    ]
    spills = [
        {"workers": 2, "ratio": 1.5, "throughput": t, "metrics": {"spilled_bytes": 2**29}}
        for t in 5e7 * rng.normal(1, 0.02, 6)
    ]
    died = [{"ratio": 3.0, "status": "error", "error": "KilledWorker: too much"}] * 2
    text = memory.describe_spill(_frame(fits + spills + died))
    assert re.search(r"1\.5× the limit against 0\.25×: (3\.9\d|4\.0\d?)× slower \(95% interval", text), text
    assert "on disk while held: 512 MiB" in text
    assert "3× the limit: no run finished; 2 run(s) failed (KilledWorker: too much)." in text
    table = memory.spill_table(_frame(fits + spills))
    assert table.loc[1, "slowdown"] == pytest.approx(4.0, rel=0.05)
    assert table.loc[1, "slowdown_lo"] < 4.0 < table.loc[1, "slowdown_hi"]
    two = memory.describe_spill(_frame(fits[:2] + spills[:2]))
    assert "an estimate: interval not available" in two and "slower" not in two and "faster" not in two


def test_codec_trade_off_needs_the_interval_to_show_it_keeps_pace() -> None:
    rng = np.random.default_rng(3)

    def runs(codec: str, ratio: float, speed: float) -> list[dict]:
        return [
            {
                "workers": 2,
                "op": "write",
                "data": "smooth",
                "codec": codec,
                "throughput": t,
                "metrics": {"compression_ratio": ratio},
            }
            for t in speed * rng.normal(1, 0.01, 6)
        ]

    close = runs("none", 1.0, 1e8) + runs("blosc-lz4", 5.0, 0.99e8) + runs("zstd", 9.0, 0.5e8)
    text = compression.describe_codecs(_frame(close), 0.1)
    assert "write, smooth data: blosc-lz4, compression ratio 5" in text
    assert "The highest ratio, zstd (9×), ran at 0.5" in text
    slow = runs("none", 1.0, 1e8) + runs("zstd", 9.0, 0.5e8)
    assert "write, smooth data: none, compression ratio 1, at 100 MB/s (the fastest)" in compression.describe_codecs(
        _frame(slow)
    )
    with pytest.raises(ParameterError, match="slack"):
        compression.describe_codecs(_frame(slow), 1.5)


def test_worst_kind_is_named_only_when_its_interval_lies_below_the_others() -> None:
    rng = np.random.default_rng(4)

    def kind(speedup: float, idle_at_2: float) -> pd.DataFrame:
        rows = [
            {"workers": w, "throughput": t, "metrics": {"time_total_s": 2.0 * w, "time_idle_s": 2.0 * w * idle}}
            for w, base, idle in ((1, 1e8, 0.05), (2, speedup * 1e8, idle_at_2))
            for t in base * rng.normal(1, 0.02, 6)
        ]
        return _frame(rows)

    text = variety.describe_data_variety({"arrays": kind(1.9, 0.05), "text": kind(1.0, 0.5)})
    assert "Answer: text scales worst here: its efficiency interval (" in text
    assert "the share that grew most from 1 worker(s) is idle (5% → 50%)" in text
    close = variety.describe_data_variety({"arrays": kind(1.5, 0.1), "text": kind(1.5, 0.1)})
    assert "the runs cannot tell which kind scales worst" in close
    with pytest.raises(ParameterError, match="frames"):
        variety.describe_data_variety({})
