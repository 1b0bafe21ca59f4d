"""Model parallelism: an MLP's layers split into pipeline stages, each a Dask actor, with
micro-batches flowing through them (GPipe's schedule); throughput and the idle "bubble".

The network and data are those of the data-parallel workloads (:mod:`labkit.workloads.learning`): a
perceptron 64-``hidden``-10 with ``depth`` ReLU hidden layers (the defaults give
64-128-10, as ``ddp-train`` and ``sgd-numpy`` do; ``depth=2`` gives 64-128-128-10), softmax
cross-entropy on the logits, the same seeded initial weights (:func:`labkit.workloads.learning.init_weights`),
on the same standardised training split of scikit-learn's digits (1,347 images), here in
float64. Its ``depth + 1`` dense layers are split into ``stages`` consecutive groups
(:func:`split_layers`, as even as the layer count allows); each group lives in one
:class:`Stage` actor, placed round-robin on the workers in address order. Stages that share
a worker share its one actor thread (Dask runs a worker's actor methods one at a time), so
with more stages than workers they cannot overlap.

A timed run resets every stage to the seeded weights and does ``steps`` steps, each on a
global batch of ``batch`` training images (drawn with replacement, the same batches in every
run: :func:`batch_indices`) split into ``microbatches`` micro-batches
(:func:`numpy.array_split`). ``mode="train"``: every micro-batch goes forward through all
stages, then every micro-batch backward (the last micro-batch first), then each stage
applies its summed gradient (plain SGD, step ``lr``, on the loss averaged over the global
batch): one GPipe step, equal to one step of the unsplit network on the whole batch up to
rounding. ``mode="infer"``: forward only, the last stage returning the logits. The client
is the pipeline's scheduler: it sends each micro-batch to the next stage as soon as the
previous one returns it, so a stage's output travels worker → client → worker, and that
transfer is part of the measured time.

Each stage times its own computing (``perf_counter`` around its forward, backward and
update work): ``stage_busy_s``. :meth:`PipelineMLP.metrics` gives, for the last run,

- ``bubble_fraction`` (measured): ``1 - sum(stage_busy_s) / (stages × wall)``, the share of
  the stages' time spent waiting, for a neighbour, for the client or for a transfer;
- ``bubble_estimate``: GPipe's ``(stages - 1) / (microbatches + stages - 1)``, an estimate
  that assumes equal stages, each on its own device, and free communication;
- ``samples_per_s`` (samples over the same wall time), ``stage_busy_s``, ``stages``,
  ``microbatches``, ``stage_worker`` (the worker index of each stage) and ``loss`` (the
  training loss averaged over the run's samples, each step's before its update; None with
  ``mode="infer"``).

The wall time behind these runs from the first call of the first step to the last reply of
the last; the Sweep's own wall time adds the reset of the stages.

>>> split_layers(3, 2)
[[0, 1], [2]]
>>> round(gpipe_bubble(4, 8), 3)
0.273
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.workloads.learning import digits_split, init_weights, layer_sizes
from labkit.workloads.registry import BaseWorkload, Work

MODES = ("train", "infer")
Layers = list[tuple[np.ndarray, np.ndarray]]


def split_layers(layers: int, stages: int) -> list[list[int]]:
    """The layer indices of each stage: consecutive groups, the first ones larger where uneven."""
    return [part.tolist() for part in np.array_split(np.arange(layers), stages)]


def gpipe_bubble(stages: int, microbatches: int) -> float:
    """GPipe's estimate of the idle share of a pipeline: ``(S - 1) / (M + S - 1)``."""
    return (stages - 1) / (microbatches + stages - 1)


def check_params(params: dict[str, Any]) -> None:
    """Refuse parameters that do not fit together: more stages than layers, more micro-batches
    than samples in the batch (each checked alone by the registry)."""
    layers = params["depth"] + 1
    if params["stages"] > layers:
        raise ParameterError(
            "pipeline-mlp.stages",
            params["stages"],
            f"at most the network's {layers} layers (depth={params['depth']}: depth + 1)",
        )
    if params["microbatches"] > params["batch"]:
        raise ParameterError(
            "pipeline-mlp.microbatches", params["microbatches"], f"at most the batch of {params['batch']} samples"
        )


def init_layers(hidden: int = 128, depth: int = 1, seed: int = 0) -> Layers:
    """The training workloads' seeded initial weights as float64 ``(W, b)`` pairs, ``W`` shaped (in, out)."""
    flat = init_weights(layer_sizes(hidden, depth), seed)
    return [(flat[i].T.astype(np.float64), flat[i + 1].astype(np.float64)) for i in range(0, len(flat), 2)]


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The training split of digits as the training workloads standardise it, in float64, and its labels."""
    split = digits_split()
    return split.x_train.astype(np.float64), split.y_train


def batch_indices(step: int, batch: int, seed: int = 0) -> np.ndarray:
    """The samples of step ``step``'s global batch, drawn with replacement (seeded)."""
    return np.random.default_rng([seed, step]).integers(0, len(digits_split().y_train), batch)


