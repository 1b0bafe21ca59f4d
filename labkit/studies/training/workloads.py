"""Data-parallel training to a target accuracy: PyTorch ranks joined by gloo, or NumPy SGD through the client.

The network is defined here once (:func:`layer_sizes`, :func:`init_weights`, :func:`build_model`):
a perceptron 64-``hidden``-10 (``depth`` ReLU hidden layers) on scikit-learn's bundled digits,
standardised, split once with a fixed seed into 1347 training and 450 held-out images.
A trial is one training run from the seeded init until the held-out accuracy reaches
``target_accuracy`` or ``max_epochs`` epochs are spent. A step takes a global batch of ``batch``
images (an epoch: ``1347 // batch`` steps over a seeded shuffle) split over the ranks; each rank's
loss is its shard's summed cross-entropy over ``batch``, so the summed gradients are those of
one rank on the whole batch. The learning rate follows the linear scaling rule (Goyal et al.,
2017): ``lr = lr_base * batch / batch_base``, plain SGD.

- ``ddp-train``: one PyTorch rank per Dask worker (each task pinned to its worker),
  ``torch.distributed`` with gloo on 127.0.0.1 (a fresh port per run); after each backward the
  flattened gradients and the shard's loss go through one ``all_reduce`` (sum).
- ``sgd-numpy``: the same network in NumPy; each step the client sends the weights to one task
  per worker, each returns its shard's gradients, and the client sums them and steps.
- ``tf-train`` (:mod:`labkit.studies.training.tensorflow_run`): the same network and steps in
  TensorFlow, one fresh TensorFlow process per worker, through :func:`_loop` as here.

The wall time includes everything (starting the process group, the held-out evaluation after
each epoch). ``time_to_target_s`` runs from the first step to the end of the first evaluation at
or above the target (None when not reached); ``time_per_epoch_s`` is the median time of an
epoch's steps, evaluation excluded, and ``time_per_step_s`` the median of each epoch's time over
its steps. ``loss_trace`` is the global batch's loss at each step, before its update (None where
not measured: ``sgd-numpy``). ``bytes_allreduced_per_step``, what one rank sends per step
to combine gradients, is computed for ``ddp-train`` as parameters × 4 bytes × 2(n-1)/n (a ring
all-reduce; gloo may choose another algorithm), beside the payload counted
(``allreduce_payload_bytes``: the gradients and one float32 loss); for ``sgd-numpy`` it is counted (the gradients a task returns).

>>> layer_sizes(128), parameter_count(layer_sizes(128))
((64, 128, 10), 9610)
>>> ring_allreduce_bytes(9610, 2), ring_allreduce_bytes(9610, 1)
(38440.0, 0.0)
>>> learning_rate(256, lr_base=0.05, batch_base=32)
0.4
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.workloads.learning import (  # noqa: F401  (names the training study shows)
    TORCH_HINT,
    Split,
    digits_split,
    init_weights,
    layer_sizes,
    parameter_count,
    require_torch,
    torch_available,
)
from labkit.workloads.registry import BaseWorkload, Work


def build_model(sizes: tuple[int, ...], seed: int = 0, weights: list[np.ndarray] | None = None) -> Any:
    """The network as a ``torch.nn.Sequential`` of Linear and ReLU layers, with :func:`init_weights`."""
    torch = require_torch()
    layers: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [torch.nn.Linear(fan_in, fan_out)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights if weights is not None else init_weights(sizes, seed)):
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    return model


def learning_rate(batch: int, lr_base: float, batch_base: int) -> float:
    """The linear scaling rule: ``lr_base * batch / batch_base``."""
    return lr_base * batch / batch_base


def ring_allreduce_bytes(parameters: int, ranks: int, itemsize: int = 4) -> float:
    """Bytes one rank sends in a ring all-reduce of ``parameters`` values: ``2(n-1)/n`` of the payload."""
    return parameters * itemsize * 2.0 * (ranks - 1) / ranks


def epoch_batches(n_train: int, batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The global batches of one epoch: a shuffle seeded by (seed, epoch), the remainder dropped."""
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    return [order[s : s + batch] for s in range(0, n_train - batch + 1, batch)]


