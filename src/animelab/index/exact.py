"""The exactness reference: brute-force nearest neighbours over the embeddings, with numpy/scipy.

Every HNSW or quantized configuration is measured against this: recall@k is the share of the
exact top k that the configuration also returns.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from animelab.embeddings import VectorEmbeddings


class ExactIndex:
    def __init__(self, vectors: dict[str, VectorEmbeddings], distance: str):
        self.vectors = vectors
        self.distance = distance

    def scores(self, using: str, queries: np.ndarray) -> np.ndarray:
        """(queries x points) similarity, larger is closer, as Qdrant scores each distance."""
        matrix = self.vectors[using].dense
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.distance == "euclid":
            return -cdist(queries, matrix, metric="euclidean")
        if self.distance == "cosine":
            return 1.0 - cdist(queries, matrix, metric="cosine")
        return queries @ matrix.T

    def top_k(self, using: str, queries: np.ndarray, k: int) -> list[list[str]]:
        """Anime ids of the exact top k per query; ties broken by corpus order, so results are stable."""
        ids = self.vectors[using].ids
        scores = self.scores(using, queries)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[ids[column] for column in row] for row in order]


def recall_at_k(approximate: list[list[str]], exact: list[list[str]], k: int) -> float:
    """Mean share of each exact top-k list found in the matching approximate top-k list."""
    if not exact:
        return float("nan")
    shares = [len(set(a[:k]) & set(e[:k])) / min(k, len(e)) for a, e in zip(approximate, exact, strict=True) if e]
    return float(np.mean(shares))
