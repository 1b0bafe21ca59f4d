"""Model optimisation workloads: transfer learning here, with magnitude pruning and exact against
approximate algorithms registered from their own modules.

- ``prune-infer`` (:mod:`labkit.studies.optimize.pruning`): a pruned perceptron's accuracy lost and its
  inference throughput, dense against sparse.
- ``approx-vs-exact`` (:mod:`labkit.studies.optimize.approx`): exact and approximate SVD and nearest
  neighbours, time and error as sizes grow.
- ``transfer`` (PyTorch): a small convolutional feature extractor (two 3×3 convolutions of
  ``channels`` and 2·``channels`` filters, a 2×2 max-pool) pretrained in ``setup`` on digits 0–4
  (cached), then a new 5-way head learnt for digits 5–9 from ``target_samples`` labelled images
  (the other ~700 held out): ``mode="head"`` trains only the head on frozen features (computed
  once per run), ``"full"`` fine-tunes everything from the pretrained weights, ``"scratch"``
  trains the same network from a fresh init. Adam on minibatches of 32. A trial is one training
  run from a fresh seeded init (``seed`` + run number) until the held-out accuracy reaches
  ``target_accuracy`` or ``max_epochs`` are spent; the held-out evaluation after each epoch (and
  one before the first) is part of the run. The metrics are a training trial's plus
  ``trainable_params`` and ``flops_estimate`` (see :func:`flops_estimate`). Work: samples trained on.

>>> macs_per_image(16), macs_per_image(16, "head")
(306688, 2560)
>>> flops_estimate("head", 16, n_train=200, n_eval=700, epochs=10) < flops_estimate("full", 16, 200, 700, 10)
True
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.studies.optimize.pruning import adam_trainer, cached, digits, worker_torch
from labkit.workloads.learning import require_torch
from labkit.workloads.registry import BaseWorkload, Work

MODES = ("head", "full", "scratch")


# -- transfer ----------------------------------------------------------------------------------


def macs_per_image(channels: int, part: str = "all") -> int:
    """Multiply-adds of one image through the extractor (``part="body"``), the head (``"head"``) or
    both: two 3×3 convolutions with 8×8 outputs, and a linear head from 2·channels·16 features to 5."""
    body, head = 64 * 9 * channels + 64 * 9 * channels * 2 * channels, 2 * channels * 16 * 5
    return {"body": body, "head": head, "all": body + head}[part]


def flops_estimate(mode: str, channels: int, n_train: int, n_eval: int, epochs: int) -> float:
    """An estimate of the FLOPs of one transfer run: 2 per multiply-add forward, 3× forward for a
    training step (the backward pass about twice the forward), one held-out evaluation per epoch
    and one before the first; pooling, ReLU, biases, the loss and the optimiser are not counted.
    ``"head"`` runs the frozen extractor once over every image, then trains the head alone."""
    body, head = macs_per_image(channels, "body"), macs_per_image(channels, "head")
    if mode == "head":
        return float(2 * body * (n_train + n_eval) + epochs * 6 * head * n_train + (epochs + 1) * 2 * head * n_eval)
    return float(epochs * 6 * (body + head) * n_train + (epochs + 1) * 2 * (body + head) * n_eval)


@functools.lru_cache(maxsize=4)
def transfer_split(target_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """Source images and labels (digits 0–4); target training and held-out images and labels
    (digits 5–9 relabelled 0–4, shuffled with ``seed``, the first ``target_samples`` for training)."""
    x, y = digits()
    x = x.reshape(-1, 1, 8, 8)
    source, target = np.flatnonzero(y < 5), np.flatnonzero(y >= 5)
    np.random.default_rng(seed).shuffle(target)
    train, held = target[:target_samples], target[target_samples:]
    return x[source], y[source], x[train], y[train] - 5, x[held], y[held] - 5


def _network(torch: Any, channels: int) -> tuple[Any, Any]:
    nn = torch.nn
    conv = (nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 2 * channels, 3, padding=1))
    return nn.Sequential(*conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()), nn.Linear(32 * channels, 5)


def pretrain(channels: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The feature extractor's weights after ``epochs`` epochs on digits 0–4 (with a 5-way head)."""
    torch = worker_torch("transfer")
    xs, ys, *_ = transfer_split(0, seed)
    torch.manual_seed(seed)
    body, head = _network(torch, channels)
    params = [*body.parameters(), *head.parameters()]
    epoch = adam_trainer(torch, params, lambda v: head(body(v)), torch.from_numpy(xs), torch.from_numpy(ys), 1e-3, seed)
    for _ in range(epochs):
        epoch()
    return [t.detach().numpy().copy() for t in body.state_dict().values()]


