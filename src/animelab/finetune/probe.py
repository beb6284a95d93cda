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


def f1_of_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, average: str) -> np.ndarray:
    """F1 from true/false positive and false negative counts per label (last axis), as scikit-learn's
    ``f1_score(zero_division=0)`` scores the predictions they count: micro pools the labels, macro averages them."""
    if average == "micro":
        tp, fp, fn = tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)
    denominator = 2 * tp + fp + fn
    scores = np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    return scores if average == "micro" else scores.mean(axis=-1)


# Resamples scored per vectorised call: bounds the (resamples x anime x labels) count arrays.
PERMUTATION_BATCH = 100


def paired_f1_test(truth: np.ndarray, base: np.ndarray, tuned: np.ndarray, average: str, resamples: int,
                   seed: int) -> dict[str, float]:
    """Two-sided paired permutation test of F1(tuned) - F1(base) over the same anime."""
    stacked = np.concatenate([base, tuned]).astype(bool)
    size = len(truth)
    truths = np.concatenate([truth, truth]).astype(bool)
    # Each stacked row's counts per label: a resample's F1 sums the rows it picks, one per anime.
    counts = [(stacked & truths).astype(np.int32), (stacked & ~truths).astype(np.int32),
              (~stacked & truths).astype(np.int32)]

    def f1_of_rows(rows: np.ndarray) -> np.ndarray:
        return f1_of_counts(*(count[rows].sum(axis=-2) for count in counts), average)

    def difference(base_rows: np.ndarray, tuned_rows: np.ndarray, axis: int) -> np.ndarray:
        return f1_of_rows(tuned_rows) - f1_of_rows(base_rows)

    # The samples are row indices into ``stacked``: permuting them swaps base/tuned per anime.
    result = permutation_test((np.arange(size), np.arange(size) + size), difference, permutation_type="samples",
                              n_resamples=resamples, alternative="two-sided", random_state=seed, vectorized=True,
                              batch=PERMUTATION_BATCH)
    return {"base": f1(truth, base, average), "tuned": f1(truth, tuned, average),
            "delta": float(result.statistic), "p_value": float(result.pvalue)}
