"""The exactness reference: brute-force nearest neighbours over the embeddings, with numpy/scipy.

Every HNSW or quantized configuration is measured against this: recall@k is the share of the
exact top k that the configuration also returns. It is a ``SearchIndex`` for plain (one dense
vector, unfiltered) searches; fused and filtered references are the engine's own exact scan
(``query.exact_twin``), so fusion and filter semantics are never re-implemented here.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from animelab.embeddings import VectorEmbeddings
from animelab.errors import LabError
from animelab.index.backend import CollectionDescription
from animelab.index.query import Hit, SearchRequest, SparseQuery, ranked


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

    def search(self, request: SearchRequest) -> list[Hit]:
        if request.fused or request.filter is not None or isinstance(request.queries[0].vector, SparseQuery):
            raise LabError("the exact reference answers one dense vector without filters; "
                           "use the engine's exact scan (query.exact_twin) for fused or filtered requests")
        query = request.queries[0]
        row = self.scores(query.using, np.asarray(query.vector))[0]
        ids = self.vectors[query.using].ids
        # Every point goes to the tie-break: a cut first could split a group of equal scores.
        floor = -np.inf if query.score_threshold is None else query.score_threshold
        return ranked([Hit(anime, float(score), {"anime_id": anime}) for anime, score in zip(ids, row) if score >= floor],
                      request.limit)

    def describe(self) -> CollectionDescription:
        return CollectionDescription({name: {"size": int(v.dense.shape[1]), "distance": self.distance, "on_disk": False,
                                             "hnsw": None, "quantization": None}
                                      for name, v in self.vectors.items()})

    def count(self) -> int:
        return len({anime for vectors in self.vectors.values() for anime in vectors.ids})

    def close(self) -> None:
        pass


def recall_at_k(approximate: list[list[str]], exact: list[list[str]], k: int) -> float:
    """Mean share of each exact top-k list found in the matching approximate top-k list."""
    if not exact:
        return float("nan")
    shares = [len(set(a[:k]) & set(e[:k])) / min(k, len(e)) for a, e in zip(approximate, exact, strict=True) if e]
    return float(np.mean(shares))
