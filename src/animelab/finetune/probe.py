"""The classification view, done honestly: can an encoder tell an unseen anime's genres from its synopsis?

Genre labels of test anime are predicted by a k-nearest-neighbour vote (scikit-learn) over train
anime, from synopsis embeddings only: the genre text (which names the labels) is never used. Base
and fine-tuned encoders are compared on the same anime with a paired permutation test (scipy)
that swaps the two encoders' predictions anime by anime.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import permutation_test
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MultiLabelBinarizer

AVERAGES = ("micro", "macro")


def label_matrix(train_labels: list[list[str]], test_labels: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    binarizer = MultiLabelBinarizer().fit(train_labels + test_labels)
    return binarizer.transform(train_labels), binarizer.transform(test_labels)


def knn_predictions(train_vectors: np.ndarray, train_truth: np.ndarray, test_vectors: np.ndarray, k: int) -> np.ndarray:
    """Multi-label kNN: a label is predicted when most of the k nearest train anime (cosine) carry it."""
    classifier = KNeighborsClassifier(n_neighbors=min(k, len(train_vectors)), metric="cosine")
    return classifier.fit(train_vectors, train_truth).predict(test_vectors)


def f1(truth: np.ndarray, predicted: np.ndarray, average: str) -> float:
    return float(f1_score(truth, predicted, average=average, zero_division=0))


def paired_f1_test(truth: np.ndarray, base: np.ndarray, tuned: np.ndarray, average: str, resamples: int,
                   seed: int) -> dict[str, float]:
    """Two-sided paired permutation test of F1(tuned) - F1(base) over the same anime."""
    stacked = np.concatenate([base, tuned])
    size = len(truth)

    def difference(base_rows: np.ndarray, tuned_rows: np.ndarray) -> float:
        return f1(truth, stacked[tuned_rows], average) - f1(truth, stacked[base_rows], average)

    # The samples are row indices into ``stacked``: permuting them swaps base/tuned per anime.
    result = permutation_test((np.arange(size), np.arange(size) + size), difference, permutation_type="samples",
                              n_resamples=resamples, alternative="two-sided", random_state=seed, vectorized=False)
    return {"base": f1(truth, base, average), "tuned": f1(truth, tuned, average),
            "delta": float(result.statistic), "p_value": float(result.pvalue)}