def reference_logits(layers: Layers, x: np.ndarray) -> np.ndarray:
    """The unsplit network's logits, in one process."""
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


def reference_step(layers: Layers, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[Layers, float]:
    """One SGD step of the unsplit network on the whole batch: new layers and the mean loss before it."""
    acts = [x]
    for i, (w, b) in enumerate(layers):
        z = acts[-1] @ w + b
        acts.append(np.maximum(z, 0.0) if i < len(layers) - 1 else z)
    logits = acts[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(len(y)), y].mean())
    g = np.exp(logp)
    g[np.arange(len(y)), y] -= 1.0
    g /= len(y)
    new = []
    for i in range(len(layers) - 1, -1, -1):
        w, b = layers[i]
        gw, gb = acts[i].T @ g, g.sum(axis=0)
        if i > 0:
            g = (g @ w.T) * (acts[i] > 0)
        new.append((w - lr * gw, b - lr * gb))
    return new[::-1], loss


class Stage:
    """One pipeline stage: a group of consecutive dense layers, living on one worker as a Dask actor.

    ``last`` marks the stage that holds the network's output layer (no ReLU after it; it
    computes the loss and starts the backward pass).
    """

    def __init__(self, layers: Layers, last: bool, batch: int) -> None:
        self.initial = [(w.copy(), b.copy()) for w, b in layers]
        self.last, self.batch = last, batch
        self.reset()

    def reset(self) -> None:
        """Back to the initial weights, no gradient, no stash, busy time zero."""
        self.layers = [(w.copy(), b.copy()) for w, b in self.initial]
        self.grads = [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.layers]
        self.stash: dict[int, tuple[list[np.ndarray], np.ndarray | None]] = {}
        self.busy_s, self.loss_sum = 0.0, 0.0

    def forward(self, mb: int, x: np.ndarray, labels: np.ndarray | None = None, train: bool = True) -> Any:
        """Micro-batch ``mb`` through this stage's layers: its output (the last stage: the logits
        when not training, else None, the loss gradient kept for the backward pass)."""
        t = time.perf_counter()
        acts = [x]
        for i, (w, b) in enumerate(self.layers):
            z = acts[-1] @ w + b
            acts.append(z if self.last and i == len(self.layers) - 1 else np.maximum(z, 0.0))
        out, grad = acts[-1], None
        if train and self.last:
            shifted = out - out.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            self.loss_sum -= float(logp[np.arange(len(labels)), labels].sum())
            grad = np.exp(logp)
            grad[np.arange(len(labels)), labels] -= 1.0
            grad /= self.batch
        if train:
            self.stash[mb] = (acts, grad)
        self.busy_s += time.perf_counter() - t
        return None if train and self.last else out

    def backward(self, mb: int, grad: np.ndarray | None = None, first: bool = False) -> np.ndarray | None:
        """Micro-batch ``mb`` backward: gradients added to this stage's sums; the gradient of its
        input (None for the first stage, which needs none)."""
        t = time.perf_counter()
        acts, g_last = self.stash.pop(mb)
        g = g_last if grad is None else grad * (acts[-1] > 0)
        for i in range(len(self.layers) - 1, -1, -1):
            w = self.layers[i][0]
            gw, gb = self.grads[i]
            gw += acts[i].T @ g
            gb += g.sum(axis=0)
            if i > 0:
                g = (g @ w.T) * (acts[i] > 0)
            elif not first:
                g = g @ w.T
        self.busy_s += time.perf_counter() - t
        return None if first else g

    def update(self, lr: float) -> None:
        """Apply the summed gradients (SGD) and clear them."""
        t = time.perf_counter()
        for (w, b), (gw, gb) in zip(self.layers, self.grads):
            w -= lr * gw
            b -= lr * gb
            gw[...] = 0.0
            gb[...] = 0.0
        self.busy_s += time.perf_counter() - t

    def report(self) -> tuple[float, float]:
        """Busy seconds since the reset, and the summed loss of the micro-batches it finished."""
        return self.busy_s, self.loss_sum

    def weights(self) -> Layers:
        """A copy of this stage's current weights."""
        return [(w.copy(), b.copy()) for w, b in self.layers]


@dataclass
class PipelineState:
    client: Any
    params: dict[str, Any]
    futures: list[Any]
    stages: list[Any]
    stage_worker: list[int]
    last: dict[str, Any] = field(default_factory=dict)


async def _forward(state: PipelineState, mb: int, x: np.ndarray, labels: np.ndarray | None, train: bool) -> Any:
    for s, stage in enumerate(state.stages):
        last = s == len(state.stages) - 1
        x = await stage.forward(mb, x, labels if last else None, train)
    return x


