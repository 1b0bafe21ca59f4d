"""The cores' own scaling ceiling (labkit.probes.concurrency): measured, flagged under load, cached, and said
in the conclusion. Real threads, a real CPU hog and a real store; no mocks. The machine may be busy: no
assertion depends on how fast it is, only on the structure of what was measured and on the rule."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd

from labkit.analysis.intervals import ratio_estimate
from labkit.cluster.env import capture, fingerprint
from labkit.experiment.probing import probe_load_watch
from labkit.experiment.results import Results
from labkit.probes import (
    ConcurrencyCeiling,
    HardwareProbe,
    cached_ceiling,
    cached_probes,
    concurrency_ceiling,
    keep_ceiling,
)
from labkit.probes.cache import ceiling_key
from labkit.store import ResultStore

try:
    from .hog import cpu_hog
except ImportError:
    from hog import cpu_hog  # type: ignore[no-redef]


def ceiling(under_load: bool | None, one: float = 50e9, two: float = 99e9) -> ConcurrencyCeiling:
    """A ceiling built directly: 7 rounds around ``one`` flop/s alone and ``two`` with 2 at once."""
    wobble = np.array([0.99, 1.01, 1.0, 0.98, 1.02, 1.0, 0.995])
    return ConcurrencyCeiling(
        n=1024,
        rounds=7,
        rates={1: tuple(one * wobble), 2: tuple(two * wobble[::-1])},
        host="here",
        load={"outside_cpu_percent": 150.0 if under_load else 2.0, "loadavg_1m": 0.4},
        under_load=under_load,
        created="2026-01-01T00:00:00+00:00",
    )


def test_two_at_once_against_one_alone_has_a_ratio_with_an_interval() -> None:
    c = concurrency_ceiling(2, n=512, rounds=7, inner=3, watch=probe_load_watch())
    assert c.ks == [1, 2] and c.rounds == 7
    assert all(len(c.rates[k]) == 7 and min(c.rates[k]) > 0 for k in c.ks)
    e = ratio_estimate(list(c.rates[2]), list(c.rates[1]))
    assert 0.5 < e.value < 2.6, e  # 2 hyperthreads ~1.25x, 2 free cores ~2x, a loaded machine less
    assert math.isfinite(e.lo) and math.isfinite(e.hi) and e.lo < e.hi, e
    assert c.under_load in (True, False) and c.load["loadavg_1m"] is not None
    assert ConcurrencyCeiling.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_a_probe_under_a_cpu_hog_is_flagged_and_neither_kept_nor_served(tmp_path) -> None:
    store = tmp_path / "p.db"
    with cpu_hog(60):
        time.sleep(0.3)  # the interpreter has started and is spinning
        c = concurrency_ceiling(2, n=512, rounds=7, inner=3, watch=probe_load_watch())
    # The hog alone used a share of a core beyond the 25% threshold, and beyond what the
    # counters can move a figure over the probe's window, whatever else ran.
    assert c.under_load is True, c.load
    assert c.load["outside_resolution_percent"] < 50, c.load  # a window long enough to tell
    assert keep_ceiling(store, c) is False
    assert cached_ceiling(store) is None


def test_the_cache_keeps_a_clean_ceiling_and_refuses_a_flagged_record(tmp_path) -> None:
    store = tmp_path / "p.db"
    clean = ceiling(False)
    assert keep_ceiling(store, clean) is True
    assert cached_ceiling(store) == clean
    assert keep_ceiling(store, ceiling(True)) is False and cached_ceiling(store) == clean
    with ResultStore(store) as db:  # a flagged record put there by other means: never served
        db.cache_put(ceiling_key(), ceiling(True).to_dict())
    assert cached_ceiling(store) is None


def test_a_cached_probe_flagged_under_load_is_measured_again_and_not_kept(tmp_path) -> None:
    store = tmp_path / "p.db"
    params = {"array_mb": 2.0, "matmul_n": 64, "repeats": 2}
    key = "probe:" + fingerprint(capture()) + ":" + json.dumps(params, sort_keys=True)
    flagged = HardwareProbe(params=params, created="2020-01-01T00:00:00+00:00", under_load=True)
    with ResultStore(store) as db:
        db.cache_put(key, flagged.to_dict())
    fresh = cached_probes(None, store, **params)
    assert fresh.created > flagged.created and fresh.concurrency is not None
    with ResultStore(store) as db:
        kept = HardwareProbe.from_dict(db.cache_get(key))
    assert kept.under_load is not True and kept == fresh  # the flagged record was replaced, not served


def _results(store, monkeypatch) -> Results:
    """Results of a 1-against-2-worker sweep (synthetic throughputs, 7 repeats each) in a real store,
    the project's store pointed at it."""
    monkeypatch.setenv("LABKIT_STORE", str(store))
    env = capture()
    with ResultStore(store) as db:
        run_id = db.start_run("qs", "matmul", env=env, config={})
    rows = []
    for w, base in ((1, 100.0), (2, 127.0)):
        for r, f in enumerate([0.99, 1.01, 1.0, 0.98, 1.02, 1.005, 0.995]):
            point = json.dumps({"workload": "matmul", "workers": w, "n": 1024}, sort_keys=True)
            rows.append(
                dict(point=point, repeat=r, status="ok", trial_id=len(rows) + 1, run_id=run_id, workers=w, threads=w)
                | dict(throughput=base * f, unit="flop", wall_s=1 / (base * f), under_load=False)
            )
    return Results(pd.DataFrame(rows), experiment="qs", run_id=run_id, store_path=str(store))