def shard(indices: np.ndarray, ranks: int, rank: int) -> np.ndarray:
    """Rank ``rank``'s part of a global batch (sizes differ by at most one)."""
    return np.array_split(indices, ranks)[rank]


def numpy_forward(weights: list[np.ndarray], x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations of every layer (the last: the logits) and the inputs of every layer."""
    acts, zs = [x], []
    for i in range(0, len(weights), 2):
        zs.append(acts[-1] @ weights[i].T + weights[i + 1])
        acts.append(np.maximum(zs[-1], 0))
    return zs, acts


def numpy_gradients(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, scale: float) -> list[np.ndarray]:
    """Gradients of the summed cross-entropy over ``(x, y)`` divided by ``scale``, in NumPy."""
    zs, acts = numpy_forward(weights, x)
    d = np.exp(zs[-1] - zs[-1].max(axis=1, keepdims=True))
    d /= d.sum(axis=1, keepdims=True)
    d[np.arange(len(y)), y] -= 1
    d /= scale
    grads: list[np.ndarray] = []
    for i in range(len(weights) - 2, -1, -2):
        grads = [d.T @ acts[i // 2], d.sum(axis=0), *grads]
        if i:
            d = (d @ weights[i]) * (zs[i // 2 - 1] > 0)
    return [g.astype(np.float32) for g in grads]


def numpy_accuracy(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Share of ``x`` the network classifies as ``y``."""
    return float(np.mean(numpy_forward(weights, x)[0][-1].argmax(axis=1) == y))


class _Log:
    """Held-out accuracy after each epoch, epoch and step times, the loss of each step and the first
    time at the target."""

    def __init__(self, target: float) -> None:
        self.target, self.t0, self.reached_s = target, time.perf_counter(), None
        self.curve: list[dict[str, Any]] = []
        self.epoch_s: list[float] = []
        self.step_s: list[float] = []  # each epoch's time over its steps
        self.loss: list[float] = []

    def point(self, step: int, accuracy: float) -> bool:
        t = time.perf_counter() - self.t0
        self.curve.append({"t_s": t, "step": step, "accuracy": float(accuracy)})
        if self.reached_s is None and accuracy >= self.target:
            self.reached_s = t
        return self.reached_s is not None

    def summary(self, steps: int, **extra: Any) -> dict[str, Any]:
        return {
            "time_to_target_s": self.reached_s,
            "reached_target": self.reached_s is not None,
            "target_accuracy": self.target,
            "final_accuracy": self.curve[-1]["accuracy"],
            "epochs": self.curve[-1]["step"],
            "steps": steps,
            "time_per_epoch_s": float(np.median(self.epoch_s)) if self.epoch_s else None,
            "time_per_step_s": float(np.median(self.step_s)) if self.step_s else None,
            "curve": self.curve,
            "loss_trace": self.loss or None,
            **extra,
        }


def _loop(p: dict[str, Any], n_train: int, step: Any, evaluate: Any, max_steps: int | None) -> tuple[_Log, int]:
    """Epochs of ``step(global batch indices)`` (which returns the global batch's loss, or None),
    ``evaluate()`` (held-out accuracy) after each, until the target, ``max_epochs`` or ``max_steps``;
    epoch 0 is the evaluation of the initial weights."""
    log, steps = _Log(p["target_accuracy"]), 0
    for epoch in range(p["max_epochs"] + 1):
        if epoch:
            start, before = time.perf_counter(), steps
            for idx in epoch_batches(n_train, p["batch"], p["seed"], epoch)[
                : None if max_steps is None else max_steps - steps
            ]:
                loss = step(idx)
                if loss is not None:
                    log.loss.append(float(loss))
                steps += 1
            log.epoch_s.append(time.perf_counter() - start)
            log.step_s.append(log.epoch_s[-1] / max(1, steps - before))
        if log.point(epoch, evaluate()) or steps == max_steps:
            break
    return log, steps


def _pinned(client: Any, fn: Any, addresses: list[str], args: list[tuple]) -> list[Any]:
    """``fn(*args[i])`` on worker ``addresses[i]`` and nowhere else, for every i; the results."""
    return client.gather(
        [client.submit(fn, *a, workers=[w], allow_other_workers=False, pure=False) for w, a in zip(addresses, args)]
    )


def _ddp_rank(rank: int, ranks: int, port: int, p: dict[str, Any], max_steps: int | None, keep: bool) -> dict:
    """One rank of ``ddp-train``, run on its own worker; rank 0 returns the run's summary."""
    from datetime import timedelta

    import torch.distributed as dist
    from distributed import get_worker

    torch = require_torch("ddp-train")
    torch.set_num_threads(max(1, get_worker().state.nthreads))
    data, sizes = digits_split(), layer_sizes(p["hidden"], p["depth"])
    model = build_model(sizes, weights=init_weights(sizes, p["seed"]))
    params = list(model.parameters())
    x, y, xt, yt = (torch.from_numpy(a) for a in data)
    lr, acc, payload = learning_rate(p["batch"], p["lr_base"], p["batch_base"]), torch.zeros(1), [0]

    def step(idx: np.ndarray) -> float:
        mine = torch.from_numpy(shard(idx, ranks, rank))
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[mine]), y[mine], reduction="sum") / len(idx)
        loss.backward()
        loss = loss.detach().reshape(1)
        if ranks > 1:  # the gradients and the shard's loss, summed over the ranks in one all-reduce
            flat = torch.cat([*(q.grad.reshape(-1) for q in params), loss])
            dist.all_reduce(flat)
            payload[0] = flat.numel() * flat.element_size()
            torch.nn.utils.vector_to_parameters(flat[:-1], [q.grad for q in params])
            loss = flat[-1:]
        with torch.no_grad():
            for q in params:
                q -= lr * q.grad
        return float(loss[0])

    def evaluate() -> float:
        if rank == 0:
            with torch.no_grad():
                acc[0] = (model(xt).argmax(dim=1) == yt).float().mean()
        if ranks > 1:
            dist.broadcast(acc, 0)  # every rank stops at the same epoch
        return float(acc[0])

    if ranks > 1:
        url, timeout = f"tcp://127.0.0.1:{port}", timedelta(seconds=120)
        dist.init_process_group("gloo", init_method=url, rank=rank, world_size=ranks, timeout=timeout)
    try:
        if ranks > 1:
            dist.barrier()
        log, steps = _loop(p, len(y), step, evaluate, max_steps)
    finally:
        if ranks > 1:
            dist.destroy_process_group()
    out = log.summary(steps, lr=lr, allreduce_payload_bytes=payload[0]) if rank == 0 else {"steps": steps}
    return {**out, "weights": [q.detach().numpy().copy() for q in params]} if keep else out


