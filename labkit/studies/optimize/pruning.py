"""Magnitude pruning (PyTorch): held-out accuracy lost and inference throughput, dense against sparse.

``prune-infer``: a perceptron 64-``hidden``×``depth``-10 trained once in ``setup`` (seeded, cached
on the client per its parameters) on half of scikit-learn's digits (899 held-out images, a fixed
stratified split), then pruned by weight magnitude at ``sparsity`` (``torch.nn.utils.prune``:
``global_unstructured`` over every layer's weights, or ``l1_unstructured`` per layer with
``scope="layer"``; biases are kept). A timed run infers ``batches`` batches of ``batch`` held-out
images (the set taken cyclically), each worker its share, with the masked weights dense
(``format="dense"``) or as ``torch.sparse_csr_tensor`` (``"sparse"``, converted in ``setup``).
Work: samples inferred. The accuracies come from the client's evaluation of the pruned and the
unpruned model on the held-out set, untimed; ``lost_right`` (held-out images the unpruned model
got right and the pruned one wrong) and ``gained_right`` (the reverse) let the analysis put an
interval on the accuracy lost. The helpers shared with ``transfer`` (the digits, PyTorch on a
worker, a seeded Adam epoch) live here too.

>>> len(SPARSITIES), SPARSITIES[-1]
(20, 0.95)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.workloads.learning import require_torch
from labkit.workloads.registry import BaseWorkload, Work
from labkit.workloads.tables import partition_rows

SPARSITIES = tuple(round(0.05 * i, 2) for i in range(20))
_CACHE: dict[tuple, Any] = {}  # on the client: trained weights, per the parameters that made them


def cached(key: tuple, make: Any) -> Any:
    """``make()``, made once per ``key`` in this process (the eight latest kept)."""
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = make()
    return _CACHE[key]


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 digits as float32 pixels in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def worker_torch(what: str) -> Any:
    """PyTorch, set to use as many threads as this worker has (outside a worker, left as it is)."""
    torch = require_torch(what)
    try:
        from distributed import get_worker

        torch.set_num_threads(max(1, get_worker().state.nthreads))
    except ValueError:
        pass
    return torch


def adam_trainer(torch: Any, params: list[Any], forward: Any, x: Any, y: Any, lr: float, seed: int) -> Any:
    """A function running one epoch of Adam on minibatches of 32 in a seeded order."""
    opt, g = torch.optim.Adam(params, lr=lr), torch.Generator().manual_seed(seed)

    def epoch() -> None:
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(forward(x[idx]), y[idx]).backward()
            opt.step()

    return epoch


# -- prune-infer -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def prune_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits split in halves, stratified, with a fixed seed: train x, y, held-out x, y."""
    from sklearn.model_selection import train_test_split

    x, y = digits()
    xa, xb, ya, yb = train_test_split(x, y, test_size=0.5, random_state=0, stratify=y)
    return xa, ya, xb, yb


