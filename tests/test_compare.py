"""`labkit compare`: a change is flagged only beyond run-to-run noise, and across setups it says so.

First the statistics on simulated repeats (NumPy only): identical distributions flag at
most 5% of points, a 30% shift with 5 repeats is flagged, and fewer than 3 runs a side is
never judged. Then real sweeps of the ``synthetic`` workload (sleeping tasks) on a real
2-worker cluster: two sweeps of the same code (A/A) flag nothing; the same sweep with
``work_s`` 1.3 times longer, compared with ``--ignore work_s``, is flagged slower at every
point; a store written by a cluster of another shape is labelled "across environments"
with both stores' hardware probes side by side. Last, the pages open in Chromium offline
with every figure decoded.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import labkit
from labkit.analysis.compare import NO_DIRECTION, compare_samples, compare_trials
from labkit.cli import main as cli_main
from labkit.common.errors import ParameterError
from labkit.report.compare import add_compare_parser, compare, compare_command, format_report, write_page
from labkit.store import ResultStore, Trial

try:  # tests/ is a plain folder today; keep working if it becomes a package
    from . import browser as b  # type: ignore[no-redef]
except ImportError:
    import browser as b  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(600)

FLAGS = ("slower", "faster")
# 2 worker counts x 2 serial fractions, 7 timed runs each: about 10 s a sweep on 2 busy cores.
GRID = {"workers": [1, 2], "serial_fraction": [0.0, 0.3]}
WORK_S = 0.25
REPEATS = 7


def _timings(rng: np.random.Generator, n: int) -> np.ndarray:
    """Run times as a busy machine gives them: lognormal spread (4%) and a long right tail."""
    return 0.2 * rng.lognormal(0.0, 0.04, n) + rng.exponential(0.01, n)


def _quiet(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """Run times with 5% lognormal noise, as labkit.analysis.intervals simulates them."""
    return scale * 0.2 * rng.lognormal(0.0, 0.05, n)


def _flag_rate(out: pd.DataFrame) -> float:
    return float(out["verdict"].isin(FLAGS).mean())


# -- the statistics, on simulated repeats ---------------------------------------------------


def test_identical_distributions_flag_at_most_5_percent_of_points() -> None:
    rng, n = np.random.default_rng(14), 7
    # Each point its own family (no correction helps) and no margin: the test's own rate.
    alone = [
        _flag_rate(compare_samples({"p": (_timings(rng, n), _timings(rng, n))}, margin=0.0, seed=i)) for i in range(400)
    ]
    assert np.mean(alone) <= 0.05, f"{np.mean(alone):.1%} of identical points flagged"
    # As a comparison runs: families of 4 points, the default margin.
    families = [
        compare_samples({f"p{j}": (_timings(rng, n), _timings(rng, n)) for j in range(4)}, seed=i) for i in range(50)
    ]
    assert np.mean([_flag_rate(f) for f in families]) <= 0.05


@pytest.mark.parametrize(("scale", "verdict"), [(1.3, "slower"), (1 / 1.3, "faster")])
def test_a_30_percent_shift_with_5_repeats_is_flagged(scale: float, verdict: str) -> None:
    rng = np.random.default_rng(30)
    families = [
        compare_samples({f"p{j}": (_quiet(rng, 5), _quiet(rng, 5, scale)) for j in range(4)}, seed=i) for i in range(50)
    ]
    points = pd.concat(families)
    assert (points["verdict"] == verdict).mean() >= 0.95, points["verdict"].value_counts()
    _flags_agree_with_intervals(points, margin=0.05)
    assert points.loc[points["verdict"] == verdict, "ratio"].median() == pytest.approx(scale, rel=0.08)


def _flags_agree_with_intervals(points: pd.DataFrame, margin: float, alpha: float = 0.05) -> None:
    """A flag always has its corrected test rejecting and its whole interval beyond the margin."""
    slower, faster = points[points["verdict"] == "slower"], points[points["verdict"] == "faster"]
    assert (slower["lo"] > 1 + margin).all() and (faster["hi"] < 1 / (1 + margin)).all()
    assert (points.loc[points["verdict"].isin(FLAGS), "p_adj"] < alpha).all()


def test_fewer_than_3_runs_is_never_judged_and_has_no_interval() -> None:
    out = compare_samples({"two": ([1.0, 1.01], [2.0, 2.02]), "one": ([1.0], [3.0])})
    assert (out["verdict"] == "not enough runs").all()
    assert out[["lo", "hi", "p", "p_adj"]].isna().all().all()
    assert out.loc["one", "ratio"] == pytest.approx(3.0)  # the estimate is shown, unjudged
    assert "fewer than 3" in out.loc["two", "note"]


def test_3_or_4_runs_are_tested_but_not_flagged_without_an_interval() -> None:
    out = compare_samples({"p": ([1.0, 1.01, 0.99, 1.02], [2.0, 2.02, 1.98, 2.01])})
    row = out.loc["p"]
    assert row["verdict"] == "no change detected" and math.isnan(row["lo"]) and math.isnan(row["hi"])
    assert row["p"] == pytest.approx(2 / 70)  # the rank test's smallest p with 4 and 4 runs
    assert "repeats >= 5" in row["note"]


def test_identical_repeats_get_no_zero_width_interval() -> None:
    out = compare_samples({"p": ([1.0] * 6, [1.0] * 6)})
    assert out.loc["p", "verdict"] == "no change detected" and math.isnan(out.loc["p", "lo"])


def test_intervals_widen_with_the_number_of_points_compared() -> None:
    rng = np.random.default_rng(3)
    pairs = {f"p{j}": (_quiet(rng, 7), _quiet(rng, 7, 1.2)) for j in range(8)}
    one = compare_samples({"p0": pairs["p0"]})
    eight = compare_samples(pairs)
    assert one.loc["p0", "confidence"] == pytest.approx(0.95) and eight["confidence"].iloc[0] == pytest.approx(
        1 - 0.05 / 8
    )
    assert eight.loc["p0", "hi"] - eight.loc["p0", "lo"] > one.loc["p0", "hi"] - one.loc["p0", "lo"]
    assert eight.loc["p0", "p_adj"] >= one.loc["p0", "p_adj"]


def test_a_change_inside_the_margin_is_same_within_margin() -> None:
    rng = np.random.default_rng(5)
    a = 0.2 * rng.lognormal(0.0, 0.005, 20)
    out = compare_samples({"p": (a, a * 1.01)}, margin=0.05)
    assert out.loc["p", "verdict"] == "same within margin"
    assert 1 / 1.05 <= out.loc["p", "lo"] < out.loc["p", "hi"] <= 1.05


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"alpha": 0.0}, "alpha"), ({"alpha": 0.7}, "alpha"), ({"margin": -0.1}, "margin")]
)
def test_bad_options_are_refused(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError) as e:
        compare_samples({"p": ([1.0] * 3, [1.0] * 3)}, **kwargs)
    assert e.value.name == name


# -- bad input, on stores written through the store's own API ---------------------------------


def _store(
    path: Path,
    experiment: str,
    times: dict[float, list[float]],
    *,
    threads: int = 1,
    status: str = "ok",
    loaded: dict[float, Any] | None = None,
) -> Path:
    """A store with one run of ``synthetic`` trials: ``{work_s: [wall_s, ...]}``, one point each;
    ``loaded`` gives a point's trials an ``under_load`` flag (True, False or None), as a sweep does."""
    parts = {"machine": {"hostname": "h"}, "versions": {"dask": "1"}, "shape": {"threads_per_worker": threads}}
    key = f"fp-threads-{threads}"
    with ResultStore(path) as store:
        store.add_fingerprint(key, parts)
        run = store.start_run(experiment, "synthetic", env={}, config={})
        for work_s, walls in times.items():
            point = f'{{"work_s": {work_s}, "workers": 1, "workload": "synthetic"}}'
            for i, wall in enumerate(walls):
                trial = Trial(
                    run_id=run,
                    experiment=experiment,
                    workload="synthetic",
                    point=point,
                    params={"work_s": work_s},
                    repeat=i,
                    workers=1,
                    threads=threads,
                    backend=None,
                    status=status,
                    wall_s=wall,
                    amount=1.0,
                    unit="items",
                    fingerprint=key,
                    metrics={"under_load": loaded[work_s]} if loaded and work_s in loaded else {},
                )
                store.add_trial(trial)
        store.end_run(run)
    return path


