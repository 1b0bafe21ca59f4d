"""One rank of ``tf-train``: a fresh process, ``python -m labkit.studies.training.tf_rank FOLDER``.

Its Dask task (:func:`labkit.studies.training.tensorflow_run.run_rank`) writes ``spec.json`` (rank,
ranks, parameters) and ``data.npz`` (the digits split) into ``FOLDER`` and sets ``TF_CONFIG``
before starting it. The rank imports TensorFlow (never Keras: the study uses none), writes
``ready``, makes a ``MultiWorkerMirroredStrategy`` (ring all-reduce, each collective bounded by
``join_timeout_s``), sums one value over the ranks (``joined`` once that returns), then trains
with :func:`labkit.studies.training.workloads._loop`, the loop ``ddp-train`` runs, and writes
``result.json``; on an error, ``error.txt`` and exit status 1.

The network is :func:`~labkit.workloads.learning.init_weights`' weights as ``tf.Variable``s
(``W`` shaped (out, in), ``x @ W.T + b``, ReLU between layers). A step: each rank's loss is its
shard's summed cross-entropy over the global batch; ``tf.GradientTape`` gives its gradients, one
all-reduce in the replica context sums them with the loss, and each variable steps by
``lr × gradient`` (``strategy.extended.update``). Held-out accuracy: each rank counts the right
answers of its share of the 450 images, ``strategy.reduce`` sums the counts, so every rank stops
at the same epoch. ``python -m labkit.studies.training.tf_rank --version`` prints TensorFlow's version.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from labkit.studies.training.workloads import _loop, init_weights, layer_sizes, learning_rate, shard


def import_tensorflow() -> Any:
    """TensorFlow, with one intra-op and one inter-op thread, and without Keras (TensorFlow's import
    would otherwise load Keras 3, and Keras scikit-learn, which this rank does not use)."""
    if "keras" not in sys.modules:
        sys.modules["keras"] = None  # type: ignore[assignment]  # an import of keras fails; TF goes on without it
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when the task that started it dies (elsewhere: nothing)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(2)


class Net:
    """The perceptron's weights as variables of ``strategy``, its step and its held-out count."""

    def __init__(self, tf: Any, strategy: Any, weights: list[np.ndarray], lr: float) -> None:
        self.tf, self.strategy, self.lr = tf, strategy, lr
        with strategy.scope():
            self.variables = [tf.Variable(w) for w in weights]
        x, y = tf.TensorSpec([None, weights[0].shape[1]], tf.float32), tf.TensorSpec([None], tf.int64)
        self.step = tf.function(self._step, input_signature=[x, y, tf.TensorSpec([], tf.float32)])
        self.correct = tf.function(self._correct, input_signature=[x, y])
        self.step.get_concrete_function()  # traced now, before the clock starts
        self.correct.get_concrete_function()

    def logits(self, x: Any) -> Any:
        tf, v = self.tf, self.variables
        for i in range(0, len(v), 2):
            x = tf.matmul(x, v[i], transpose_b=True) + v[i + 1]
            if i < len(v) - 2:
                x = tf.nn.relu(x)
        return x

    def _replica_step(self, x: Any, y: Any, scale: Any) -> list[Any]:
        tf = self.tf
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=self.logits(x)))
            loss = loss / scale
        grads = tape.gradient(loss, self.variables)
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, [*grads, loss])

    def _step(self, x: Any, y: Any, scale: Any) -> Any:
        summed = self.strategy.run(self._replica_step, args=(x, y, scale))
        for v, g in zip(self.variables, summed[:-1]):
            self.strategy.extended.update(v, lambda var, d: var.assign_sub(self.lr * d), args=(g,))
        return self.strategy.experimental_local_results(summed[-1])[0]

    def _correct(self, x: Any, y: Any) -> Any:
        tf = self.tf

        def count(a: Any, b: Any) -> Any:
            return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(self.logits(a), axis=1), b), tf.float32))

        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(count, args=(x, y)), axis=None)


def _join(tf: Any, strategy: Any, ranks: int) -> None:
    """Sum 1 over the ranks: returns once every rank has joined."""
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
    if int(total) != ranks:
        raise RuntimeError(f"the start-up all-reduce summed {float(total)}, not {ranks} ranks")


def _leave(tf: Any, strategy: Any, ranks: int) -> None:
    """One more all-reduce before exiting: the last one a rank finished may still be read from its
    server by a peer (TensorFlow's collectives pull), and a server that left would fail it. An error
    here comes after the result is written, and is not one of the run's."""
    try:
        _join(tf, strategy, ranks)
    except Exception:  # noqa: BLE001 - a peer that left first; the run is complete
        pass


def train(folder: Path, spec: dict[str, Any]) -> None:
    """The rank's run, as :func:`~labkit.studies.training.workloads.train_ddp`'s rank returns it, into ``result.json``."""
    tf = import_tensorflow()
    (folder / "ready").write_text(str(os.getpid()))
    p, rank, ranks = spec["params"], spec["rank"], spec["ranks"]
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=float(p["join_timeout_s"]),
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    _join(tf, strategy, ranks)
    (folder / "joined").touch()
    with np.load(folder / "data.npz") as d:
        x, y, xt, yt = (d[f"arr_{i}"] for i in range(4))
    lr = learning_rate(p["batch"], p["lr_base"], p["batch_base"])
    net = Net(tf, strategy, init_weights(layer_sizes(p["hidden"], p["depth"]), p["seed"]), lr)
    held = shard(np.arange(len(yt)), ranks, rank)
    xt_mine, yt_mine = tf.constant(xt[held]), tf.constant(yt[held])

    def step(idx: np.ndarray) -> Any:
        mine = shard(idx, ranks, rank)
        return net.step(x[mine], y[mine], np.float32(len(idx)))

    def evaluate() -> float:
        return float(net.correct(xt_mine, yt_mine)) / len(yt)

    log, steps = _loop(p, len(y), step, evaluate, spec["max_steps"])
    payload = sum(int(np.prod(v.shape)) for v in net.variables) * 4 + 4 if ranks > 1 else 0
    out = log.summary(steps, lr=lr, allreduce_payload_bytes=payload) if rank == 0 else {"steps": steps}
    (folder / "result.part").write_text(json.dumps(out))
    (folder / "result.part").rename(folder / "result.json")  # whole when its task sees it
    if ranks > 1:
        _leave(tf, strategy, ranks)


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print(import_tensorflow().__version__)
        return 0
    folder = Path(argv[0])
    spec = json.loads((folder / "spec.json").read_text())
    _die_with_parent(spec["parent"])
    try:
        train(folder, spec)
    except Exception as e:  # noqa: BLE001 - whatever stopped the rank goes back to its task, in words
        traceback.print_exc()  # into the rank's log
        (folder / "error.txt").write_text(f"{type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(status)  # at once: the runtime's threads are not waited for
