"""Data-parallel training: the network learns, two ranks step as one on the same global batch,
NumPy's gradients are PyTorch's, the bytes all-reduced follow the formula, bad parameters and a
missing PyTorch are refused clearly, the conclusions follow their intervals, and notebook 07 runs
headless (with PyTorch, and with PyTorch hidden)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest

import labkit
from labkit import ResultStore
from labkit.common.errors import DataError, ParameterError
from labkit.report import run_notebook
from labkit.studies import training
from labkit.studies.pipeline import analysis as pipeline_analysis
from labkit.studies.training import analysis as analysis
from labkit.studies.training import figures as plots
from labkit.studies.training import tensorflow_run as TF
from labkit.studies.training import workloads as T

try:
    from .nbtext import NOTHING_LEFT, all_loaded, printed_text
except ImportError:
    from nbtext import NOTHING_LEFT, all_loaded, printed_text  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
PARAMS = dict(T.DDPTrain.defaults)
needs_torch = pytest.mark.skipif(not T.torch_available(), reason=f"needs PyTorch: {T.TORCH_HINT}")


@pytest.fixture(scope="module")
def lab():
    with labkit.Lab(workers=2, threads_per_worker=1, dashboard=False) as lab:
        yield lab


@pytest.fixture(scope="module")
def addresses(lab) -> list[str]:
    lab.client.run(T._warm, T.torch_available())
    return sorted(lab.client.scheduler_info()["workers"])


# -- the network and its gradients, without a cluster -------------------------------------


def test_the_split_is_fixed_standardised_and_stratified() -> None:
    d = T.digits_split()
    assert (len(d.y_train), len(d.y_test)) == (1347, 450)
    assert d.x_train.dtype == np.float32 and np.allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.bincount(d.y_test).min() >= 43  # every digit held out (about 45 each)
    assert T.epoch_batches(1347, 500, 0, 1)[0].tolist() == T.epoch_batches(1347, 500, 0, 1)[0].tolist()
    assert len(T.epoch_batches(1347, 500, 0, 1)) == 2  # the remainder of 347 waits for the next shuffle
    assert [len(T.shard(np.arange(63), 2, r)) for r in (0, 1)] == [32, 31]


@needs_torch
def test_numpy_gradients_are_pytorchs_on_the_same_init() -> None:
    torch = T.require_torch()
    d, sizes = T.digits_split(), T.layer_sizes(32, depth=2)
    weights = T.init_weights(sizes, seed=3)
    x, y = d.x_train[:50], d.y_train[:50]
    model = T.build_model(sizes, weights=weights)
    for p, w in zip(model.parameters(), weights):
        assert np.array_equal(p.detach().numpy(), w)  # the one init, in both
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y), reduction="sum") / 64
    loss.backward()
    ours = T.numpy_gradients(weights, x, y, 64)
    assert [g.shape for g in ours] == [tuple(p.shape) for p in model.parameters()]
    for g, p in zip(ours, model.parameters()):
        assert np.allclose(g, p.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert max(float(np.abs(g).max()) for g in ours) > 1e-3  # gradients that say something


# -- training on a real cluster -----------------------------------------------------------


@needs_torch
def test_ddp_learns_well_above_chance_and_counts_its_bytes(lab, addresses) -> None:
    out = T.train_ddp(lab.client, PARAMS, addresses)
    # Reaching the target is the claim; the target (0.95) is far above chance (0.1 for 10 classes).
    assert out["reached_target"] and out["final_accuracy"] >= PARAMS["target_accuracy"]
    assert out["time_to_target_s"] == out["curve"][-1]["t_s"] > 0
    assert out["curve"][0]["step"] == 0 and out["curve"][0]["accuracy"] < 0.5  # the seeded init knows nothing
    assert [p["step"] for p in out["curve"]] == list(range(out["epochs"] + 1))
    assert out["steps"] == out["epochs"] * (1347 // 64)
    assert out["lr"] == pytest.approx(0.05 * 64 / 32)
    count = 64 * 128 + 128 + 128 * 10 + 10
    assert out["parameters"] == count == 9610
    assert out["bytes_allreduced_per_step"] == count * 4 * 2 * (2 - 1) / 2  # ring: 2(n-1)/n of the payload
    assert out["allreduce_payload_bytes"] == count * 4 + 4  # counted: one float32 per parameter, and the loss
    assert len(out["loss_trace"]) == out["steps"] and out["loss_trace"][-1] < out["loss_trace"][0]
    assert 0 < out["time_per_step_s"] < out["time_per_epoch_s"]  # 21 steps an epoch
    assert out["bytes_method"].startswith("computed")
    json.dumps(out)  # plain numbers, storable


@needs_torch
def test_two_ranks_step_as_one_rank_on_the_same_global_batch(lab, addresses) -> None:
    params = {**PARAMS, "batch": 63}  # shards of 32 and 31: the loss scaling must hold for uneven splits
    one = T.train_ddp(lab.client, params, addresses[:1], max_steps=1, keep=True)
    two = T.train_ddp(lab.client, params, addresses, max_steps=1, keep=True)
    start = T.init_weights(T.layer_sizes(128), seed=0)
    assert one["steps"] == two["steps"] == 1
    for w1, w2a, w2b, w0 in zip(one["rank_weights"][0], *two["rank_weights"], start):
        assert np.allclose(w2a, w1, atol=1e-5, rtol=0)
        assert np.array_equal(w2a, w2b)  # both ranks hold the same weights
        assert np.abs(w1 - w0).max() > 1e-4  # and the step moved them
    numpy_one = T.train_numpy(lab.client, params, addresses, max_steps=1, keep=True)
    for w_np, w_torch in zip(numpy_one["rank_weights"][0], one["rank_weights"][0]):
        assert np.allclose(w_np, w_torch, atol=1e-5, rtol=0)
    assert numpy_one["bytes_allreduced_per_step"] == 9610 * 4  # counted: one gradient array set per task


def test_numpy_sgd_through_a_sweep_learns_and_stores_its_curve(lab, tmp_path) -> None:
    sweep = labkit.Sweep(
        "sgd-numpy",
        grid={"workers": [2], "batch": [512]},
        params={"lr_base": 0.1, "max_epochs": 25},
        repeats=1,
        warmup=0,
        experiment="train",
        store=tmp_path / "s.db",
    )
    frame = sweep.run(lab, live=False, monitor=False).frame
    row = frame.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert bool(row["reached_target"]) and row["final_accuracy"] >= 0.95
    assert row["unit"] == "samples" and row["amount"] == row["steps"] * 512
    with ResultStore(tmp_path / "s.db") as store:
        stored = store.trials_frame("train").iloc[0]
    assert stored["curve"] == row["curve"] and stored["curve"][-1]["accuracy"] >= 0.95
    fig = plots.curve_figure(frame, "batch", 0.95, x="step")
    assert len(fig.axes[0].lines) == 2  # one run, one target line


def test_bad_parameters_are_refused_before_any_cluster_work(lab) -> None:
    for params in ({"batch": 0}, {"lr_base": 0.0}, {"max_epochs": 0}, {"hidden": 0}, {"batch": 64.0}):
        with pytest.raises((ParameterError, TypeError)):
            labkit.Sweep("ddp-train", grid={"workers": [1]}, params=params)
    no_cluster = SimpleNamespace()  # any use of lab.client would raise AttributeError, not ParameterError
    with pytest.raises(ParameterError, match="target_accuracy"):
        T.NumpySGD().setup(no_cluster, target_accuracy=1.5)
    with pytest.raises(ParameterError, match=r"sgd-numpy.batch=2000 is not allowed: at most 1347"):
        T.NumpySGD().setup(no_cluster, batch=2000)
    with pytest.raises(ParameterError, match="at least one per rank"):
        T.NumpySGD().setup(lab, batch=1)  # 2 ranks cannot share one image


def _hide(folder: Path, *modules: str) -> str:
    """A PYTHONPATH under which ``import`` of each of ``modules`` fails as where it is not installed.
    (Setting ``sys.modules['torch'] = None`` instead breaks ``import scipy.stats``, whose array-API
    helpers then look up ``torch.Tensor``.)"""
    for module in modules:
        (folder / module).mkdir(parents=True)
        (folder / module / "__init__.py").write_text(
            f"raise ImportError('No module named {module} (hidden for this test)')\n"
        )
    return os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])


# module hidden: (workload class, availability check, note, the note and the error expected)
MISSING = {
    "torch": (
        "DDPTrain",
        "torch_available",
        "torch_note",
        "skipped: PyTorch not installed (pip install 'labkit[torch]')",
        "ddp-train needs PyTorch: pip install 'labkit[torch]' (torch==2.13.0 is the CPU build)",
    ),
    "tensorflow": (
        "TFTrain",
        "tensorflow_available",
        "tensorflow_note",
        "skipped: TensorFlow not installed (pip install -e '.[tensorflow]')",
        "tf-train needs TensorFlow: pip install -e '.[tensorflow]' (tensorflow-cpu 2.21, the CPU build)",
    ),
}


@pytest.mark.parametrize("module", sorted(MISSING))
def test_without_a_framework_the_error_says_how_to_install_it(tmp_path: Path, module: str) -> None:
    workload, available, note_of, note, error = MISSING[module]
    code = (
        "import types, labkit\n"
        "from labkit.studies import training\n"
        f"assert not training.{available}()\n"
        f"print(training.{note_of}())\n"
        "try:\n"
        f"    training.{workload}().setup(types.SimpleNamespace())\n"
        "except labkit.LabkitError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": _hide(tmp_path, module)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == [note, error]


# -- conclusions on trials whose answer is known -------------------------------------------


def _frame(points: list[tuple], workload: str = "ddp-train") -> pd.DataFrame:
    """Trials as the store gives them: per point (params, times to target (None: not reached),
    optional metrics overriding the made-up ones)."""
    rows = []
    for params, times, *extra in points:
        p = {"target_accuracy": 0.95, **params}
        for t in times:
            rows.append(
                {
                    "point": json.dumps({"workload": workload, **p}, sort_keys=True),
                    "workers": p["workers"],
                    "status": "ok",
                    "throughput": 1000.0,
                    "unit": "samples",
                    "time_to_target_s": t,
                    "reached_target": t is not None,
                    "time_per_epoch_s": (t or 3.0) / 10,
                    "epochs": 10 if t else 40,
                    "lr": 0.05 * p["batch"] / 32,
                    "final_accuracy": 0.96 if t else 0.9,
                    "curve": [{"t_s": 0.0, "step": 0, "accuracy": 0.1}, {"t_s": t or 3.0, "step": 1, "accuracy": 0.96}],
                    **(extra[0] if extra else {}),
                }
            )
    return pd.DataFrame(rows)


def _runs(centre: float, n: int = 6, seed: int = 0) -> list[float]:
    return list(centre * (1 + 0.03 * np.random.default_rng(seed).standard_normal(n)))


def test_the_soonest_batch_is_named_only_when_its_interval_lies_below() -> None:
    apart = _frame([({"workers": 2, "batch": 64}, _runs(1.0)), ({"workers": 2, "batch": 256}, _runs(0.5, seed=1))])
    text = analysis.describe_batch(apart)
    assert "Answer: batch 256 reaches the target soonest: its interval (0.4" in text
    close = _frame([({"workers": 2, "batch": 64}, _runs(1.0)), ({"workers": 2, "batch": 256}, _runs(1.0, seed=1))])
    assert "the runs cannot tell which batch reaches the target soonest" in analysis.describe_batch(close)
    few = _frame([({"workers": 2, "batch": 64}, [1.0, 1.1]), ({"workers": 2, "batch": 256}, [0.5, 0.6])])
    assert "without intervals the runs do not establish which batch is soonest" in analysis.describe_batch(few)
    never = apart.copy()
    extra = _frame([({"workers": 2, "batch": 1024}, [None] * 6)])
    text = analysis.describe_batch(pd.concat([never, extra], ignore_index=True))
    assert "batch 1024 (lr 1.6): did not reach the target in any of 6 runs within 40 epochs" in text
    assert "; 1024 did not reach it." in text and "batch 256 reaches the target soonest" in text
    assert "Epochs are not the measure: batch 1024 ran the fastest epochs" not in text  # slowest epochs here
    fast_epochs = _frame(
        [
            ({"workers": 2, "batch": 64}, _runs(1.0)),
            ({"workers": 2, "batch": 1024}, _runs(2.0, seed=4), {"time_per_epoch_s": 0.02, "epochs": 30}),
        ]
    )
    text = analysis.describe_batch(fast_epochs)
    assert "Answer: batch 64 reaches the target soonest" in text
    assert "Epochs are not the measure: batch 1024 ran the fastest epochs (0.02 s) but needed 30 epochs" in text
    partial = _frame(
        [({"workers": 2, "batch": 64}, _runs(1.0)), ({"workers": 2, "batch": 256}, [0.5] * 3 + [None] * 3)]
    )
    text = analysis.describe_batch(partial)
    assert "reached the target in 3 of 6 runs" in text and "cannot tell which batch" in text
    table = analysis.training_table(partial).set_index("batch")
    assert np.isnan(table.loc[256, "ttt_lo"]) and table.loc[256, "reached"] == 3  # 0.5 s × 3: no zero-width interval


def test_workers_and_frameworks_are_compared_by_their_intervals() -> None:
    frame = _frame([({"workers": 1, "batch": 64}, _runs(2.0)), ({"workers": 2, "batch": 64}, _runs(1.0, seed=2))])
    text = analysis.describe_workers(frame)
    assert "Answer for 2 worker(s) against 1: epochs ran: 2" in text and "the target came: 2" in text
    assert "sooner (95% interval" in text
    numpy = _frame([({"workers": 1, "batch": 64}, _runs(8.0, seed=3))], workload="sgd-numpy")
    words = analysis.describe_frameworks(frame, numpy)
    assert re.match(r"1 worker\(s\), batch 64: PyTorch reached the target: (3\.9\d|4\.0\d?)× sooner than NumPy", words)
    assert "bytes each rank sent per step to combine gradients: not measured vs not measured).\nTrials: " in words
    assert f"({analysis.SKIPPED}).\nTrials: " in analysis.describe_frameworks(None, numpy)
    with pytest.raises(ParameterError, match="batch"):
        analysis.describe_workers(frame, batch=999)
    with pytest.raises(DataError, match="one workload"):
        analysis.describe_workers(pd.concat([frame, numpy]))
    with pytest.raises(ParameterError, match="x"):
        plots.curve_figure(frame, "batch", x="seconds")
    fig = plots.curve_figure(frame, "workers", 0.95)
    assert len(fig.axes[0].lines) == len(frame) + 1
    assert len(plots.time_to_target_figure(frame, "workers").axes) == 3


# -- notebook 07 ------------------------------------------------------------------------

SMALL = {
    "workers": [2],
    "batch_sizes": [256, 1024],
    "workers_batch": 1024,
    "max_epochs": 20,
    "pipeline_stages": [2],
    "pipeline_microbatches": [1, 4],
    "pipeline_batch": 64,
    "pipeline_steps": 1,
    "repeats": 2,
    "warmup": 0,
    "budget_s": 10.0,
    "join_timeout_s": 60.0,
}


def test_notebook_has_its_parameters_first_and_stays_thin() -> None:
    import ast

    import papermill

    path = ROOT / "notebooks" / "07_distributed_training.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"] and "lab.close()" in code[-1].source
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    for cell in code:  # no logic but a loop, and the branches on whether PyTorch and TensorFlow are here
        tree = ast.parse(cell.source)
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda, ast.While, ast.Try))]
        tests = {ast.unparse(n.test) for n in ast.walk(tree) if isinstance(n, (ast.If, ast.IfExp))}
        assert tests <= {"torch_ok", "tf_ok"}, tests
    declared = papermill.inspect_notebook(str(path))
    assert set(SMALL) | {"store", "experiment"} <= set(declared) and all(p["help"] for p in declared.values())


@needs_torch
def test_notebook_runs_small_and_prints_its_answers_from_the_store(tmp_path: Path, notebooks_store) -> None:
    store = notebooks_store.path  # shared with the other notebooks: read by experiment
    notebook = ROOT / "notebooks" / "07_distributed_training.ipynb"
    result = notebooks_store.run(notebook, {**SMALL, "experiment": "nb07"}, tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    with ResultStore(store) as s:
        ddp, numpy, pipe = (s.trials_frame(f"nb07/{k}") for k in ("ddp", "numpy", "pipeline"))
    assert len(ddp) == 4 and (ddp["status"] == "ok").all() and ddp["reached_target"].all()
    assert len(numpy) == 2 and (numpy["status"] == "ok").all()
    assert analysis.describe_batch(ddp) in printed
    assert analysis.describe_workers(numpy) in printed
    assert analysis.describe_frameworks(ddp, numpy) in printed
    assert pipeline_analysis.describe_pipeline_vs_data(pipe, ddp) in printed
    assert "PyTorch 2.13" in printed and analysis.SKIPPED not in printed
    with ResultStore(store) as s:
        tf = s.trials_frame("nb07/tensorflow")
    if TF.tensorflow_available():  # TensorFlow beside PyTorch, for real: 2 ranks, 2 runs
        assert len(tf) == 2 and (tf["status"] == "ok").all() and tf["reached_target"].all(), tf["error"].tolist()
        assert training.describe_efficiency({"PyTorch": ddp, "TensorFlow": tf}, batch=1024) in printed
        assert "TensorFlow 2." in printed and training.TF_SKIPPED not in printed
    else:
        assert tf.empty and printed.count(training.TF_SKIPPED) >= 3
    assert result.html.read_text().count("<img") >= 6 + TF.tensorflow_available()


def test_notebook_runs_without_pytorch_and_says_what_it_skipped(tmp_path: Path, monkeypatch) -> None:
    # TensorFlow hidden too: the notebook says what it skipped of both
    monkeypatch.setenv("PYTHONPATH", _hide(tmp_path / "hide", "torch", "tensorflow"))
    store = tmp_path / "s.db"
    params = {**SMALL, "pipeline_microbatches": [2], "repeats": 1, "store": str(store), "experiment": "bare"}
    result = run_notebook(ROOT / "notebooks" / "07_distributed_training.ipynb", params, tmp_path / "out", cwd=tmp_path)
    assert result.ok, result.error
    printed = printed_text(result.notebook)
    assert printed.count(analysis.SKIPPED) >= 4 and printed.count(training.TF_SKIPPED) >= 3
    assert analysis.SKIPPED == MISSING["torch"][3] and training.TF_SKIPPED == MISSING["tensorflow"][3]
    with ResultStore(store) as s:
        numpy = s.trials_frame("bare/numpy")
        assert s.trials_frame("bare/ddp").empty and s.trials_frame("bare/tensorflow").empty
    assert (numpy["status"] == "ok").all()
    assert analysis.describe_workers(numpy) in printed
    if all_loaded(numpy):  # a busy machine: the NumPy runs may carry no claim
        assert NOTHING_LEFT in printed
    else:
        assert f"PyTorch vs NumPy: PyTorch not measured ({analysis.SKIPPED})." in printed


def test_trials_under_outside_load_decide_nothing_in_the_training_answers() -> None:
    # Quiet: 2 workers reach the target no sooner than 1. Twelve loaded 2-worker runs reach it
    # in a third of the time: with them the answer would say "sooner".
    quiet = _frame([({"workers": 1, "batch": 64}, _runs(1.0)), ({"workers": 2, "batch": 64}, _runs(1.0, seed=2))])
    loaded = _frame([({"workers": 2, "batch": 64}, _runs(0.3, n=12, seed=3))])
    both = pd.concat([quiet.assign(under_load=False), loaded.assign(under_load=True)], ignore_index=True)
    text = analysis.describe_workers(both)
    assert "the target came: " in text and "sooner (95% interval" not in text
    assert "left out 12 of 24 trials that ran under outside load" in text
    assert "outside load not measured for 12" in analysis.describe_workers(quiet)