def test_bad_input_is_refused_before_any_work(tmp_path: Path) -> None:
    a = _store(tmp_path / "a.db", "x", {0.1: [0.1, 0.11, 0.12]})
    _store(tmp_path / "a.db", "other", {0.5: [0.5, 0.51, 0.52]})
    _store(tmp_path / "a.db", "both", {0.1: [0.1, 0.11, 0.12], 0.5: [0.5, 0.51, 0.52]})
    cases = [
        ([str(tmp_path / "missing.db"), f"{a}::x"], "A"),
        ([f"{a}::x", f"{a}::nope"], "B"),
        ([f"{a}::x", f"{a}::x::0123456789ab"], "B"),
        ([f"{a}::x", f"{a}::other"], "B"),  # no point in common
        ([f"{a}::x", f"{a}::x"], "B"),  # the same trials twice
        ([f"{a}::x", f"{a}::other", "--ignore", "nope"], "ignore"),
        ([f"{a}::x", f"{a}::both", "--ignore", "work_s"], "ignore"),  # would pool two points of B
        ([f"{a}::x", f"{a}::other", "--margin", "2"], "margin"),
        ([f"{a}::x", f"{a}::other", "--alpha", "0"], "alpha"),
        ([f"{a}::x:::", f"{a}::other"], "A"),
        ([f"{a}::x", f"{a}::other", "--html", str(tmp_path)], "html"),
    ]
    for argv, name in cases:
        page = [] if "--html" in argv else ["--html", str(tmp_path / "out" / "page.html")]
        with pytest.raises(ParameterError) as e:
            compare_command([*argv, *page])
        assert e.value.name == name, (argv, e.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "missing.db").exists()
    # Its message says what is allowed
    with pytest.raises(ParameterError, match=r"an experiment of .*a\.db: both, other, x"):
        compare(f"{a}::x", f"{a}::nope")


