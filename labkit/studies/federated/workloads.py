"""Federated learning: FedAvg over clients whose data shards live on the Dask workers, IID or split by label.

The data are scikit-learn's bundled handwritten digits (1,797 images of 8×8 pixels, 10
classes): a seeded, stratified held-out set (``test_fraction``) stays with the Dask client,
which plays the server; the rest is standardised (scaled with the training part's mean
and spread) and cut into ``clients`` shards, which ``setup`` scatters to the workers
(client ``k`` on the ``k``-th worker in address order, round robin, so a worker holds one
or more clients' shards). ``split="iid"`` deals the shuffled samples out evenly;
``split="label"`` sorts them by label, cuts them into ``clients * labels_per_client``
equal pieces and gives each client ``labels_per_client`` pieces drawn at random, as in
McMahan et al. 2017: each client holds mostly that many classes (a piece that straddles a
class boundary brings a second one).

The model is NumPy only: a softmax regression (``hidden=0``) or one ``tanh`` hidden layer of
``hidden`` units, in float64, trained with plain minibatch SGD (batch ``batch``, learning
rate ``lr``). One timed run is one training run from a fresh seeded start: each round, the
server picks ``participation`` of the clients (at least one), each of them runs
``local_epochs`` epochs of SGD from the global weights on its own shard (a Dask task pinned
to the worker that holds the shard, reshuffling its shard each epoch), and the server sets
the global weights to their average weighted by shard size (FedAvg). After each round the
server measures the held-out accuracy (that evaluation is part of the timed run); the run
stops once it reaches ``target_accuracy`` or after ``max_rounds`` rounds.

Randomness: ``seed`` fixes the held-out set and the shards (the same for every run of a
point); ``train_seed`` fixes the rest of a run (initial weights, each client's batch order,
the clients picked), and ``train_seed=-1`` draws a fresh one for each run, so repeats are
independent training runs and their spread is the run-to-run spread of rounds to target.
Every run's training seed is stored with its trial (``run_seed``). The batch order of
client ``k`` in round ``r`` comes from ``numpy.random.default_rng([train_seed, r, k])``
(one permutation of its shard per local epoch), the clients picked in round ``r`` from
``default_rng([train_seed, r])``, the initial weights from ``default_rng([train_seed])``.

:meth:`FedAvg.metrics` gives the common training metrics (``time_to_target_s``, None when
the target was not reached; ``reached_target``; ``target_accuracy``; ``final_accuracy``;
``curve``, one point per round with ``step`` the round, round 0 being the initial weights)
and ``rounds``, ``rounds_to_target`` (None when not reached), ``bytes_communicated`` (the
weights sent down to and back up from each participating client, per round, counted from
the arrays' ``nbytes``), ``bytes_per_round``, ``bytes_to_target`` (None when not reached),
``clients_per_round``, ``label_share`` (the mean share of a client's samples in its
``labels_per_client`` most common classes) and ``run_seed``. Work: the client-samples
processed, shard size times local epochs for every participating client and round.

>>> y = np.repeat([0, 1, 2], 4)
>>> sorted(np.bincount(y[i], minlength=3).tolist() for i in split_clients(y, 3, "label", 1, seed=0))
[[0, 0, 4], [0, 4, 0], [4, 0, 0]]
>>> round_bytes([np.zeros((64, 10)), np.zeros(10)], 5)
52000
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.workloads.registry import BaseWorkload, Work

SPLITS = ("iid", "label")
CLASSES = 10


@functools.lru_cache(maxsize=4)
def load_data(seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as ``(x_train, y_train, x_test, y_test)``: a stratified held-out part drawn
    with ``seed``, both parts scaled by the training part's mean and spread (float64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float64), y, test_size=test_fraction, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), y_train, scaler.transform(x_test), y_test


def split_clients(y: np.ndarray, clients: int, split: str, labels_per_client: int, seed: int) -> list[np.ndarray]:
    """The sample indices of each client's shard.

    Parameters
    ----------
    y : ndarray
        The labels of the training samples.
    clients, labels_per_client, seed : int
    split : {"iid", "label"}
        ``"iid"``: the samples shuffled and dealt out in ``clients`` near-equal parts.
        ``"label"``: sorted by label (ties in a shuffled order), cut into
        ``clients * labels_per_client`` near-equal pieces, ``labels_per_client`` of them
        drawn at random for each client.

    Returns
    -------
    list of ndarray
        Sorted indices into ``y``, one array per client.
    """
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(y))
    if split == "iid":
        return [np.sort(part) for part in np.array_split(order, clients)]
    by_label = order[np.argsort(y[order], kind="stable")]
    pieces = np.array_split(by_label, clients * labels_per_client)
    dealt = rng.permutation(len(pieces)).reshape(clients, labels_per_client)
    return [np.sort(np.concatenate([pieces[i] for i in row])) for row in dealt]


def label_share(y: np.ndarray, shards: list[np.ndarray], labels_per_client: int) -> float:
    """Mean over clients of the share of a client's samples in its ``labels_per_client`` most
    common classes (1.0: every client holds only that many classes).

    >>> label_share(np.array([0, 0, 1, 2]), [np.array([0, 1]), np.array([2, 3])], 1)
    0.75
    """
    shares = [np.sort(np.bincount(y[i], minlength=CLASSES))[::-1][:labels_per_client].sum() / len(i) for i in shards]
    return float(np.mean(shares))


def init_weights(features: int, hidden: int, classes: int, seed: Any) -> list[np.ndarray]:
    """Seeded starting weights ``[W1, b1, (W2, b2)]``: normal, scaled by ``1/sqrt(fan-in)``; zero biases."""
    rng = np.random.default_rng(seed)
    sizes = [features, hidden, classes] if hidden else [features, classes]
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out += [rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in), np.zeros(fan_out)]
    return out


def _forward(weights: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """The input, each hidden layer's ``tanh`` activations and, last, the logits."""
    acts = [x]
    layers = len(weights) // 2
    for i in range(layers):
        z = acts[-1] @ weights[2 * i] + weights[2 * i + 1]
        acts.append(np.tanh(z) if i < layers - 1 else z)
    return acts