def test_the_conclusion_sets_the_speedup_against_the_cached_ceiling(tmp_path, monkeypatch) -> None:
    store = tmp_path / "qs.db"
    results = _results(store, monkeypatch)
    before = results.conclusion()
    assert "2 workers ran" in before
    assert "Against the cores: their own ceiling was not measured (labkit probe measures it)." in before
    keep_ceiling(store, ceiling(False))
    said = results.conclusion()
    assert "not measured (labkit probe" not in said
    line = next(x for x in said.splitlines() if x.startswith("Against the cores:"))
    assert line.startswith("Against the cores: 1.27× (1.2") and "of the 1.98× (" in line, line
    assert "these cores allow at 2 at once: the rest is Dask's overhead and data movement" in line, line


def test_the_conclusion_claims_no_share_where_the_intervals_overlap(tmp_path, monkeypatch) -> None:
    store = tmp_path / "qs.db"
    results = _results(store, monkeypatch)
    keep_ceiling(store, ceiling(False, two=63e9))  # a ceiling of ~1.26x: as fast as the runs
    line = next(x for x in results.conclusion().splitlines() if x.startswith("Against the cores:"))
    assert "the intervals overlap" in line and "Dask's overhead and data movement" not in line, line


def test_the_conclusion_never_uses_a_flagged_ceiling(tmp_path, monkeypatch) -> None:
    store = tmp_path / "qs.db"
    results = _results(store, monkeypatch)
    with ResultStore(store) as db:
        db.cache_put(ceiling_key(), ceiling(True).to_dict())
    assert "their own ceiling was not measured (labkit probe measures it)" in results.conclusion()


def test_the_table_prints_every_column_in_a_narrow_terminal(tmp_path, monkeypatch) -> None:
    table = _results(tmp_path / "qs.db", monkeypatch).table()
    monkeypatch.setenv("COLUMNS", "60")
    with pd.option_context("display.max_columns", 0, "display.width", 60):  # pandas' own terminal setting
        assert "..." in str(pd.DataFrame(table))  # a plain frame hides its middle columns here
        text = str(table)
    assert "..." not in text and all(name in text for name in table.columns), text
    assert "10.0 ms" in text and "127 flop/s" in text, text  # the median time and throughput, not hidden
    assert max(len(line) for line in text.splitlines()) <= 60, text  # wrapped to the terminal, not cut
    assert isinstance(table, pd.DataFrame) and table._repr_html_() == pd.DataFrame(table)._repr_html_()