def test_only_ok_trials_count_and_the_others_are_counted(tmp_path: Path) -> None:
    a = _store(tmp_path / "a.db", "x", {0.1: [0.1, 0.11, 0.12, 0.1, 0.105]})
    _store(tmp_path / "a.db", "x", {0.1: [9.0, 9.0]}, status="timeout")
    b = _store(tmp_path / "b.db", "x", {0.1: [0.1, 0.11, 0.12, 0.1, 0.105], 0.2: [0.2, 0.21, 0.22]})
    with ResultStore(a) as sa, ResultStore(b) as sb:
        c = compare_trials(sa.trials_frame("x"), sb.trials_frame("x"))
    assert c.points["n_a"].tolist() == [5] and c.left_out == {"A": {"timeout": 2}}
    assert c.only_b == ["synthetic, workers=1, work_s=0.2"] and c.only_a == []
    assert "2 trials not ok left out (timeout 2)" in c.summary() and "1 point only in B" in c.summary()


def test_another_shape_without_probes_says_not_measured(tmp_path: Path) -> None:
    a = _store(tmp_path / "a.db", "x", {0.1: [0.1, 0.11, 0.12, 0.1, 0.105]})
    b = _store(tmp_path / "b.db", "x", {0.1: [0.1, 0.11, 0.12, 0.1, 0.105]}, threads=2)
    report = compare(f"{a}::x", f"{b}::x")
    assert report.setup.startswith("across environments") and "threads per worker 1 in A, 2 in B" in report.setup
    assert report.a.probe is None and report.b.probe is None
    assert report.comparison.points["loaded_a"].tolist() == [None]  # these stores kept no load figures
    assert "A: load not measured; B: load not measured" in format_report(report)
    page = write_page(report, tmp_path / "page.html").read_text()
    assert "Hardware probes, side by side" in page and "no `labkit probe` result" in page


