"""Exact against approximate algorithms for the same task, as sizes grow: SVD and nearest neighbours.

``approx-vs-exact`` works on a ``size`` × ``columns`` chunked array (``chunk_rows`` rows a chunk,
persisted in ``setup``) of known rank ``rank`` plus Gaussian noise: ``A = G B + noise·N``, with
``G`` and ``N`` standard normal and ``B`` orthonormal rows scaled from 2 down to 1, so that the
data's singular values stand well above the noise's, whose largest is about
``noise·(√size + √columns)`` (:func:`noise_edge`). ``algorithm`` is one of:

- ``"svd-exact"``: ``dask.array.linalg.svd`` (tall-and-skinny QR, every singular value);
- ``"svd-randomized"``: ``dask.array.linalg.svd_compressed`` with ``k=rank`` and
  ``power_iterations`` power iterations (randomized range finder, Halko et al. 2011);
- ``"knn-exact"``: the ``k`` nearest rows of each of ``queries`` query points (drawn as the rows
  are), by brute force on each chunk, the chunks' candidates merged;
- ``"knn-approx"``: the same on a random projection: rows and queries projected on ``projected``
  Gaussian random directions (scikit-learn's ``GaussianRandomProjection``, Johnson–Lindenstrauss),
  each chunk's ``candidates`` nearest there re-ranked by their true distances. A true neighbour
  that the projection does not rank among the candidates is missed.

The metric ``task_error`` (not ``error``, which a trial keeps for a failure's message) is, for SVD, the relative reconstruction error ``‖A − A_k‖_F / ‖A‖_F`` of the
rank-``rank`` truncation, with ``error_exact`` the optimum (Eckart–Young: from the eigenvalues of
``AᵀA``, computed in ``setup``) and ``rank_found`` (exact SVD only) the number of singular values
above 1.5× the noise edge; for nearest neighbours ``task_error`` is ``1 − recall@k`` against the exact
neighbours (computed in ``setup`` with the exact algorithm), and ``error_exact`` is 0. Each run
first relabels the persisted array (one task per chunk passing its block through), so no result
of an earlier run is reused; the error is computed after the timed run. Work: rows.

>>> noise_edge(10000, 100, 0.1)
11.0
>>> recall(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 1], [4, 5, 7]]))
0.8333333333333334
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.common.errors import ParameterError
from labkit.workloads.registry import BaseWorkload, Work

ALGORITHMS = ("svd-exact", "svd-randomized", "knn-exact", "knn-approx")
_REFERENCE: dict[tuple, np.ndarray] = {}  # on the client: exact neighbours per data set, the latest four


def basis(columns: int, rank: int, seed: int) -> np.ndarray:
    """The data's row space ``B`` (rank × columns): orthonormal rows scaled from 2 down to 1."""
    q, _ = np.linalg.qr(np.random.default_rng([seed, 0]).standard_normal((columns, rank)))
    return (q * np.linspace(2.0, 1.0, rank)).T


def noise_edge(size: int, columns: int, noise: float) -> float:
    """About the largest singular value of a ``size`` × ``columns`` matrix of noise of that standard deviation."""
    return noise * (math.sqrt(size) + math.sqrt(columns))


def low_rank_array(size: int, columns: int, rank: int, noise: float, chunk_rows: int, seed: int) -> Any:
    """``G B + noise·N`` as a lazy Dask array, one chunk of columns, each block made on a worker."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    g = rng.standard_normal((size, rank), chunks=(chunk_rows, rank))
    return g @ basis(columns, rank, seed) + noise * rng.standard_normal((size, columns), chunks=(chunk_rows, columns))


def query_points(queries: int, columns: int, rank: int, noise: float, seed: int) -> np.ndarray:
    """Query points drawn as the array's rows are (another seed)."""
    rng = np.random.default_rng([seed, 1])
    return rng.standard_normal((queries, rank)) @ basis(columns, rank, seed) + noise * rng.standard_normal(
        (queries, columns)
    )


