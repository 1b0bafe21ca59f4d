"""What several studies that learn need: PyTorch when it is there, a small data set, a small network.

scikit-learn's bundled digits (1797 8×8 images, 10 classes) standardised and split once with a
fixed seed, and a perceptron 64-``hidden``-10 whose seeded weights NumPy and PyTorch code share.

>>> layer_sizes(128), parameter_count(layer_sizes(128))
((64, 128, 10), 9610)
"""

from __future__ import annotations

import collections
import functools
from typing import Any

import numpy as np

from labkit.common.errors import LabkitError

FEATURES, CLASSES = 64, 10
TORCH_HINT = "pip install 'labkit[torch]' (torch==2.13.0 is the CPU build)"


def torch_available() -> bool:
    """Whether PyTorch imports here."""
    try:
        require_torch()
    except LabkitError:
        return False
    return True


def require_torch(what: str = "this workload") -> Any:
    """The ``torch`` module, or a :class:`~labkit.common.errors.LabkitError` saying how to install it."""
    try:
        import torch
    except ImportError as e:
        raise LabkitError(f"{what} needs PyTorch: {TORCH_HINT}") from e
    return torch


Split = collections.namedtuple("Split", "x_train y_train x_test y_test")


@functools.lru_cache(maxsize=2)
def digits_split(seed: int = 0, held_out: float = 0.25) -> Split:
    """scikit-learn's digits, standardised (float32) and split with a fixed seed, stratified by label."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    xa, xb, ya, yb = train_test_split(x, y, test_size=held_out, random_state=seed, stratify=y)
    scale = StandardScaler().fit(xa)
    f32 = functools.partial(np.asarray, dtype=np.float32)
    return Split(f32(scale.transform(xa)), ya.astype(np.int64), f32(scale.transform(xb)), yb.astype(np.int64))


def layer_sizes(hidden: int = 128, depth: int = 1) -> tuple[int, ...]:
    """Widths of the network's layers, input first: ``(64, hidden × depth, 10)``."""
    return (FEATURES, *([hidden] * depth), CLASSES)


def parameter_count(sizes: tuple[int, ...]) -> int:
    """Weights and biases of a network with these layer widths."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def init_weights(sizes: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Seeded float32 weights ``[W0, b0, W1, b1, …]``, ``W`` shaped (out, in), drawn as PyTorch's
    ``nn.Linear`` draws them: uniform in ±1/sqrt(fan in)."""
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        out += [rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)]
    return [w.astype(np.float32) for w in out]


SKIPPED = "skipped: PyTorch not installed (pip install 'labkit[torch]')"


def torch_note() -> str:
    """Whether the PyTorch parts of a notebook run here, in words (:data:`SKIPPED` when they do not)."""
    if not torch_available():
        return SKIPPED
    return f"PyTorch {require_torch().__version__} found: the PyTorch sections run."