# -- outside load, the Holm family and the exit status, on stores written through the store's API ---


def _walls(seed: int, scale: float = 1.0, n: int = 7) -> list[float]:
    """``n`` run times near ``0.2 * scale`` s with 2% spread (a fixed seed: the same every time)."""
    return (scale * 0.2 * np.random.default_rng(seed).lognormal(0.0, 0.02, n)).tolist()


def _pair(tmp_path: Path, scale: float, **loaded: Any) -> tuple[str, str]:
    """A (two points, quiet) and B (the same points, times x ``scale``), in one store; ``loaded``
    as for :func:`_store`, per side: ``a={0.1: True}``."""
    store = tmp_path / "pair.db"
    _store(store, "a", {0.1: _walls(1), 0.2: _walls(2)}, loaded=loaded.get("a"))
    _store(store, "b", {0.1: _walls(3, scale), 0.2: _walls(4, scale)}, loaded=loaded.get("b"))
    return f"{store}::a", f"{store}::b"


def test_a_point_whose_trials_ran_under_load_claims_no_direction_in_the_table_and_page(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, 1.5, a={0.1: False, 0.2: None}, b={0.1: False, 0.2: True})
    report = compare(a, b)
    points = report.comparison.points.set_index("label")
    # 50% slower at both points; the one whose B trials all ran under outside load is not flagged
    assert points.loc["synthetic, workers=1, work_s=0.1", "verdict"] == "slower"
    loaded = points.loc["synthetic, workers=1, work_s=0.2"]
    assert loaded["verdict"] == NO_DIRECTION and not loaded["family"] and math.isnan(loaded["lo"])
    assert loaded["ratio"] == pytest.approx(1.5, rel=0.05)  # the estimate is still stated
    said = "B: 7 of 7 trials ran under outside load: no direction claimed"
    text = format_report(report)
    table = text.split(report.comparison.summary())[0]
    assert said in table  # in the table itself, not only in the notes under it
    assert "not measured; yes (7 of 7 trials)" in table  # A's load at that point was not measured
    page = write_page(report, tmp_path / "page.html").read_text()
    assert f"<td>{said}</td>" in page and f"'{NO_DIRECTION}'>{said}</span>" in page
    assert "B: 7 of 14 trials ran under outside load and were left out" in report.comparison.summary()
    assert "A: outside load not measured for 7 of 14 trials" in report.comparison.summary()


def test_unknown_load_is_said_not_measured_never_no(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, 1.0, a={0.1: None, 0.2: None}, b={0.1: False, 0.2: None})
    table = compare(a, b)
    points = table.comparison.points
    assert points["load_a"].tolist() == ["not measured", "not measured"]
    assert points["load_b"].tolist() == ["no", "not measured"]
    text = format_report(table)
    assert "A: load not measured" in text and "not measured; no" in text and "no; " not in text


def test_a_comparison_made_only_of_loaded_trials_claims_nothing(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, 1.5, b={0.1: True, 0.2: True})
    c = compare(a, b).comparison
    assert (c.points["verdict"] == NO_DIRECTION).all() and c.tested == 0 and c.flagged("any") == 0
    assert "B: 14 of 14 trials ran under outside load: no direction claimed." in c.summary()
    assert "this comparison claims nothing" in c.summary()
    assert "flagged only when" not in c.summary()  # no test was made, so none is described


