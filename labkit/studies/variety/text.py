"""Text workload: tokenise and hash-vectorise a generated corpus, then score each document.

The corpus is generated on the workers, partition by partition, and persisted in ``setup``:
documents whose lengths vary (geometric, mean ``mean_words`` words) and whose words follow
Zipf's law over a vocabulary of ``vocabulary`` words (word ``k`` drawn with probability
proportional to ``k ** -zipf``). One timed run turns each partition into a sparse matrix of
word counts with scikit-learn's ``HashingVectorizer`` (no vocabulary to build or share, so
partitions need no communication), normalises each row and scores every document against
a fixed weight vector (a linear model over the hashed features). Each partition's summary
comes back to the client, not its scores; the run checks that the vectoriser counted
exactly the words the generator wrote. Throughput is in tokens.

>>> docs, tokens = corpus_partition(0, 3, vocabulary=100, zipf=1.1, mean_words=5)
>>> len(docs), tokens == sum(len(d.split()) for d in docs)
(3, True)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.workloads.registry import BaseWorkload, Work
from labkit.workloads.tables import partition_rows

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@functools.lru_cache(maxsize=4)
def words(vocabulary: int) -> np.ndarray:
    """The vocabulary: word ``k`` is ``k + 26`` written in base 26 with the letters a-z (two at least).

    >>> list(words(3)), words(650)[-1], words(651)[-1]
    (['ba', 'bb', 'bc'], 'zz', 'baa')
    """
    k = np.arange(vocabulary) + 26
    digits = len(np.base_repr(int(k[-1]), 26))
    letters = LETTERS[(k[:, None] // 26 ** np.arange(digits)[::-1]) % 26]
    return np.array(["".join(row).lstrip("a") for row in letters], dtype=object)


@functools.lru_cache(maxsize=4)
def zipf_cdf(vocabulary: int, zipf: float) -> np.ndarray:
    """Cumulative probabilities of the ranks 1..vocabulary under Zipf's law with exponent ``zipf``."""
    p = np.arange(1, vocabulary + 1, dtype=np.float64) ** -zipf
    cdf = np.cumsum(p)
    return cdf / cdf[-1]


def corpus_partition(index: int, documents: int, vocabulary: int, zipf: float, mean_words: int) -> tuple[list, int]:
    """One partition of the corpus, seeded by its position: ``(documents, words written)``."""
    rng = np.random.default_rng([13, index])
    lengths = rng.geometric(1.0 / mean_words, documents)
    ranks = np.searchsorted(zipf_cdf(vocabulary, zipf), rng.random(int(lengths.sum())), side="right")
    drawn = words(vocabulary)[np.minimum(ranks, vocabulary - 1)]
    ends = np.cumsum(lengths)
    docs = [" ".join(drawn[end - n : end]) + "." for n, end in zip(lengths, ends)]
    return docs, int(lengths.sum())


@functools.lru_cache(maxsize=4)
def weights(n_features: int) -> np.ndarray:
    """The fixed weight vector the documents are scored against."""
    return np.random.default_rng(14).standard_normal(n_features)


def vectorise(docs: list[str], n_features: int) -> Any:
    """The documents as a sparse CSR matrix of word counts, one row per document."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=n_features, token_pattern=r"(?u)\b\w+\b", norm=None, alternate_sign=False)
    return vec.transform(docs)


def score_partition(part: tuple[list, int], n_features: int) -> dict[str, float]:
    """Vectorise and score one partition; its summary (documents, tokens, nonzeros, scores)."""
    docs, written = part
    counts = vectorise(docs, n_features)
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    scores = (counts @ weights(n_features)) / np.maximum(norms, 1e-300)
    return {
        "documents": float(len(docs)),
        "written": float(written),
        "tokens": float(counts.sum()),
        "nonzeros": float(counts.nnz),
        "score_sum": float(scores.sum()),
        "score_max": float(scores.max()) if len(scores) else float("-inf"),
    }


@dataclass
class TextState:
    client: Any
    parts: list[Any]
    params: dict[str, Any]
    last: dict[str, Any] = field(default_factory=dict)


class TextHashing(BaseWorkload):
    """Tokenise, hash-vectorise and score a generated corpus of ``documents`` documents."""

    name = "text-hashing"
    description = "HashingVectorizer over a generated Zipf corpus, then a score per document"
    defaults = {
        "documents": 200_000,
        "partitions": 16,
        "vocabulary": 50_000,
        "zipf": 1.1,
        "mean_words": 50,
        "n_features": 2**18,
    }
    minimum = {"documents": 1, "partitions": 1, "vocabulary": 1, "zipf": 0.0, "mean_words": 1, "n_features": 1}

    def tasks(self, params: dict[str, Any], workers: int) -> int:
        """Partitions: one vectorise-and-score task each."""
        return min(params["partitions"], params["documents"])

    def setup(self, lab: Any, **params: Any) -> TextState:
        from distributed import wait

        parts = min(params["partitions"], params["documents"])
        sizes = partition_rows(params["documents"], parts)
        futures = lab.client.map(
            corpus_partition,
            range(parts),
            sizes,
            vocabulary=params["vocabulary"],
            zipf=float(params["zipf"]),
            mean_words=params["mean_words"],
        )
        wait(futures)
        return TextState(lab.client, futures, params)

    def run(self, state: TextState) -> Work:
        out = state.client.map(score_partition, state.parts, n_features=state.params["n_features"], pure=False)
        summaries = state.client.gather(out)
        del out
        total = {k: sum(s[k] for s in summaries) for k in ("documents", "written", "tokens", "nonzeros", "score_sum")}
        if total["tokens"] != total["written"] or total["documents"] != state.params["documents"]:
            raise RuntimeError(
                f"counted {total['tokens']:.0f} tokens in {total['documents']:.0f} documents; "
                f"{total['written']:.0f} words in {state.params['documents']} documents were written"
            )
        state.last = {
            "tokens": int(total["tokens"]),
            "nonzeros": int(total["nonzeros"]),
            "score_mean": total["score_sum"] / total["documents"],
        }
        return Work(total["tokens"], "tokens")

    def metrics(self, state: TextState) -> dict[str, Any]:
        """Tokens, nonzeros of the sparse matrices and the mean score of the last run."""
        return dict(state.last)

    def teardown(self, state: TextState) -> None:
        state.parts = []