def train_ddp(
    client: Any, params: dict[str, Any], addresses: list[str], *, max_steps: int | None = None, keep: bool = False
) -> dict[str, Any]:
    """Run ``ddp-train`` with one rank per worker address; rank 0's summary, and with ``keep``
    every rank's final weights under ``rank_weights``."""
    n, (port,) = len(addresses), free_ports(1)  # for this run's process group
    outs = _pinned(client, _ddp_rank, addresses, [(r, n, port, params, max_steps, keep) for r in range(n)])
    return {
        **{k: v for k, v in outs[0].items() if k != "weights"},
        **ring_bytes(params, n),
        "rank_weights": [o["weights"] for o in outs] if keep else None,
    }


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports on 127.0.0.1 that are free now (each held until all are found)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def ring_bytes(params: dict[str, Any], ranks: int) -> dict[str, Any]:
    """Ranks, parameters and the bytes one rank sends per step in a ring all-reduce of the gradients."""
    count = parameter_count(layer_sizes(params["hidden"], params["depth"]))
    return {
        "ranks": ranks,
        "parameters": count,
        "bytes_allreduced_per_step": ring_allreduce_bytes(count, ranks),
        "bytes_method": "computed: parameters × 4 bytes × 2(n-1)/n (ring all-reduce)",
    }


def _numpy_shard(weights: list[np.ndarray], indices: np.ndarray, scale: float) -> list[np.ndarray]:
    data = digits_split()
    return numpy_gradients(weights, data.x_train[indices], data.y_train[indices], scale)