def train_transfer(body_weights: list[np.ndarray] | None, p: dict[str, Any], init_seed: int) -> dict[str, Any]:
    """One training run on digits 5–9 in ``p["mode"]``; a training trial's metrics."""
    torch = worker_torch("transfer")
    _, _, xt, yt, xe, ye = (torch.from_numpy(a) for a in transfer_split(p["target_samples"], p["seed"]))
    torch.manual_seed(init_seed)
    body, head = _network(torch, p["channels"])
    if p["mode"] != "scratch":
        body.load_state_dict({k: torch.from_numpy(w) for k, w in zip(body.state_dict(), body_weights)})
    t0 = time.perf_counter()
    if p["mode"] == "head":
        with torch.no_grad():
            xt, xe = body(xt), body(xe)  # frozen features, once
        forward, params, lr = head, list(head.parameters()), p["head_lr"]
    else:
        forward, params, lr = (lambda v: head(body(v))), [*body.parameters(), *head.parameters()], p["lr"]
    epoch, curve, epoch_s, reached = adam_trainer(torch, params, forward, xt, yt, lr, init_seed), [], [], None
    for step in range(p["max_epochs"] + 1):
        if step:
            t = time.perf_counter()
            epoch()
            epoch_s.append(time.perf_counter() - t)
        with torch.no_grad():
            accuracy = float((forward(xe).argmax(1) == ye).float().mean())
        curve.append({"t_s": time.perf_counter() - t0, "step": step, "accuracy": accuracy})
        if accuracy >= p["target_accuracy"]:
            reached = curve[-1]["t_s"]
            break
    trainable = sum(int(q.numel()) for q in params)
    return {
        "time_to_target_s": reached,
        "reached_target": reached is not None,
        "target_accuracy": p["target_accuracy"],
        "final_accuracy": accuracy,
        "epochs": step,
        "curve": curve,
        "time_per_epoch_s": float(np.median(epoch_s)) if epoch_s else None,
        "samples": step * len(yt),
        "trainable_params": trainable,
        "total_params": sum(int(q.numel()) for m in (body, head) for q in m.parameters()),
        "flops_estimate": flops_estimate(p["mode"], p["channels"], len(yt), len(ye), step),
        "init_seed": init_seed,
        "heldout_samples": len(ye),
    }


def _warm() -> None:
    digits()
    require_torch("transfer")


@dataclass
class TransferState:
    client: Any
    params: dict[str, Any]
    body: list[np.ndarray] | None
    runs: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class Transfer(BaseWorkload):
    """Digits 5–9 learnt on features pretrained on digits 0–4: head only, fine-tuned, or from scratch."""

    name = "transfer"
    description = "transfer learning (PyTorch): new head on frozen features vs fine-tuning vs from scratch"
    defaults = {
        "mode": "head",
        "channels": 16,
        "source_epochs": 10,
        "target_samples": 200,
        "target_accuracy": 0.95,
        "max_epochs": 40,
        "lr": 1e-3,
        "head_lr": 1e-2,
        "seed": 0,
    }
    choices = {"mode": MODES}
    minimum = {"channels": 1, "source_epochs": 0, "target_samples": 5, "max_epochs": 1, "lr": 1e-12, "head_lr": 1e-12}
    maximum = {"target_accuracy": 1.0}

    def setup(self, lab: Any, **params: Any) -> TransferState:
        p = {**self.defaults, **params}
        require_torch(self.name)
        if not 0 < p["target_accuracy"] <= 1:
            raise ParameterError("transfer.target_accuracy", p["target_accuracy"], "a held-out accuracy in (0, 1]")
        most = int(np.sum(digits()[1] >= 5)) - 100
        if p["target_samples"] > most:
            raise ParameterError("transfer.target_samples", p["target_samples"], f"at most {most} (100 held out)")
        lab.client.run(_warm)  # data loaded and PyTorch imported on every worker, untimed
        body = None
        if p["mode"] != "scratch":
            key = ("cnn", p["channels"], p["source_epochs"], p["seed"])
            body = cached(key, lambda: lab.client.submit(pretrain, *key[1:], pure=False).result())
        return TransferState(lab.client, p, body)

    def run(self, state: TransferState) -> Work:
        state.runs += 1
        seed = state.params["seed"] + state.runs
        state.last = state.client.submit(train_transfer, state.body, state.params, seed, pure=False).result()
        return Work(float(state.last["samples"]), "samples")

    def metrics(self, state: TransferState) -> dict[str, Any]:
        """A training trial's metrics (time to target, curve, …) with trainable parameters and FLOPs (an estimate)."""
        return dict(state.last)
