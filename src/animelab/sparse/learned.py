"""Learned feature weights: one multiplier per feature kind, fitted on train-split queries.

A (query, anime) pair is described by what the two share, counted per kind: ``x_k`` is the number
of the query's features of kind ``k`` the anime has. An L1-regularised logistic regression
(scikit-learn, liblinear, seeded) predicts "relevant" (qrels grade >= ``learned.relevant_grade``)
from ``x``; its coefficient ``w_k`` is the kind's learned weight, the counterpart of the static
weight. The dot product of a query's 0/1 vector with the anime's weighted features is then
exactly the model's ``w . x`` (the intercept does not change a ranking). The fit is pointwise
(relevant or not), not NDCG itself: the reports say how far that carries.

Pairs: every anime sharing at least one feature with the query (others score 0 whatever the
weights, so they carry nothing to learn), all relevant ones kept and up to
``negatives_per_query`` non-relevant ones sampled with the seed. Choosing pairs by ``x`` and
sub-sampling negatives uniformly leave the coefficients unbiased (only the intercept moves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from animelab.params import FEATURE_KINDS, LearnedParams


@dataclass
class Pairs:
    features: np.ndarray  # pairs x kinds
    labels: np.ndarray    # 1 relevant, 0 not
    queries: int


def training_pairs(queries: sparse.csr_matrix, documents: sparse.csr_matrix, indicator: sparse.csr_matrix,
                   relevant: list[set[int]], params: LearnedParams, seed: int) -> Pairs:
    """``queries`` and ``documents`` (0/1, rows x features), ``indicator``
    (features x kinds); ``relevant[i]``: the anime rows relevant to query ``i``."""
    rng = np.random.default_rng(seed)
    overlap = (queries @ documents.T).tocsr()
    query_rows, document_rows, labels = [], [], []
    for query in range(queries.shape[0]):
        candidates = overlap.indices[overlap.indptr[query]:overlap.indptr[query + 1]]
        positives = np.asarray(sorted(set(candidates.tolist()) & relevant[query]), dtype=np.int64)
        negatives = np.setdiff1d(candidates, positives)
        if len(negatives) > params.negatives_per_query:
            negatives = np.sort(rng.choice(negatives, params.negatives_per_query, replace=False))
        chosen = np.concatenate([positives, negatives])
        query_rows.append(np.full(len(chosen), query))
        document_rows.append(chosen)
        labels.append(np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))]))
    query_rows_, document_rows_ = np.concatenate(query_rows), np.concatenate(document_rows)
    shared = queries[query_rows_].multiply(documents[document_rows_])
    return Pairs(np.asarray((shared @ indicator).todense()), np.concatenate(labels).astype(np.int64),
                 int(sum(len(rows) > 0 for rows in query_rows)))


def fit_kind_weights(pairs: Pairs, params: LearnedParams, seed: int) -> dict[str, float]:
    """The logistic regression's coefficient per kind (0 for kinds no pair shares)."""
    if len(set(pairs.labels.tolist())) < 2:
        raise ValueError("learned weights need relevant and non-relevant pairs among the train queries")
    model = LogisticRegression(l1_ratio=1.0, C=params.l1_c, solver="liblinear", random_state=seed, max_iter=1000)
    model.fit(pairs.features, pairs.labels)
    return {kind: round(float(weight), 6) for kind, weight in zip(FEATURE_KINDS, model.coef_[0], strict=True)}