def train_numpy(
    client: Any, params: dict[str, Any], addresses: list[str], *, max_steps: int | None = None, keep: bool = False
) -> dict[str, Any]:
    """Run ``sgd-numpy`` with one gradient task per worker address per step; the summary, and
    with ``keep`` the final weights under ``rank_weights``."""
    p, n, data = params, len(addresses), digits_split()
    weights = init_weights(layer_sizes(p["hidden"], p["depth"]), p["seed"])
    lr, sent = learning_rate(p["batch"], p["lr_base"], p["batch_base"]), [0]

    def step(idx: np.ndarray) -> None:
        parts = _pinned(client, _numpy_shard, addresses, [(weights, shard(idx, n, r), len(idx)) for r in range(n)])
        sent[0] = sum(g.nbytes for g in parts[0])
        weights[:] = [w - lr * sum(g[i] for g in parts) for i, w in enumerate(weights)]

    log, steps = _loop(p, len(data.y_train), step, lambda: numpy_accuracy(weights, data.x_test, data.y_test), max_steps)
    return {
        **log.summary(steps, lr=lr, ranks=n, parameters=sum(w.size for w in weights)),
        "bytes_allreduced_per_step": float(sent[0]),
        "bytes_method": "counted: gradient arrays each task returns to the client (the weights go back as many)",
        "rank_weights": [weights] if keep else None,
    }


@dataclass
class TrainState:
    client: Any
    params: dict[str, Any]
    addresses: list[str]
    last: dict[str, Any] = field(default_factory=dict)


def _warm(torch: bool) -> None:
    digits_split()
    if torch:
        require_torch("ddp-train")


class _Training(BaseWorkload):
    defaults = {
        "batch": 64,
        "lr_base": 0.05,
        "batch_base": 32,
        "target_accuracy": 0.95,
        "max_epochs": 40,
        "hidden": 128,
        "depth": 1,
        "seed": 0,
    }
    minimum = {"batch": 1, "lr_base": 1e-12, "batch_base": 1, "max_epochs": 1, "hidden": 1, "depth": 1, "seed": 0}
    maximum = {"target_accuracy": 1.0}
    needs_torch = False
    trainer: Any = None  # train_ddp, train_numpy or train_tf

    def require(self) -> None:
        """Raise, saying how to install it, where a framework this workload needs is missing."""
        if self.needs_torch:
            require_torch(self.name)

    def setup(self, lab: Any, **params: Any) -> TrainState:
        """Check the parameters (before any cluster work), then load the data (and import torch) on every worker."""
        from labkit.common.scheduler import scheduler_workers

        p, n_train = {**self.defaults, **params}, len(digits_split().y_train)
        if not 0 < p["target_accuracy"] <= 1:
            raise ParameterError(f"{self.name}.target_accuracy", p["target_accuracy"], "a held-out accuracy in (0, 1]")
        batch = ParameterError(f"{self.name}.batch", p["batch"], f"at most {n_train} and at least one per rank")
        if p["batch"] > n_train:
            raise batch
        self.require()
        addresses = sorted(scheduler_workers(lab.client))
        if len(addresses) > p["batch"]:
            raise batch
        lab.client.run(_warm, self.needs_torch)  # untimed
        return TrainState(lab.client, p, addresses)

    def run(self, state: TrainState) -> Work:
        state.last = self.trainer(state.client, state.params, state.addresses)
        state.last.pop("rank_weights", None)
        return Work(float(state.last["steps"] * state.params["batch"]), "samples")

    def metrics(self, state: TrainState) -> dict[str, Any]:
        """Time to target, accuracy curve, epochs, steps, time per epoch and step, loss trace, ranks, lr, bytes per step."""
        return dict(state.last)


class DDPTrain(_Training):
    """PyTorch, one rank per worker, gradients summed by a gloo all-reduce each step."""

    name = "ddp-train"
    description = "PyTorch data-parallel training (gloo all-reduce) to a target held-out accuracy"
    needs_torch, trainer = True, staticmethod(train_ddp)


class NumpySGD(_Training):
    """NumPy SGD, the same network and data-parallel scheme, gradients summed on the client."""

    name = "sgd-numpy"
    description = "NumPy data-parallel SGD (gradients summed on the client) to a target held-out accuracy"
    trainer = staticmethod(train_numpy)