def sgd_step(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, lr: float) -> None:
    """One SGD step on the mean cross-entropy of the batch ``(x, y)``, in place."""
    from scipy.special import softmax

    acts = _forward(weights, x)
    delta = softmax(acts[-1], axis=1)
    delta[np.arange(len(y)), y] -= 1.0
    delta /= len(y)
    for i in reversed(range(len(weights) // 2)):
        w, h = weights[2 * i], acts[i]
        grad_w, grad_b = h.T @ delta, delta.sum(axis=0)
        if i:
            delta = (delta @ w.T) * (1.0 - h**2)
        w -= lr * grad_w
        weights[2 * i + 1] -= lr * grad_b


def sgd(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, epochs: int, batch: int, lr: float, seed: Any):
    """``epochs`` epochs of minibatch SGD from ``weights`` (left unchanged); the new weights.

    Each epoch visits the samples in the order of a fresh permutation from
    ``numpy.random.default_rng(seed)``, in batches of ``batch`` (the last one smaller).
    """
    rng = np.random.default_rng(seed)
    out = [w.copy() for w in weights]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = order[s : s + batch]
            sgd_step(out, x[idx], y[idx], lr)
    return out


def local_update(
    shard: tuple[np.ndarray, np.ndarray], weights: list[np.ndarray], epochs: int, batch: int, lr: float, seed: Any
):
    """A client's round (run on the worker holding its shard): SGD from the global weights."""
    x, y = shard
    return sgd(weights, x, y, epochs, batch, lr, seed)


def _load_code() -> None:
    import scipy.special  # noqa: F401


def fedavg(updates: list[list[np.ndarray]], sizes: list[int]) -> list[np.ndarray]:
    """The clients' weights averaged, each weighted by its shard's share of the samples.

    >>> [w.tolist() for w in fedavg([[np.array([1.0])], [np.array([4.0])]], [2, 1])]
    [[2.0]]
    """
    total = float(sum(sizes))
    return [sum((n / total) * u[j] for u, n in zip(updates, sizes)) for j in range(len(updates[0]))]


def accuracy(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Share of ``x`` whose most likely class is ``y``."""
    return float(np.mean(np.argmax(_forward(weights, x)[-1], axis=1) == y))


def clients_per_round(clients: int, participation: float) -> int:
    """Clients picked each round: ``participation`` of them, rounded, at least one.

    >>> clients_per_round(10, 0.25), clients_per_round(10, 0.01), clients_per_round(10, 1.0)
    (2, 1, 10)
    """
    return max(1, int(round(participation * clients)))


def round_bytes(weights: list[np.ndarray], participants: int) -> int:
    """Bytes of one round: the weights down to and back up from each participating client."""
    return 2 * participants * sum(int(w.nbytes) for w in weights)


def factor_points(splits: list[str], centre: dict[str, Any], **ranges: list[Any]) -> list[dict[str, Any]]:
    """Grid points that vary one parameter at a time around ``centre``, each under every split.

    >>> factor_points(["iid"], {"clients": 10, "local_epochs": 1}, clients=[5, 10], local_epochs=[1, 3])
    [{'split': 'iid', 'clients': 5, 'local_epochs': 1}, {'split': 'iid', 'clients': 10, 'local_epochs': 1}, {'split': 'iid', 'clients': 10, 'local_epochs': 3}]
    """
    if not isinstance(splits, (list, tuple)) or not splits or any(s not in SPLITS for s in splits):
        raise ParameterError("splits", splits, f"a list of splits from {SPLITS}")
    for name, values in ranges.items():
        if name not in centre:
            raise ParameterError(name, values, f"a parameter given a centre value in {sorted(centre)}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(name, values, "a non-empty list of values")
    points: list[dict[str, Any]] = []
    for split in splits:
        for name, values in ranges.items():
            for value in values:
                point = {"split": split, **centre, name: value}
                if point not in points:
                    points.append(point)
    return points


@dataclass
class FedState:
    client: Any
    params: dict[str, Any]
    shards: list[Any]  # futures of (x, y), one per client
    holders: list[str]  # the worker holding each client's shard
    sizes: list[int]
    x_test: np.ndarray
    y_test: np.ndarray
    label_share: float
    weights: list[np.ndarray] = field(default_factory=list)  # the global weights after the last run
    last: dict[str, Any] = field(default_factory=dict)


class FedAvg(BaseWorkload):
    """FedAvg on the digits: ``clients`` clients' shards on the workers, until a held-out accuracy target."""

    name = "fedavg"
    description = "federated averaging over clients' shards on the workers (IID or by label): rounds and time to target"
    defaults = {
        "clients": 10,
        "split": "iid",
        "labels_per_client": 2,
        "local_epochs": 1,
        "participation": 1.0,
        "batch": 10,
        "lr": 0.1,
        "hidden": 0,
        "target_accuracy": 0.93,
        "max_rounds": 50,
        "test_fraction": 0.2,
        "seed": 0,
        "train_seed": -1,
    }
    choices = {"split": SPLITS}
    minimum = {
        "clients": 1,
        "labels_per_client": 1,
        "local_epochs": 1,
        "participation": 1e-6,
        "batch": 1,
        "lr": 1e-12,
        "hidden": 0,
        "target_accuracy": 1e-6,
        "max_rounds": 1,
        "test_fraction": 0.05,
        "seed": 0,
        "train_seed": -1,
    }

    def check_params(self, params: dict[str, Any]) -> None:
        """Refuse what the per-parameter checks cannot see (upper bounds, shards too small)."""
        for key in ("participation", "target_accuracy"):
            if not params[key] <= 1.0:
                raise ParameterError(f"fedavg.{key}", params[key], "a fraction in (0, 1]")
        if not params["test_fraction"] <= 0.5:
            raise ParameterError("fedavg.test_fraction", params["test_fraction"], "a fraction in [0.05, 0.5]")
        if params["labels_per_client"] > CLASSES:
            raise ParameterError("fedavg.labels_per_client", params["labels_per_client"], f"1 to {CLASSES} classes")
        train = len(load_data(params["seed"], params["test_fraction"])[1])
        per_client = params["labels_per_client"] if params["split"] == "label" else 1
        if params["clients"] * per_client > train:
            raise ParameterError(
                "fedavg.clients",
                params["clients"],
                f"at most {train // per_client}: clients × pieces per client may not exceed the {train} training samples",
            )

    def setup(self, lab: Any, **params: Any) -> FedState:
        from labkit.common.scheduler import scheduler_workers

        p = {**self.defaults, **params}
        self.check_params(p)
        x, y, x_test, y_test = load_data(p["seed"], p["test_fraction"])
        parts = split_clients(y, p["clients"], p["split"], p["labels_per_client"], p["seed"])
        addrs = sorted(scheduler_workers(lab.client))
        lab.client.run(_load_code)  # each worker imports what a client's round needs once, untimed
        holders = [addrs[k % len(addrs)] for k in range(len(parts))]
        shards = [
            lab.client.scatter((x[i], y[i]), workers=[a], hash=False) for i, a in zip(parts, holders, strict=True)
        ]
        return FedState(
            client=lab.client,
            params=p,
            shards=shards,
            holders=holders,
            sizes=[len(i) for i in parts],
            x_test=x_test,
            y_test=y_test,
            label_share=label_share(y, parts, p["labels_per_client"]),
        )

    def run(self, state: FedState) -> Work:
        p, client = state.params, state.client
        seed = p["train_seed"] if p["train_seed"] >= 0 else int(np.random.SeedSequence().generate_state(1)[0])
        per_round = clients_per_round(p["clients"], p["participation"])
        pick = np.random.default_rng
        t0 = time.perf_counter()
        weights = init_weights(state.x_test.shape[1], p["hidden"], CLASSES, [seed])
        acc = accuracy(weights, state.x_test, state.y_test)
        curve = [{"t_s": time.perf_counter() - t0, "step": 0, "accuracy": acc}]
        rounds = samples = 0
        while acc < p["target_accuracy"] and rounds < p["max_rounds"]:
            rounds += 1
            chosen = np.arange(p["clients"])
            if per_round < p["clients"]:
                chosen = np.sort(pick([seed, rounds]).choice(p["clients"], per_round, replace=False))
            futures = [
                client.submit(
                    local_update,
                    state.shards[k],
                    weights,
                    p["local_epochs"],
                    p["batch"],
                    p["lr"],
                    [seed, rounds, int(k)],
                    workers=[state.holders[k]],
                    allow_other_workers=False,
                    pure=False,
                )
                for k in chosen
            ]
            updates = client.gather(futures)
            sizes = [state.sizes[k] for k in chosen]
            weights = fedavg(updates, sizes)
            samples += sum(sizes) * p["local_epochs"]
            acc = accuracy(weights, state.x_test, state.y_test)
            curve.append({"t_s": time.perf_counter() - t0, "step": rounds, "accuracy": acc})
        reached = acc >= p["target_accuracy"]
        per_round_bytes = round_bytes(weights, per_round)
        state.weights = weights
        state.last = {
            "time_to_target_s": curve[-1]["t_s"] if reached else None,
            "reached_target": bool(reached),
            "target_accuracy": float(p["target_accuracy"]),
            "final_accuracy": acc,
            "rounds": rounds,
            "rounds_to_target": rounds if reached else None,
            "bytes_per_round": per_round_bytes,
            "bytes_communicated": per_round_bytes * rounds,
            "bytes_to_target": per_round_bytes * rounds if reached else None,
            "clients_per_round": per_round,
            "label_share": state.label_share,
            "run_seed": seed,
            "curve": curve,
        }
        return Work(float(samples), "samples")

    def metrics(self, state: FedState) -> dict[str, Any]:
        """The last run's training metrics, rounds and bytes communicated (see the module's notes)."""
        return dict(state.last)

    def teardown(self, state: FedState) -> None:
        state.shards.clear()