def test_the_holm_family_counts_only_points_that_can_be_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    pairs = {"p": (_quiet(rng, 7), _quiet(rng, 7, 1.2)), "few": (_quiet(rng, 4), _quiet(rng, 4, 1.2))}
    alone = compare_samples({"p": pairs["p"]})
    both = compare_samples(pairs)  # 4 runs a side: tested, but without an interval it cannot be flagged
    assert not both.loc["few", "family"] and math.isnan(both.loc["few", "p_adj"]) and both.loc["few", "p"] < 0.05
    assert both["confidence"].iloc[0] == pytest.approx(0.95)
    assert both.loc["p", ["lo", "hi", "p_adj"]].tolist() == pytest.approx(
        alone.loc["p", ["lo", "hi", "p_adj"]].tolist()
    )
    # Trials under outside load leave a point out of the family too: it does not widen the other's interval
    quiet_a, quiet_b = _pair(tmp_path, 1.5)
    quiet = compare(quiet_a, quiet_b).comparison
    (tmp_path / "loaded").mkdir()
    loaded_a, loaded_b = _pair(tmp_path / "loaded", 1.5, b={0.2: True})
    loaded = compare(loaded_a, loaded_b).comparison
    assert quiet.tested == 2 and quiet.points["confidence"].iloc[0] == pytest.approx(1 - 0.05 / 2)
    assert loaded.tested == 1 and loaded.points["confidence"].iloc[0] == pytest.approx(0.95)
    width = lambda c: float(c.points["hi"].iloc[0] - c.points["lo"].iloc[0])  # noqa: E731
    assert width(loaded) < width(quiet)
    assert "Holm's correction over the 1 point that can be flagged" in loaded.summary()