def _brute(block: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Squared distances and positions of the ``k`` nearest rows of ``block`` to each query."""
    d2 = (queries**2).sum(1)[:, None] - 2.0 * queries @ block.T + (block**2).sum(1)[None, :]
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return np.take_along_axis(d2, idx, axis=1), idx


def knn_part(block: np.ndarray, queries: np.ndarray, k: int, offset: int, projection: tuple | None) -> tuple:
    """The ``k`` nearest rows of ``block`` to each query: (squared distances, row numbers in the whole
    array). ``projection=None``: brute force. ``(dims, candidates, seed)``: the rows and queries
    projected on ``dims`` Gaussian random directions (scikit-learn's ``GaussianRandomProjection``),
    the ``candidates`` nearest there, re-ranked by their true distances."""
    kk = min(k, len(block))
    if projection is None:
        d2, idx = _brute(block, queries, kk)
    else:
        from sklearn.random_projection import GaussianRandomProjection

        dims, candidates, seed = projection
        rp = GaussianRandomProjection(n_components=dims, random_state=seed).fit(queries[:1])
        _, cand = _brute(rp.transform(block), rp.transform(queries), min(max(candidates, kk), len(block)))
        d2, pick = _brute_among(block, queries, cand, kk)
        idx = np.take_along_axis(cand, pick, axis=1)
    return d2, idx + offset


def _brute_among(block: np.ndarray, queries: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((block[cand] - queries[:, None, :]) ** 2).sum(axis=2)
    pick = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return np.take_along_axis(d2, pick, axis=1), pick


def knn_merge(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """Row numbers of the ``k`` nearest among the chunks' answers, nearest first."""
    dist = np.concatenate([d for d, _ in parts], axis=1)
    idx = np.concatenate([i for _, i in parts], axis=1)
    return np.take_along_axis(idx, np.argsort(dist, axis=1, kind="stable")[:, :k], axis=1)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact neighbours that were found (recall@k)."""
    return float((found[:, :, None] == exact[:, None, :]).any(axis=2).mean())


def _warm() -> None:
    import sklearn.random_projection  # noqa: F401


def _same(block: np.ndarray) -> np.ndarray:
    return block


def _relabelled(x: Any) -> Any:
    return x.map_blocks(_same, name=f"approx-input-{uuid.uuid4().hex}", dtype=x.dtype)


def nearest(client: Any, x: Any, queries: Any, k: int, projection: tuple | None) -> np.ndarray:
    """The ``k`` nearest rows of the Dask array ``x`` to each query (a future of the points)."""
    import dask

    blocks = _relabelled(x).to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(x.chunks[0])[:-1]]).tolist()
    parts = [dask.delayed(knn_part)(b, queries, k, off, projection) for b, off in zip(blocks, offsets)]
    return client.compute(dask.delayed(knn_merge)(parts, k)).result()


@dataclass
class ApproxState:
    client: Any
    params: dict[str, Any]
    array: Any
    norm2: float | None = None
    error_exact: float | None = None
    result: Any = None  # a run's result, until its error is measured
    queries: Any = None
    reference: np.ndarray | None = None
    last: dict[str, Any] = field(default_factory=dict)


class ApproxVsExact(BaseWorkload):
    """Exact and approximate SVD or nearest neighbours of a low-rank array plus noise: time and error."""

    name = "approx-vs-exact"
    description = "exact vs approximate algorithms (SVD, nearest neighbours) on low-rank data: time and error"
    defaults = {
        "algorithm": "svd-randomized",
        "size": 40_000,
        "columns": 128,
        "rank": 10,
        "noise": 0.05,
        "chunk_rows": 10_000,
        "power_iterations": 1,
        "queries": 500,
        "k": 10,
        "projected": 32,
        "candidates": 100,
        "seed": 0,
    }
    choices = {"algorithm": ALGORITHMS}
    minimum = {
        "size": 2,
        "columns": 2,
        "rank": 1,
        "noise": 0.0,
        "chunk_rows": 2,
        "power_iterations": 0,
        "queries": 1,
        "k": 1,
        "projected": 1,
        "candidates": 1,
        "seed": 0,
    }

    def setup(self, lab: Any, **params: Any) -> ApproxState:
        from distributed import wait

        p = {**self.defaults, **params}
        _check(p)
        x = lab.client.persist(
            low_rank_array(*(p[k] for k in ("size", "columns", "rank", "noise", "chunk_rows", "seed")))
        )
        wait(x)
        state = ApproxState(lab.client, p, x)
        if p["algorithm"].startswith("svd"):
            gram = (x.T @ x).compute()
            state.norm2 = float(np.trace(gram))
            tail = np.sort(np.linalg.eigvalsh(gram))[: p["columns"] - p["rank"]]
            state.error_exact = math.sqrt(max(float(tail.sum()), 0.0) / state.norm2)
            return state
        lab.client.run(_warm)  # scikit-learn imported on every worker, untimed
        q = query_points(p["queries"], p["columns"], p["rank"], p["noise"], p["seed"])
        state.queries = lab.client.scatter(q, broadcast=True, hash=False)
        key = tuple(p[k] for k in ("size", "columns", "rank", "noise", "chunk_rows", "seed", "queries", "k"))
        if key not in _REFERENCE:
            while len(_REFERENCE) >= 4:
                _REFERENCE.pop(next(iter(_REFERENCE)))
            _REFERENCE[key] = nearest(lab.client, x, state.queries, p["k"], None)
        state.reference = _REFERENCE[key]
        return state

    def run(self, state: ApproxState) -> Work:
        from distributed import wait

        p, client = state.params, state.client
        if p["algorithm"] == "knn-exact" or p["algorithm"] == "knn-approx":
            projection = None if p["algorithm"] == "knn-exact" else (p["projected"], p["candidates"], p["seed"])
            state.result = nearest(client, state.array, state.queries, p["k"], projection)
        else:
            import dask.array as da

            a = _relabelled(state.array)
            if p["algorithm"] == "svd-exact":
                usv = da.linalg.svd(a)
            else:
                usv = da.linalg.svd_compressed(a, k=p["rank"], n_power_iter=p["power_iterations"], seed=p["seed"])
            state.result = client.persist(list(usv))
            wait(state.result)
        return Work(float(p["size"]), "rows")

    def metrics(self, state: ApproxState) -> dict[str, Any]:
        """The error of the last run (and, exact SVD, the rank found), the exact algorithm's error, chunks."""
        if state.result is None:
            return dict(state.last)
        p, out, state.result = state.params, state.result, None
        last: dict[str, Any] = {"chunks": len(state.array.chunks[0]), "rank_known": p["rank"]}
        if p["algorithm"].startswith("knn"):
            found = recall(out, state.reference)
            last.update(task_error=1.0 - found, error_exact=0.0, recall_at_k=found)
        else:
            u, s, v = out
            r = p["rank"]
            residual = float(((state.array - (u[:, :r] * s[:r]) @ v[:r]) ** 2).sum().compute())
            last.update(task_error=math.sqrt(residual / state.norm2), error_exact=state.error_exact)
            if p["algorithm"] == "svd-exact":
                edge = noise_edge(p["size"], p["columns"], p["noise"])
                last["rank_found"] = int(np.sum(s.compute() > 1.5 * edge))
        last["error_added"] = last["task_error"] - last["error_exact"]
        state.last = last
        return dict(last)

    def teardown(self, state: ApproxState) -> None:
        state.array = state.result = state.queries = None


def _check(p: dict[str, Any]) -> None:
    """Refuse parameters that do not fit together (each one alone was checked by the Sweep)."""
    if p["rank"] > min(p["columns"], p["size"]):
        raise ParameterError("approx-vs-exact.rank", p["rank"], f"at most columns and size ({p['columns']})")
    if p["algorithm"].startswith("svd") and p["chunk_rows"] < p["columns"]:
        raise ParameterError("approx-vs-exact.chunk_rows", p["chunk_rows"], f">= columns ({p['columns']}) for the SVD")
    if p["algorithm"].startswith("knn") and p["k"] > p["size"]:
        raise ParameterError("approx-vs-exact.k", p["k"], f"at most size ({p['size']})")
    if p["algorithm"] == "knn-approx" and p["candidates"] < p["k"]:
        raise ParameterError("approx-vs-exact.candidates", p["candidates"], f"at least k ({p['k']})")