async def _backward(state: PipelineState, mb: int) -> None:
    grad = None
    for s in range(len(state.stages) - 1, -1, -1):
        grad = await state.stages[s].backward(mb, grad, s == 0)


async def _steps(state: PipelineState, steps: int) -> list[np.ndarray]:
    """``steps`` GPipe steps (or inference passes): the logits of each micro-batch when inferring."""
    import asyncio

    p = state.params
    x_all, y_all = digits()
    train = p["mode"] == "train"
    logits: list[np.ndarray] = []
    for step in range(steps):
        parts = np.array_split(batch_indices(step, p["batch"], p["seed"]), p["microbatches"])
        outs = await asyncio.gather(*(_forward(state, j, x_all[i], y_all[i], train) for j, i in enumerate(parts)))
        if train:
            await asyncio.gather(*(_backward(state, j) for j in reversed(range(len(parts)))))
            await asyncio.gather(*(stage.update(p["lr"]) for stage in state.stages))
        else:
            logits += outs
    return logits


async def _each(calls: list[Any]) -> list[Any]:
    import asyncio

    return list(await asyncio.gather(*calls))


def pipelined_logits(state: PipelineState, x: np.ndarray) -> np.ndarray:
    """The pipelined network's logits for ``x`` (micro-batches of the state's split), without training."""
    parts = np.array_split(np.asarray(x, float), state.params["microbatches"])

    async def go() -> list[np.ndarray]:
        import asyncio

        return list(await asyncio.gather(*(_forward(state, j, part, None, False) for j, part in enumerate(parts))))

    return np.concatenate(state.client.sync(go))


def stage_weights(state: PipelineState) -> Layers:
    """The network's current weights, gathered from its stages in order."""
    return [layer for stage in state.stages for layer in stage.weights().result()]


class PipelineMLP(BaseWorkload):
    """An MLP on digits split into ``stages`` Dask actors, ``microbatches`` micro-batches a global batch."""

    name = "pipeline-mlp"
    description = "model parallelism: MLP layers as pipeline stages (Dask actors), micro-batches, bubble"
    defaults = {
        "hidden": 128,
        "depth": 1,
        "stages": 2,
        "microbatches": 4,
        "batch": 64,
        "steps": 4,
        "mode": "train",
        "lr": 0.1,
        "seed": 0,
    }
    choices = {"mode": MODES}
    minimum = {"hidden": 1, "depth": 1, "stages": 1, "microbatches": 1, "batch": 1, "steps": 1, "lr": 0.0, "seed": 0}

    def check_params(self, params: dict[str, Any]) -> None:
        """More stages than layers, or more micro-batches than the batch's samples, are refused."""
        check_params({**self.defaults, **params})

    def setup(self, lab: Any, **params: Any) -> PipelineState:
        """Check the parameters together (before any cluster work), then start one actor per stage."""
        p = {**self.defaults, **params}
        check_params(p)
        from labkit.common.scheduler import scheduler_workers

        layers = init_layers(p["hidden"], p["depth"], p["seed"])
        groups = split_layers(len(layers), p["stages"])
        addresses = sorted(scheduler_workers(lab.client))
        futures, where = [], []
        for s, group in enumerate(groups):
            w = s % len(addresses)
            futures.append(
                lab.client.submit(
                    Stage,
                    [layers[i] for i in group],
                    s == len(groups) - 1,
                    p["batch"],
                    actor=True,
                    workers=[addresses[w]],
                    allow_other_workers=False,
                    pure=False,
                )
            )
            where.append(w)
        digits()
        return PipelineState(lab.client, p, futures, [f.result() for f in futures], where)

    def run(self, state: PipelineState) -> Work:
        p = state.params
        state.client.sync(_each, [stage.reset() for stage in state.stages])
        t0 = time.perf_counter()
        state.client.sync(_steps, state, p["steps"])
        wall = time.perf_counter() - t0
        reports = state.client.sync(_each, [stage.report() for stage in state.stages])
        busy = [float(b) for b, _ in reports]
        samples = p["batch"] * p["steps"]
        stages = len(state.stages)
        state.last = {
            "bubble_fraction": 1.0 - sum(busy) / (stages * wall),
            "bubble_estimate": gpipe_bubble(stages, p["microbatches"]),
            "samples_per_s": samples / wall,
            "stage_busy_s": busy,
            "stages": stages,
            "microbatches": p["microbatches"],
            "stage_worker": list(state.stage_worker),
            "loss": reports[-1][1] / samples if p["mode"] == "train" else None,
        }
        return Work(float(samples), "samples")

    def metrics(self, state: PipelineState) -> dict[str, Any]:
        """Bubble (measured and GPipe's estimate), samples per second and busy time per stage of the last run."""
        return dict(state.last)

    def teardown(self, state: PipelineState) -> None:
        state.stages.clear()
        state.futures.clear()
