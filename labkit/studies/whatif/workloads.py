"""``sleep-graph``: task graphs of sleeping tasks with real result sizes, for checking replays.

Sleeping tasks take the time they are told on any number of workers (they do not compete
for cores), so a 2-core machine can run 8 workers and measure what a replay predicts for
them; their results are real NumPy arrays of ``result_kb``, so transfers between workers
and memory are real too. Three shapes:

- ``map``: ``tasks`` independent tasks, then one task that takes every result;
- ``tree``: ``tasks`` leaves combined four at a time, level by level, to one result;
- ``layers``: four layers of ``tasks / 4`` tasks, each taking two results of the layer
  before (chosen with ``seed``), then one task that takes the last layer.

Each task sleeps ``task_ms`` × a factor drawn uniformly in ``1 ± spread`` (seeded).

>>> g, out = graph({"shape": "tree", "tasks": 16, "task_ms": 1.0, "result_kb": 1.0, "spread": 0.0, "seed": 0})
>>> len(g), out
(22, 'total')
"""

from __future__ import annotations

import random
import time
from typing import Any

from labkit.common.errors import ParameterError
from labkit.workloads.registry import BaseWorkload, ClientState, Work


def _task(seconds: float, nbytes: int, *inputs: Any) -> Any:
    import numpy as np

    time.sleep(seconds)
    return np.ones(max(1, nbytes // 8))


def _total(*inputs: Any) -> int:
    return sum(int(x.size) for x in inputs)


def graph(params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The Dask graph of one run (a dict of tasks) and its output key."""
    rng = random.Random(params["seed"])
    nbytes, ms, spread = int(params["result_kb"] * 1024), params["task_ms"], params["spread"]

    def task(*inputs: str) -> tuple[Any, ...]:
        return (_task, ms / 1e3 * rng.uniform(1 - spread, 1 + spread), nbytes, *inputs)

    n, shape = params["tasks"], params["shape"]
    width = max(1, n // 4) if shape == "layers" else n
    dsk: dict[str, Any] = {f"leaf-{i}": task() for i in range(width)}
    last = list(dsk)
    if shape == "tree":
        level = 0
        while len(last) > 1:
            level += 1
            groups = [last[i : i + 4] for i in range(0, len(last), 4)]
            last = [f"combine-{level}-{j}" for j in range(len(groups))]
            dsk.update({k: task(*g) for k, g in zip(last, groups)})
    elif shape == "layers":
        for layer in range(1, 4):
            keys = [f"layer{layer}-{j}" for j in range(width)]
            dsk.update({k: task(*rng.sample(last, min(2, len(last)))) for k in keys})
            last = keys
    dsk["total"] = (_total, *last)
    return dsk, "total"


class SleepGraph(BaseWorkload):
    """Sleeping tasks in a map, tree or layered graph, with results of a set size."""

    name = "sleep-graph"
    description = "sleeping tasks in a map, tree or layered graph, results of a set size (replay checks)"
    defaults = {"shape": "tree", "tasks": 64, "task_ms": 50.0, "result_kb": 256.0, "spread": 0.2, "seed": 0}
    choices = {"shape": ("map", "tree", "layers")}
    minimum = {"tasks": 1, "task_ms": 0.0, "result_kb": 0.0, "spread": 0.0, "seed": 0}
    maximum = {"tasks": 100_000, "spread": 0.99}

    def check_params(self, params: dict[str, Any]) -> None:
        """Layers need at least 4 tasks (one per layer)."""
        if params.get("shape") == "layers" and params.get("tasks", 4) < 4:
            raise ParameterError("sleep-graph.tasks", params["tasks"], "at least 4 for shape='layers'")

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Tasks per run, the final one included."""
        return len(graph(params)[0])

    def setup(self, lab: Any, **params: Any) -> ClientState:
        self.check_params(params)
        return ClientState(lab.client, params)

    def run(self, state: ClientState) -> Work:
        dsk, out = graph(state.params)
        state.client.get(dsk, out)
        return Work(len(dsk), "tasks")