def _labkit(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``labkit ARGV...`` as a shell runs it (``python -m labkit``)."""
    return subprocess.run(
        [sys.executable, "-m", "labkit", *argv], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


@pytest.mark.parametrize(
    ("case", "scale", "loaded", "exits"),
    [
        ("A/A", 1.0, {}, {"slower": 0, "any": 0, "none": 0}),
        ("B 30% slower", 1.3, {}, {"slower": 1, "any": 1, "none": 0}),
        ("B 30% faster", 1 / 1.3, {}, {"slower": 0, "any": 1, "none": 0}),
        ("B slower, all under load", 1.3, {"b": {0.1: True, 0.2: True}}, {"slower": 0, "any": 0}),
    ],
)
def test_the_exit_status_is_a_regression_gate(
    tmp_path: Path, case: str, scale: float, loaded: dict, exits: dict[str, int]
) -> None:
    a, b = _pair(tmp_path, scale, **loaded)
    for fail_on, status in exits.items():
        page = tmp_path / f"{fail_on}.html"
        default = [] if fail_on == "slower" else ["--fail-on", fail_on]  # slower is the default
        done = _labkit("compare", a, b, "--html", str(page), *default, cwd=tmp_path)
        assert done.returncode == status, (case, fail_on, done.stdout[-2000:], done.stderr[-2000:])
        assert page.is_file() and done.stderr.strip() == "", done.stderr  # a flag is not an error
        assert ("exit 1:" in done.stdout) == bool(status)


def test_a_bad_fail_on_is_refused_in_one_line_before_any_work(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, 1.3)
    page = tmp_path / "out" / "page.html"
    done = _labkit("compare", a, b, "--fail-on", "slowest", "--html", str(page), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("labkit: --fail-on='slowest' is not allowed"), line
    assert all(word in line for word in ("slower", "any", "none")), line
    assert not page.parent.exists()  # refused before any work
    with pytest.raises(ParameterError) as e:
        compare_command([a, b, "--fail-on", "", "--html", str(page)])
    assert e.value.name == "--fail-on"


# -- real sweeps on a real cluster ---------------------------------------------------------------


def _sweep(lab: labkit.Lab, store: Path, experiment: str, work_s: float, repeats: int = REPEATS) -> None:
    params = {"work_s": work_s}
    sweep = labkit.Sweep(
        "synthetic", GRID, params=params, repeats=repeats, warmup=1, experiment=experiment, store=store
    )
    sweep.run(lab, live=False)


def _probe(lab: labkit.Lab, store: Path) -> None:
    """Small probes of both workers (the sweep may have left the lab at one), cached in ``store``."""
    from labkit.probes import cached_probes

    lab.scale(2)
    cached_probes(lab, str(store), array_mb=4, matmul_n=128, repeats=2, task_counts=(1, 5, 10), network_duration=0.1)


@pytest.fixture(scope="module")
def stores(lab: labkit.Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """``one.db``: A/A experiments ``a`` and ``b`` and ``slow`` (work_s x 1.3), on the session lab;
    ``two.db``: experiment ``a`` on a lab whose workers have another memory limit. Both probed."""
    folder = tmp_path_factory.mktemp("compare")
    one, two = folder / "one.db", folder / "two.db"
    # In rounds (each resumes its experiment with more repeats), so a change of load on this
    # shared machine falls on A, B and the slowdown alike instead of on one of them.
    for repeats in (3, 5, REPEATS):
        for experiment, work_s in (("a", WORK_S), ("b", WORK_S), ("slow", WORK_S * 1.3)):
            _sweep(lab, one, experiment, work_s, repeats)
    _probe(lab, one)
    with labkit.Lab(workers=2, threads_per_worker=1, memory_limit="1GiB", dashboard=False) as other:
        _sweep(other, two, "a", WORK_S)
        _probe(other, two)
    assert other.closed
    yield one, two


def test_a_a_flags_nothing(stores: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, _ = stores
    assert (
        cli_main(["compare", f"{one}::a", f"{one}::b", "--html", str(tmp_path / "aa.html")]) == 0
    )  # as `labkit compare`
    out = capsys.readouterr().out
    report = compare(f"{one}::a", f"{one}::b")
    points = report.comparison.points
    print(f"\n{out}")
    assert (
        len(points) == 4 and (points["n_a"] == _runs(points, "a")).all() and (points["n_b"] == _runs(points, "b")).all()
    )
    assert not points["verdict"].isin(FLAGS).any(), points[["label", "ratio", "lo", "hi", "p_adj", "verdict"]]
    assert report.same_setup and "same setup" in out
    claimed = points[points["verdict"] != NO_DIRECTION]  # on this shared machine some trials may run under load
    assert (claimed["hi"] > claimed["lo"]).all()  # every interval has a width


def _runs(points: pd.DataFrame, side: str) -> list[int]:
    """The runs behind each point's medians: the admitted ones, or every ok one where no direction is claimed."""
    loaded = [0 if k is None else int(k) for k in points[f"loaded_{side}"]]
    return [REPEATS if v == NO_DIRECTION else REPEATS - k for v, k in zip(points["verdict"], loaded)]


def test_an_injected_30_percent_slowdown_is_flagged_wherever_its_interval_decides(
    stores: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, _ = stores
    html = tmp_path / "slow.html"
    status = compare_command([f"{one}::a", f"{one}::slow", "--ignore", "work_s", "--html", str(html)])
    out = capsys.readouterr().out
    print(f"\n{out}")
    report = compare(f"{one}::a", f"{one}::slow", ignore=["work_s"])
    points = report.comparison.points
    # Points whose trials ran under outside load (this machine is shared) claim nothing; no point
    # says faster or the same; one that is not flagged has an interval too wide to decide (an
    # outlier trial on a busy machine widens it), which covers the injected slowdown.
    shown = points[["label", "ratio", "lo", "hi", "p_adj", "verdict"]]
    claimed = points[points["verdict"] != NO_DIRECTION]
    assert claimed["verdict"].isin(["slower", "no change detected"]).all(), shown
    undecided = claimed[claimed["verdict"] != "slower"]
    assert ((undecided["lo"] < 1.3) & (undecided["hi"] > 1.1)).all(), shown
    claimed = claimed[claimed["verdict"] == "slower"]
    assert status == (1 if len(claimed) else 0)  # the gate fails on a flagged slowdown
    _flags_agree_with_intervals(points, margin=0.05)
    # 30% more sleep; what a run adds besides its sleep is the same on both sides, so a little less
    # (points estimated from trials under outside load measured that load too: no bound on them)
    assert ((claimed["ratio"] > 1.1) & (claimed["ratio"] < 1.45)).all(), claimed["ratio"]
    assert "Not matched on work_s (A: 0.25; B: 0.325)" in report.comparison.summary()
    assert ("slower" in out or NO_DIRECTION in out) and html.is_file()
    # Without --ignore there is nothing to compare, and it says how to match
    with pytest.raises(ParameterError, match="--ignore"):
        compare(f"{one}::a", f"{one}::slow")


def test_another_cluster_shape_is_labelled_with_both_probes(stores: tuple[Path, Path], tmp_path: Path) -> None:
    one, two = stores
    report = compare(f"{one}::a", f"{two}::a")
    assert not report.same_setup
    assert report.setup.startswith("across environments"), report.setup
    assert "memory limit per worker" in report.setup and "1.00 GiB in B" in report.setup
    assert report.a.probe is not None and report.b.probe is not None
    points = report.comparison.points
    assert (points["fingerprints_a"] != points["fingerprints_b"]).all()
    page = write_page(report, tmp_path / "across.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "across environments" in page and "Hardware probes, side by side" in page
    row = re.search(r"<td>client</td>\s*<td>copy bandwidth</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", page)
    assert row and all(v.endswith("GB/s") for v in row.groups()), row and row.groups()


def test_the_subcommand_parser_runs_the_comparison(stores: tuple[Path, Path], tmp_path: Path) -> None:
    import argparse

    one, _ = stores
    parser = argparse.ArgumentParser(prog="labkit")
    add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", f"{one}::a", f"{one}::b", "--html", str(tmp_path / "p.html")])
    assert args.func(args) == 0 and (tmp_path / "p.html").is_file()


def test_without_html_the_page_goes_next_to_a_store_wherever_it_runs(
    stores: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    one, _ = stores
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    page = one.parent / "compare.html"
    page.unlink(missing_ok=True)
    assert cli_main(["compare", f"{one}::a", f"{one}::b", "--fail-on", "none"]) == 0
    assert page.is_file() and "Points" in page.read_text(encoding="utf-8")
    assert f"page: {page}" in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran


@pytest.mark.browser
def test_the_pages_render_offline_with_every_figure(stores: tuple[Path, Path], tmp_path: Path) -> None:
    b.require_chromium()
    one, two = stores
    pages = [
        write_page(compare(f"{one}::a", f"{one}::slow", ignore=["work_s"]), tmp_path / "slow.html"),
        write_page(compare(f"{one}::a", f"{two}::a"), tmp_path / "across.html"),
    ]
    attempted: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("file:", "data:")):
            r.continue_()
        else:
            attempted.append(url)
            r.abort()

    with b.chromium() as browser:
        for html in pages:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            try:
                page.route("**/*", route)
                page.goto(html.as_uri(), wait_until="load")
                images = page.evaluate(
                    "[...document.images].map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)])"
                )
                assert len(images) == 5, images  # the overview and one figure per point
                assert all(done and width > 0 and src.startswith("data:image/png") for done, width, src in images)
                page.screenshot(path=str(tmp_path / f"{html.stem}.png"), full_page=True)
            finally:
                page.close()
    assert attempted == [], f"the page asked the network for {attempted}"
