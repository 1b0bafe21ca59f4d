"""Cost as a labelled estimate: the price table and its checks, billed time with start-up and idle
time, cost per unit of work on known inputs, the cheapest configuration under a time target,
electricity apart from the cloud price, and notebook 12 run headless."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

from labkit import ResultStore
from labkit.analysis import cost as costs
from labkit.analysis.cheapest import cheapest_within, describe_cheapest
from labkit.analysis.electricity import describe_electricity, electricity_table
from labkit.analysis.prices import COLUMNS, load_prices
from labkit.common.errors import DataError, ParameterError
from labkit.studies import cost

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "12_cost_energy.ipynb"


def _prices(**electricity) -> object:
    """Two made-up instance types: a CPU one at 0.36/h (0.0001 a second) and a 2-GPU one at 3.6/h."""
    rows = pd.DataFrame(
        [
            ["p", "c2", "cpu", 2, 0, "", 8, 0.36, "USD", "r", "a test page", "2024-06"],
            ["p", "g2x", "gpu", 8, 2, "T", 32, 3.6, "USD", "r", "a test page", "2024-06-01"],
        ],
        columns=list(COLUMNS),
    )
    return load_prices(rows, **electricity)


def _point(workers: int, backend: str = "numpy", **params) -> str:
    return json.dumps({"workload": "w", "workers": workers, "backend": backend, **params}, sort_keys=True)


def _trial(point: str, start: float, end: float, status: str = "ok", **extra) -> dict:
    d = json.loads(point)
    ok = status == "ok"
    return {
        "run_id": "r1",
        "workload": "w",
        "point": point,
        "status": status,
        "workers": d["workers"],
        "backend": d["backend"],
        "wall_s": end - start if ok else None,
        "amount": 1e9,
        "unit": "flops",
        "started_at": pd.Timestamp(start, unit="s", tz="UTC"),
        "ended_at": pd.Timestamp(end, unit="s", tz="UTC"),
        **extra,
    }


def _trials() -> pd.DataFrame:
    """A run started at t=100; point A (1 worker): two ok trials; B (2 workers): ok, failed, ok;
    C (1 GPU worker): one ok trial. Every trial follows a 1 s gap."""
    a, b, c = _point(1), _point(2), _point(1, "cupy")
    return pd.DataFrame(
        [
            _trial(a, 101, 102),
            _trial(a, 103, 105),
            _trial(b, 106, 107),
            _trial(b, 108, 110, status="error"),
            _trial(b, 111, 112),
            _trial(c, 113, 114),
        ]
    )


RUNS = pd.DataFrame({"run_id": ["r1"], "started_at": [100.0]})
STARTUP = pd.DataFrame(
    {"workers": [1, 2, 1, 1], "device": ["cpu", "cpu", "gpu", "gpu"], "startup_s": [4.0, 6.0, 10.0, 12.0]}
)


# -- billed time and cost on known inputs ----------------------------------------------------


def test_billed_time_adds_the_startup_and_the_idle_time_of_each_point() -> None:
    billed = costs.bill(_trials(), startup=STARTUP, runs=RUNS)
    ok = billed[billed["status"] == "ok"]
    # A: gaps 1 + 1 shared by 2 trials, start-up 4 shared by 2: 1+1+2 and 2+1+2.
    # B: gaps 1+1+1 and the failed trial's 2 s shared by 2 ok trials (2.5 each), start-up 6 (3 each).
    # C: gap 1, start-up median(10, 12) = 11.
    assert ok["billed_s"].tolist() == pytest.approx([4.0, 5.0, 6.5, 6.5, 13.0])
    assert ok["device"].tolist() == ["cpu", "cpu", "cpu", "cpu", "gpu"]
    # What a point's trials are billed adds up to the time the run held it, plus one start-up.
    assert ok["billed_s"].sum() == pytest.approx((114 - 100) + 4 + 6 + 11)
    assert math.isnan(billed.loc[3, "billed_s"])  # the failed trial itself carries no cost


def test_without_the_runs_the_time_before_the_first_trial_is_not_billed() -> None:
    billed = costs.bill(_trials(), startup={1: 4.0, 2: 6.0})
    assert billed.loc[0, "billed_s"] == pytest.approx(1.0 + 0.5 + 2.0)


def test_cost_per_unit_of_work_on_known_inputs() -> None:
    table = costs.cost_table(_trials(), _prices(), startup=STARTUP, runs=RUNS).set_index("workers", append=True)
    rows = {(r.device, r.workers): r for r in table.reset_index().itertuples()}
    # 1 CPU worker × 0.0001/s × 4 s (and 5 s) per 1e9 flop: median 0.00045.
    assert rows["cpu", 1].cost == pytest.approx(0.00045)
    # 2 CPU workers × 0.0001/s × 6.5 s.
    assert rows["cpu", 2].cost == pytest.approx(0.0013)
    # 1 GPU worker billed as one of the instance's 2 GPUs: 1.8/h = 0.0005/s, × 13 s.
    assert rows["gpu", 1].cost == pytest.approx(0.0065)
    assert rows["cpu", 1].instance == "c2" and rows["gpu", 1].instance == "g2x"
    assert rows["cpu", 1].unit == "USD per 1e9 flops"
    assert math.isnan(rows["cpu", 1].cost_lo) and "use repeats >= 5" in rows["cpu", 1].cost_note
    snapshot = table.attrs["prices"]
    assert snapshot.sources == ["a test page"] and snapshot.dates == ["2024-06", "2024-06-01"]


def test_a_cost_interval_comes_from_the_repeats_and_covers_the_median() -> None:
    p = _point(1)
    rng = np.random.default_rng(0)
    starts = 100 + np.arange(8) * 3.0
    frame = pd.DataFrame([_trial(p, s, s + 1 + rng.uniform(0, 0.2)) for s in starts])
    row = costs.cost_table(frame, _prices(), startup=0.0).iloc[0]
    assert row.cost_lo < row.cost < row.cost_hi and row.cost_note == ""


def test_trials_under_outside_load_claim_nothing_but_their_time_stays_billed() -> None:
    frame = _trials()
    frame["under_load"] = [False, True, False, None, False, False]
    answer = cost.describe_cost(frame, _prices(), 10.0, startup=STARTUP, runs=RUNS)
    assert "left out 1 of 5 trials that ran under outside load" in answer
    billed = costs.bill(frame, startup=STARTUP, runs=RUNS)
    kept = billed[billed["under_load"].ne(True)]
    table = costs.cost_table(kept, _prices())
    # A's one trial left keeps the share of A's idle time and start-up it was billed with the other.
    assert table.loc[(table["workers"] == 1) & (table["device"] == "cpu"), "billed_s"].item() == pytest.approx(4.0)


# -- refused without a price snapshot --------------------------------------------------------


def test_a_cost_without_its_price_snapshot_is_refused() -> None:
    frame = _trials()
    with pytest.raises(DataError, match="price snapshot"):
        costs.cost_table(frame, None, startup=1.0)
    with pytest.raises(DataError, match="price snapshot"):
        electricity_table(frame, {"m7i.large": 0.1})
    table = costs.cost_table(frame, _prices(), startup=1.0)
    bare = pd.DataFrame(table.to_dict("list"))  # the same numbers, the snapshot dropped
    for figure in (cost.cost_figure, cost.energy_figure):
        with pytest.raises(DataError, match="price snapshot"):
            figure(bare)
    with pytest.raises(DataError, match="price snapshot"):
        describe_cheapest(bare, 10.0)


def test_a_cost_figure_keeps_and_shows_its_snapshot() -> None:
    table = costs.cost_table(_trials(), _prices(), startup=1.0)
    fig = cost.cost_figure(table)
    assert fig.labkit_prices is table.attrs["prices"]
    assert any("a test page" in t.get_text() and "2024-06" in t.get_text() for t in fig.texts)


# -- the price table ---------------------------------------------------------------------------


def test_the_shipped_table_has_cpu_and_gpu_types_of_each_cloud_with_source_and_date() -> None:
    rows = load_prices().rows
    for provider in ("aws", "gcp", "azure"):
        mine = rows[rows["provider"] == provider]
        assert set(mine["device"]) == {"cpu", "gpu"}
        assert {2, 4, 8} <= set(mine.loc[mine["device"] == "cpu", "vcpus"])
    assert (rows["price_per_hour"] > 0).all() and rows["source"].str.len().min() > 0
    assert rows["date"].str.match(r"^\d{4}-\d{2}").all()


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("price_per_hour", 0.0, "row 2, g2x): price_per_hour"),
        ("price_per_hour", -1.0, "price_per_hour"),
        ("price_per_hour", "free", "price_per_hour"),
        ("device", "tpu", "device"),
        ("date", "June 2024", "date"),
        ("source", "", "source"),
        ("gpus", 0, "gpus"),
    ],
)
def test_a_bad_row_is_refused_naming_its_column_and_row(column: str, value: object, words: str) -> None:
    rows = _prices().rows.astype(object)
    rows.loc[1, column] = value
    with pytest.raises(ParameterError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_prices(rows)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    _prices().rows.drop(columns=["source"]).to_csv(path, index=False)
    with pytest.raises(ParameterError, match=r"\['source'\]"):
        load_prices(path)
    with pytest.raises(ParameterError, match="price per kWh"):
        load_prices(electricity_per_kwh=0)
    with pytest.raises(ParameterError, match="instances"):
        load_prices().select(["m7i.larg"])


def test_a_users_own_file_is_read_with_its_comments(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("# my prices\n" + _prices().rows.to_csv(index=False))
    snapshot = load_prices(path, electricity_per_kwh=0.25)
    assert snapshot.origin == str(path) and snapshot.price("c2") == 0.36
    assert "0.25 USD/kWh" in snapshot.describe() and "an estimate, not a bill" in snapshot.describe()


# -- the cheapest configuration that meets a time target ---------------------------------------


def _table(rows: list[tuple[int, float, float, float, float, float, float]]) -> pd.DataFrame:
    """A cost table: per row workers, time (median, lo, hi) and cost (median, lo, hi)."""
    out = pd.DataFrame(
        [
            {
                "workload": "w",
                "point": _point(w),
                "device": "cpu",
                "workers": w,
                "instance": "c2",
                "provider": "p",
                "time_s": t,
                "time_lo": tl,
                "time_hi": th,
                "time_note": "" if not math.isnan(tl) else "interval not available: 3 runs per point",
                "cost": c,
                "cost_lo": cl,
                "cost_hi": ch,
                "unit": "USD per 1e9 flops",
            }
            for w, t, tl, th, c, cl, ch in rows
        ]
    )
    out.attrs["prices"] = _prices()
    return out


def test_the_cheapest_is_named_only_when_its_cost_interval_lies_below_the_others() -> None:
    table = _table(
        [(1, 3.0, 2.8, 3.2, 1.0, 0.9, 1.1), (2, 1.6, 1.5, 1.7, 1.5, 1.3, 1.7), (4, 6.0, 5.0, 7.0, 0.1, 0.05, 0.2)]
    )
    found = cheapest_within(table, 4.0)
    assert sorted(found.meets["workers"]) == [1, 2]  # 4 workers' time is not below the target
    assert found.best.workers == 1 and found.tied.empty
    words = describe_cheapest(table, 4.0)
    assert "Cheapest that meets it: w, 1 cpu worker on c2 (p)" in words
    assert "w, 4 cpu workers: 1.5× the target time (95% interval 1.25–1.75×): over" in words
    assert "w, 2 cpu workers: 0.4× the target time (95% interval 0.375–0.425×): under" in words


def test_overlapping_cost_intervals_cannot_tell_which_is_cheapest() -> None:
    table = _table([(1, 3.0, 2.8, 3.2, 1.0, 0.9, 1.2), (2, 1.6, 1.5, 1.7, 1.1, 1.0, 1.3)])
    found = cheapest_within(table, 4.0)
    assert found.best.workers == 1 and list(found.tied["workers"]) == [2]
    words = describe_cheapest(table, 4.0)
    assert "not told apart" in words and "w, 2 cpu workers on c2" in words
    assert "Cheapest that meets it: w, 1" not in words


def test_a_time_without_interval_or_above_the_target_does_not_meet_it() -> None:
    nan = math.nan
    table = _table([(1, 1.0, nan, nan, 1.0, nan, nan), (2, 3.0, 2.5, 4.5, 0.5, 0.4, 0.6)])
    found = cheapest_within(table, 4.0)
    assert found.best is None and found.meets.empty
    words = describe_cheapest(table, 4.0)
    assert "No configuration is shown to meet the target of 4 s" in words
    assert "an estimate: interval not available" in words and "which holds 1" in words
    with pytest.raises(ParameterError, match="target_s"):
        cheapest_within(table, 0)


# -- electricity, apart from the cloud price ---------------------------------------------------


def _energy_frame() -> pd.DataFrame:
    frame = _trials()
    frame["energy_j"] = [20.0, 30.0, None, None, None, 50.0]
    frame["energy_method"] = ["estimate", "estimate", "below-resolution", "error", "not measured", "nvml-energy"]
    frame["energy_assumption"] = [
        "10 W per busy core (declared)",
        "10 W per busy core (declared)",
        None,
        None,
        None,
        None,
    ]
    return frame


def test_electricity_is_priced_apart_with_its_method_and_an_estimate_is_labelled() -> None:
    table = electricity_table(_energy_frame(), _prices(electricity_per_kwh=0.36)).set_index("workers")
    cpu1, cpu2 = table[table["device"] == "cpu"].loc[1], table[table["device"] == "cpu"].loc[2]
    gpu = table[table["device"] == "gpu"].iloc[0]
    assert cpu1.basis == "estimate" and cpu1.j_per == pytest.approx(25.0)  # median of 20 and 30 J per 1e9 flops
    assert cpu1.electricity == pytest.approx(25.0 / 3.6e6 * 0.36)
    assert cpu2.basis == "not measured" and math.isnan(cpu2.j_per)  # below resolution: never 0 J
    assert gpu.basis == "measured" and gpu.energy_method == "nvml-energy"
    assert not any("cloud" in c or c == "cost" for c in table.columns)  # nothing added to a cloud price
    words = describe_electricity(electricity_table(_energy_frame(), _prices(electricity_per_kwh=0.36)))
    assert "never added to it" in words
    assert "w, 1 cpu worker: an estimate, not a measurement (estimate: 10 W per busy core (declared))" in words
    assert "w, 2 cpu workers: energy not measured (below-resolution, not measured)" in words
    assert "w, 1 gpu worker: measured (nvml-energy, 1 of 1 trials)" in words


def test_electricity_without_a_declared_price_is_not_priced() -> None:
    table = electricity_table(_energy_frame(), _prices())
    assert table["electricity"].isna().all()
    assert "no price per kWh declared" in describe_electricity(table)


# -- notebook 12 -------------------------------------------------------------------------------

SMALL = {
    "workers": [1, 2],
    "workloads": {"matmul": {"n": 256, "chunk": 128}, "array-sum": {"size_mb": 8.0, "chunk_mb": 2.0}},
    "instances": ["m7i.large", "Standard_D2s_v5", "g5.xlarge"],
    "watts_per_core": 12.0,
    "electricity_per_kwh": 0.25,
    "target_s": 5.0,
    "repeats": 5,
    "warmup": 0,
    "startup_repeats": 1,
    "budget_s": 10.0,
    "experiment": "nb12",
}


def test_notebook_declares_the_parameters_the_tests_set() -> None:
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert set(SMALL) | {"store", "price_file", "gpu"} <= set(declared)


def test_notebook_prints_its_answers_from_the_store(tmp_path: Path, notebooks_store) -> None:
    from labkit.analysis.energy import estimate_energy

    result = notebooks_store.run(NOTEBOOK, SMALL, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(notebooks_store.path) as s:
        frame = pd.concat([s.trials_frame(f"nb12/{w}/cpu") for w in SMALL["workloads"]], ignore_index=True)
    assert len(frame) == 2 * 2 * 5 and (frame["status"] == "ok").all()
    prices = load_prices(electricity_per_kwh=0.25).select(SMALL["instances"])
    frame = estimate_energy(frame, SMALL["watts_per_core"])
    assert cost.describe_energy(frame, prices) in printed
    answer = cost.describe_cost(frame, prices, SMALL["target_s"], startup=1.0)  # the time lines need no start-up
    for line in answer.answers:
        if "the target time" in line or line.startswith(("Prices:", "GPU workers: not measured")):
            assert line in printed
    if all_loaded(frame):  # a busy machine: no trial may carry a claim, and the answers say so
        assert NOTHING_LEFT in printed and "Cheapest that meets it" not in printed
    else:
        assert "taken 2024-06" in printed and "an estimate, not a bill" in printed
        assert "Cheapest that meets it" in printed or "No configuration is shown to meet" in printed
        assert "an estimate, not a measurement (estimate: 12 W per busy core" in printed
    assert result.html.read_text().count("<img") >= 2
