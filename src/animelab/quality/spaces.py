"""Two embedding spaces of the same anime compared (two text models: different dimensions, unrelated axes).

Per-dimension drift is meaningless across spaces, so these measures only use each space's own geometry:

- **kNN overlap@k**: for each anime, the share of its k nearest neighbours (cosine) in space A that are
  also among its k nearest in space B;
- **linear CKA** (Kornblith et al., 2019) of the unit vectors: the similarity of the two centred Gram
  matrices, invariant to rotations and isotropic scaling of either space;
- **rank correlation of pairwise similarities**: Spearman's rho between the cosine similarities of the same
  anime pairs in both spaces.

Each comes with a permutation baseline: the same measure after the anime of space B are relabelled at
random (``drift.permutations`` times), its mean and the +1-smoothed share of relabellings at least as high
(the p-value). Both sides are restricted to the anime they share and subsampled with the seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from sklearn.neighbors import NearestNeighbors


def knn_sets(vectors: np.ndarray, k: int) -> np.ndarray:
    """Row i: the indices of i's k nearest other rows by cosine distance."""
    neighbours = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vectors)
    indices = neighbours.kneighbors(return_distance=False)  # the query point itself is left out
    return indices[:, :k]


def knn_overlap(a_neighbours: np.ndarray, b_neighbours: np.ndarray) -> float:
    k = a_neighbours.shape[1]
    shared = [len(set(a).intersection(b)) for a, b in zip(a_neighbours.tolist(), b_neighbours.tolist())]
    return float(np.mean(shared) / k)


class LinearCka:
    """Linear CKA of ``a`` against row orders of ``b``: the denominators and centring do not change when
    b's rows are permuted, so only the cross term is recomputed per relabelling."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a = a - a.mean(axis=0)
        self.b = b - b.mean(axis=0)
        self.scale = np.linalg.norm(self.a.T @ self.a, "fro") * np.linalg.norm(self.b.T @ self.b, "fro")

    def __call__(self, order: np.ndarray) -> float:
        return float(np.linalg.norm(self.b[order].T @ self.a, "fro") ** 2 / self.scale)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def permutation_summary(observed: float, null: np.ndarray) -> dict[str, float]:
    return {"value": observed, "null_mean": float(null.mean()),
            "p_value": float((1 + np.sum(null >= observed)) / (1 + len(null)))}


def compare_spaces(a: np.ndarray, b: np.ndarray, k: int, max_pairs: int, permutations: int,
                   rng: np.random.Generator) -> dict[str, Any]:
    """``a`` and ``b``: row i of each is the same anime. kNN overlap@k, linear CKA and the Spearman
    correlation of pairwise cosine similarities, each with its relabelling baseline."""
    n = len(a)
    a_unit, b_unit = unit(a.astype(np.float64)), unit(b.astype(np.float64))
    a_knn, b_knn = knn_sets(a_unit, k), knn_sets(b_unit, k)
    pairs = min(max_pairs, n * (n - 1) // 2)
    first, second = rng.integers(0, n, size=(2, pairs * 2))
    distinct = first != second
    first, second = first[distinct][:pairs], second[distinct][:pairs]
    a_similarity = np.einsum("ij,ij->i", a_unit[first], a_unit[second])
    # Every relabelling reads its pairs' similarities off one Gram matrix of b (gathering the pairs' vectors
    # each time was nine tenths of the stage's space comparisons).
    b_gram = b_unit @ b_unit.T

    def spearman(order: np.ndarray) -> float:
        return float(stats.spearmanr(a_similarity, b_gram[order[first], order[second]]).statistic)

    identity = np.arange(n)
    cka = LinearCka(a_unit, b_unit)
    null: dict[str, list[float]] = {"overlap": [], "cka": [], "spearman": []}
    for _ in range(permutations):
        order = rng.permutation(n)
        # Anime i of the relabelled B is anime order[i]: its neighbours, renamed back to relabelled rows.
        position = np.empty(n, dtype=int)
        position[order] = identity
        null["overlap"].append(knn_overlap(a_knn, position[b_knn[order]]))
        null["cka"].append(cka(order))
        null["spearman"].append(spearman(order))
    return {
        "anime": n, "dims": [int(a.shape[1]), int(b.shape[1])], "k": k, "pairs": int(len(first)),
        "permutations": permutations,
        f"knn_overlap_at_{k}": permutation_summary(knn_overlap(a_knn, b_knn), np.asarray(null["overlap"])),
        "linear_cka": permutation_summary(cka(identity), np.asarray(null["cka"])),
        "similarity_spearman": permutation_summary(spearman(identity), np.asarray(null["spearman"])),
    }
