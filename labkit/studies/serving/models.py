"""The models a serving study serves: one trained in the lab, and a calibrated sleeping one.

:class:`DigitsModel` is scikit-learn's multi-layer perceptron trained on the digits
(:func:`~labkit.workloads.learning.digits_split`); each query classifies ``rows`` held-out
images, so its cost is compute on one core (one BLAS thread). :class:`SleepModel` answers
after sleeping ``service_s``: it uses no CPU, so what it costs beyond its sleep is the
serving machinery's own (dispatch, serialisation, HTTP), apart from any compute.
:func:`calibrate_rows` picks ``rows`` so that one query takes about a target time here.

>>> SleepModel(0.001).serve(3)[0]
3
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError

MODELS = ("sleep", "digits")
"""The models a study may serve, by name."""


def one_thread() -> None:
    """Hold BLAS to one thread in this process, so that one replica is one core's work."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # scikit-learn brings threadpoolctl; without it the environment variables stand
        pass


@dataclass
class SleepModel:
    """A model whose every query sleeps ``service_s`` seconds and uses no CPU."""

    service_s: float
    name: str = "sleep"

    def serve(self, query: int) -> tuple[int, float]:
        """``(query, seconds it took)``."""
        t0 = time.perf_counter()
        time.sleep(self.service_s)
        return int(query), time.perf_counter() - t0


@dataclass
class DigitsModel:
    """scikit-learn's ``MLPClassifier`` trained on the digits; each query classifies ``rows`` images."""

    hidden: int = 128
    rows: int = 200
    seed: int = 0
    name: str = "digits"
    accuracy: float = math.nan
    estimator: Any = field(default=None, repr=False)
    inputs: Any = field(default=None, repr=False)

    def train(self) -> DigitsModel:
        """Fit the network (seeded) and keep its held-out accuracy; ``self``."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        from labkit.workloads.learning import digits_split

        split = digits_split(self.seed)
        net = MLPClassifier(hidden_layer_sizes=(self.hidden,), max_iter=40, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(split.x_train, split.y_train)
        self.estimator, self.accuracy = net, float(net.score(split.x_test, split.y_test))
        self.inputs = np.resize(split.x_test, (max(self.rows, 1), split.x_test.shape[1]))
        return self

    def with_rows(self, rows: int) -> DigitsModel:
        """The same trained network answering ``rows`` images per query."""
        out = DigitsModel(self.hidden, rows, self.seed, self.name, self.accuracy, self.estimator)
        out.inputs = np.resize(self.inputs, (rows, self.inputs.shape[1]))
        return out

    def serve(self, query: int) -> tuple[int, float]:
        """``(the first image's class, seconds it took)``; the images are rolled by the query's index."""
        if self.estimator is None:
            raise ParameterError("model", self, "a trained DigitsModel (call train() first)")
        t0 = time.perf_counter()
        x = np.roll(self.inputs, int(query) % len(self.inputs), axis=0)
        label = int(self.estimator.predict(x)[0])
        return label, time.perf_counter() - t0


def calibrate_rows(model: DigitsModel, target_s: float, tries: int = 7) -> DigitsModel:
    """``model`` with ``rows`` set so that one query takes about ``target_s`` on one thread here."""
    one_thread()
    probe = model.with_rows(1024)
    probe.serve(0)
    took = min(probe.serve(i)[1] for i in range(tries))  # the fastest: outside load only slows a try down
    return model.with_rows(max(1, round(1024 * target_s / took)))


def build(kind: str, service_s: float, *, hidden: int = 128, seed: int = 0) -> Any:
    """The model named ``kind`` (``"sleep"`` or ``"digits"``), taking about ``service_s`` a query."""
    if kind == "sleep":
        return SleepModel(service_s)
    if kind == "digits":
        return calibrate_rows(DigitsModel(hidden=hidden, seed=seed).train(), service_s)
    raise ParameterError("models", kind, f"one or more of {list(MODELS)}")


def service_times(model: Any, n: int = 20) -> np.ndarray:
    """Seconds each of ``n`` queries took in this process, one at a time (no queue, no machinery)."""
    one_thread()
    model.serve(0)
    return np.array([model.serve(i)[1] for i in range(n)])