def train_mlp(hidden: int, depth: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The perceptron's weights and biases (W0, b0, W1, b1, …) after ``epochs`` epochs of Adam."""
    torch = worker_torch("prune-infer")
    xa, ya, _, _ = prune_split()
    torch.manual_seed(seed)
    sizes = [64] + [hidden] * depth + [10]
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    model = torch.nn.Sequential(*[m for lin in layers for m in (lin, torch.nn.ReLU())][:-1])
    epoch = adam_trainer(torch, list(model.parameters()), model, torch.from_numpy(xa), torch.from_numpy(ya), 1e-3, seed)
    for _ in range(epochs):
        epoch()
    return [p.detach().numpy().copy() for p in model.parameters()]


def prune_weights(weights: list[np.ndarray], sparsity: float, scope: str) -> list[np.ndarray]:
    """``weights`` with the smallest-magnitude weights zeroed by ``torch.nn.utils.prune`` (biases kept)."""
    torch = require_torch("prune-infer")
    from torch.nn.utils import prune

    layers = []
    for w, b in zip(weights[::2], weights[1::2]):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
    if scope == "global":
        prune.global_unstructured([(lin, "weight") for lin in layers], prune.L1Unstructured, amount=sparsity)
    else:
        for lin in layers:
            prune.l1_unstructured(lin, "weight", amount=sparsity)
    for lin in layers:
        prune.remove(lin, "weight")
    return [p.detach().numpy().copy() for lin in layers for p in (lin.weight, lin.bias)]


def logits(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network's outputs for images ``x`` (rows), computed with PyTorch as the workers do."""
    torch = require_torch("prune-infer")
    with torch.no_grad():
        return _forward(torch, _layers(torch, weights), torch.from_numpy(np.ascontiguousarray(x.T))).T.numpy()


def _layers(torch: Any, weights: list[Any]) -> list[tuple[Any, Any]]:
    """(W, b) tensors from W0, b0, W1, … where each W is an array or CSR parts (indptr, indices, data, shape)."""
    import warnings

    out = []
    for w, b in zip(weights[::2], weights[1::2]):
        if isinstance(w, tuple):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
                parts = (torch.from_numpy(a) for a in w[:3])
                w = torch.sparse_csr_tensor(*parts, size=w[3], check_invariants=False)
        out.append((torch.from_numpy(w) if isinstance(w, np.ndarray) else w, torch.from_numpy(b)))
    return out


def _forward(torch: Any, layers: list[tuple[Any, Any]], h: Any) -> Any:
    """Columns are images: ``h ← relu(W h + b)``, no ReLU after the last layer (a CSR ``W``: the sparse kernel)."""
    for i, (w, b) in enumerate(layers):
        h = torch.addmm(b[:, None], w, h)
        h = torch.relu(h) if i < len(layers) - 1 else h
    return h


def infer_share(weights: list[Any], x: np.ndarray, y: np.ndarray, first: int, count: int, batch: int) -> tuple:
    """Batches ``first .. first+count-1`` of the held-out images through the network; (images, correct)."""
    torch = worker_torch("prune-infer")
    rows = np.arange(first * batch, (first + count) * batch) % len(x)
    xs = torch.from_numpy(np.ascontiguousarray(x[rows].reshape(count, batch, -1).transpose(0, 2, 1)))
    layers = _layers(torch, weights)
    with torch.no_grad():
        predicted = torch.cat([_forward(torch, layers, xs[i]).argmax(0) for i in range(count)])
    return count * batch, int((predicted.numpy() == y[rows]).sum())


def _csr(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    from scipy.sparse import csr_matrix

    m = csr_matrix(w)
    return m.indptr, m.indices, m.data, m.shape


def _warm() -> None:
    prune_split()
    require_torch("prune-infer")


@dataclass
class PruneState:
    client: Any
    params: dict[str, Any]
    weights: Any  # a future of the pruned weights, on every worker
    data: Any  # futures of the held-out images and labels, on every worker
    addresses: list[str]
    last: dict[str, Any] = field(default_factory=dict)


class PruneInfer(BaseWorkload):
    """Inference throughput and accuracy of a magnitude-pruned perceptron, dense or sparse."""

    name = "prune-infer"
    description = "magnitude pruning (PyTorch) at a sparsity: held-out accuracy lost, inference dense vs sparse"
    defaults = {
        "sparsity": 0.0,
        "scope": "global",
        "format": "dense",
        "hidden": 512,
        "depth": 2,
        "epochs": 15,
        "batch": 256,
        "batches": 64,
        "seed": 0,
    }
    choices = {"sparsity": SPARSITIES, "scope": ("global", "layer"), "format": ("dense", "sparse")}
    minimum = {"hidden": 1, "depth": 1, "epochs": 0, "batch": 1, "batches": 1, "seed": 0}

    def setup(self, lab: Any, **params: Any) -> PruneState:
        from labkit.common.scheduler import scheduler_workers

        p = {**self.defaults, **params}
        require_torch(self.name)
        lab.client.run(_warm)  # data loaded and PyTorch imported on every worker, untimed
        key = ("mlp", p["hidden"], p["depth"], p["epochs"], p["seed"])
        dense = cached(key, lambda: lab.client.submit(train_mlp, *key[1:], pure=False).result())
        pruned = prune_weights(dense, p["sparsity"], p["scope"])
        _, _, xb, yb = prune_split()
        before, after = logits(dense, xb).argmax(1), logits(pruned, xb).argmax(1)
        zeros, sizes = [int(np.sum(w == 0)) for w in pruned[::2]], [int(w.size) for w in pruned[::2]]
        last = {
            "accuracy": float(np.mean(after == yb)),
            "accuracy_dense": float(np.mean(before == yb)),
            "heldout_samples": int(yb.size),
            "lost_right": int(np.sum((before == yb) & (after != yb))),
            "gained_right": int(np.sum((before != yb) & (after == yb))),
            "predictions_changed": int(np.sum(before != after)),
            "sparsity_measured": sum(zeros) / sum(sizes),
            "zeros_per_layer": zeros,
            "weights_per_layer": sizes,
            "nonzero_params": int(sum(np.count_nonzero(w) for w in pruned)),
            "params_total": int(sum(w.size for w in pruned)),
        }
        last["accuracy_lost"] = last["accuracy_dense"] - last["accuracy"]
        if p["format"] == "sparse":  # converted once, untimed
            pruned = [_csr(w) if i % 2 == 0 else w for i, w in enumerate(pruned)]
        client = lab.client
        weights = client.scatter([pruned], broadcast=True, hash=False)[0]
        data = client.scatter([xb, yb], broadcast=True, hash=False)
        return PruneState(client, p, weights, data, sorted(scheduler_workers(client)), last)

    def run(self, state: PruneState) -> Work:
        p, client = state.params, state.client
        futures, first = [], 0
        shares = partition_rows(p["batches"], min(p["batches"], len(state.addresses)))
        for address, count in zip(state.addresses, shares):
            args = (state.weights, *state.data, first, count, p["batch"])
            futures.append(client.submit(infer_share, *args, workers=[address], allow_other_workers=False, pure=False))
            first += count
        done = client.gather(futures)
        images, correct = (sum(v) for v in zip(*done))
        state.last["accuracy_inferred"] = correct / images
        return Work(float(images), "samples")

    def metrics(self, state: PruneState) -> dict[str, Any]:
        """Held-out accuracy pruned and unpruned, accuracy lost, measured sparsity, nonzero parameters."""
        return dict(state.last)

    def teardown(self, state: PruneState) -> None:
        state.weights = state.data = None
