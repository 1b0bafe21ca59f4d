"""TensorFlow beside PyTorch (``tf-train``): one and two TensorFlow processes trace the same loss as
each other and as PyTorch, a rank that never joins is named within its timeout and leaves no
process behind, bad parameters and a missing TensorFlow are refused clearly, and the
efficiency answer claims only what its intervals allow. (What a missing TensorFlow says:
tests/test_training.py, beside a missing PyTorch.)

The TensorFlow tests run real TensorFlow processes, small (a few steps, at most 2 ranks); they
are skipped only where TensorFlow is not installed."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import psutil
import pytest

import labkit
from labkit.common.errors import DataError, ParameterError
from labkit.studies import training
from labkit.studies.training import tensorflow_run as R
from labkit.studies.training import workloads as T

ROOT = Path(__file__).resolve().parent.parent
HAS_TF = importlib.util.find_spec("tensorflow") is not None
needs_tf = pytest.mark.skipif(not HAS_TF, reason=f"needs TensorFlow: {R.TF_HINT}")
LOSS_RTOL = 1e-5
"""How far (relative) the loss traces of 1 and 2 processes may differ at the same seed and global
batch: float32 sums taken in another order (differences of about 1e-7 were seen)."""
PARAMS = {**R.TFTrain.defaults, "batch": 63}  # shards of 32 and 31: the loss scaling must hold for uneven splits


@pytest.fixture(scope="module")
def addresses(lab) -> list[str]:
    lab.client.run(T._warm, T.torch_available())
    return sorted(lab.client.scheduler_info()["workers"])


def _rank_processes() -> list[psutil.Process]:
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if R.RANK_MODULE in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _first_loss(params: dict) -> float:
    """The loss of the first global batch at the seeded init, in NumPy: the network both frameworks build."""
    d, sizes = T.digits_split(), T.layer_sizes(params["hidden"], params["depth"])
    idx = T.epoch_batches(len(d.y_train), params["batch"], params["seed"], 1)[0]
    z = T.numpy_forward(T.init_weights(sizes, params["seed"]), d.x_train[idx])[0][-1].astype(np.float64)
    top = z.max(axis=1)
    ce = np.log(np.exp(z - top[:, None]).sum(axis=1)) + top - z[np.arange(len(idx)), d.y_train[idx]]
    return float(ce.sum() / len(idx))


@needs_tf
def test_one_and_two_tensorflow_processes_trace_the_same_loss(lab, addresses) -> None:
    one = R.train_tf(lab.client, PARAMS, addresses[:1], max_steps=6)
    two = R.train_tf(lab.client, PARAMS, addresses, max_steps=6)
    assert one["steps"] == two["steps"] == 6 and len(one["loss_trace"]) == len(two["loss_trace"]) == 6
    np.testing.assert_allclose(two["loss_trace"], one["loss_trace"], rtol=LOSS_RTOL)
    assert one["loss_trace"][0] == pytest.approx(_first_loss(PARAMS), rel=LOSS_RTOL)  # the same network and init
    assert one["loss_trace"][-1] < one["loss_trace"][0]  # and the steps learn
    assert one["time_per_step_s"] > 0 and one["curve"][0]["step"] == 0 and one["lr"] == pytest.approx(0.05 * 63 / 32)
    assert (one["ranks"], two["ranks"], two["parameters"]) == (1, 2, 9610)
    assert two["bytes_allreduced_per_step"] == 9610 * 4 * 2 * (2 - 1) / 2 and one["bytes_allreduced_per_step"] == 0
    assert two["allreduce_payload_bytes"] == 9610 * 4 + 4  # counted: the gradients and the loss, float32
    json.dumps(two)  # plain numbers, storable
    if T.torch_available():  # PyTorch takes the same steps on the same batches
        ddp = T.train_ddp(lab.client, PARAMS, addresses, max_steps=6)
        np.testing.assert_allclose(ddp["loss_trace"], one["loss_trace"], rtol=LOSS_RTOL)
    assert not _rank_processes()


@needs_tf
def test_a_rank_that_never_joins_is_named_and_nothing_is_left_running() -> None:
    # Rank 1's server port was free when chosen and nobody starts rank 1: rank 0 waits for it.
    ports = T.free_ports(2)
    job = R.RankJob(0, ports, ["tcp://127.0.0.1:1001", "tcp://127.0.0.1:1002"], {**PARAMS, "join_timeout_s": 2.0})
    named = re.escape(f"rank 1 (Dask worker tcp://127.0.0.1:1002, TensorFlow server 127.0.0.1:{ports[1]}) never joined")
    with pytest.raises(R.RankError, match=named) as caught:
        R.run_rank(job)
    assert "join_timeout_s" in str(caught.value) and "the run was stopped" in str(caught.value)
    assert not _rank_processes()


def test_bad_parameters_are_refused_before_any_cluster_work() -> None:
    for params in ({"join_timeout_s": 0.5}, {"join_timeout_s": "60"}, {"batch": 0}, {"max_epochs": 0}):
        with pytest.raises((ParameterError, TypeError)):
            labkit.Sweep(R.TFTrain(), grid={"workers": [1]}, params=params)
    no_cluster = SimpleNamespace()  # any use of lab.client would raise AttributeError, not ParameterError
    with pytest.raises(ParameterError, match="tf-train.target_accuracy"):
        R.TFTrain().setup(no_cluster, target_accuracy=0.0)
    with pytest.raises(ParameterError, match=r"tf-train.batch=2000 is not allowed: at most 1347"):
        R.TFTrain().setup(no_cluster, batch=2000)  # refused before TensorFlow is looked for
    assert R.TFTrain.defaults == {**T.DDPTrain.defaults, "join_timeout_s": 60.0}


# -- the efficiency answer, on trials whose answer is known ----------------------------------


def _trials(workload: str, step_s: dict[int, float], ttt: dict[int, float | None], n: int = 6) -> pd.DataFrame:
    """``n`` ok trials per worker count at batch 1024, times spread by 3% around the given medians."""
    rng, rows = np.random.default_rng(len(workload)), []
    for w in step_s:
        for _ in range(n):
            noise = 1 + 0.03 * rng.standard_normal(2)
            point = {"workload": workload, "workers": w, "batch": 1024, "target_accuracy": 0.95}
            reached = ttt[w] is not None
            rows.append(
                {
                    "point": json.dumps(point, sort_keys=True),
                    "workers": w,
                    "status": "ok",
                    "under_load": False,
                    "time_per_step_s": step_s[w] * noise[0],
                    "time_per_epoch_s": step_s[w] * noise[0],
                    "time_to_target_s": ttt[w] * noise[1] if reached else None,
                    "reached_target": reached,
                    "epochs": 12 if reached else 40,
                    "target_accuracy": 0.95,
                }
            )
    return pd.DataFrame(rows)


def test_the_efficiency_answer_follows_its_intervals_and_says_what_was_not_measured() -> None:
    torch = _trials("ddp-train", {1: 0.010, 2: 0.006}, {1: 0.20, 2: 0.12})
    tf = _trials("tf-train", {1: 0.004, 2: 0.008}, {1: 0.30, 2: None})
    table = training.efficiency_table({"PyTorch": torch, "TensorFlow": tf}).set_index(["framework", "workers"])
    assert table.loc[("PyTorch", 1), "eff_step"] == 1.0  # the baseline, by definition
    assert table.loc[("PyTorch", 2), "eff_step"] == pytest.approx(0.010 / (2 * 0.006), rel=0.05)
    lo, hi = table.loc[("PyTorch", 2), ["eff_step_lo", "eff_step_hi"]]
    assert lo < table.loc[("PyTorch", 2), "eff_step"] < hi
    assert np.isnan(table.loc[("TensorFlow", 2), "eff_ttt"])  # not every run reached the target
    text = training.describe_efficiency({"PyTorch": torch, "TensorFlow": tf})
    assert text.startswith(f"The {training.DEFINITION}. The anchor: {training.ANCHOR};")
    assert re.search(r"PyTorch, 2 workers against 1: steps ran: 1\.\d+× faster \(95% interval", text)
    assert re.search(r"scaling efficiency of a step 8\d% \(\d+–\d+%\), of the time to target 8\d% \(", text)
    assert re.search(r"TensorFlow, 2 workers against 1: steps ran: \d(\.\d+)?× slower \(speed ratio", text)
    assert "of the time to target not measured (the target was not reached in every run)" in text
    assert re.search(
        r"2 worker\(s\), TensorFlow against PyTorch: TensorFlow's steps ran: 1\.\d+× slower than PyTorch's", text
    )
    assert "time to target not compared: PyTorch reached the target in all 6 runs, TensorFlow did not reach" in text
    assert re.search(
        r"1 worker\(s\), TensorFlow against PyTorch: TensorFlow's steps ran: \d(\.\d+)?× faster than", text
    )
    skipped = training.describe_efficiency({"PyTorch": torch, "TensorFlow": training.TF_SKIPPED})
    assert f"TensorFlow: not measured ({training.TF_SKIPPED})." in skipped and "against PyTorch" not in skipped
    same = _trials("tf-train", {1: 0.004, 2: 0.004}, {1: 0.30, 2: 0.30})  # 2 workers no faster: no direction
    words = training.describe_efficiency({"TensorFlow": same})
    assert re.search(
        r"steps ran: speed ratio [\d.]+× \(95% interval [\d.]+–[\d.]+×, which holds 1\): the runs cannot tell", words
    )
    assert re.search(r"scaling efficiency of a step (49|50|51)% \(", words)
    with pytest.raises(ParameterError, match="batch"):
        training.describe_efficiency({"PyTorch": torch}, batch=64)
    with pytest.raises(DataError):
        training.efficiency_table({"PyTorch": training.SKIPPED})
    fig = training.efficiency_figure({"PyTorch": torch, "TensorFlow": tf})
    assert len(fig.axes) == 3 and len(fig.axes[2].get_legend().get_texts()) == 3  # two frameworks and 100%
