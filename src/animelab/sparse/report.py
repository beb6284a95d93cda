"""The feature sets' part of reports/sparse.md: each set scored by exact dot product with ranx on the
train and test queries (ranked as the engine ranks: score, then anime id), so the fit and the static vs
IDF vs learned comparison are visible before any index is built; the evaluate stage then runs the
same sets through Qdrant with significance tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from ranx import Run, evaluate
from scipy import sparse

from animelab.gold.splits import GoldSplit
from animelab.index.query import SparseQuery
from animelab.params import FEATURE_KINDS, SparseParams
from animelab.sparse.features import FeatureModel, QueryMapper, describe_vocabulary, unmatched_report
from animelab.sparse.store import SparseVectors

REPORT_METRICS = ("ndcg@10", "mrr@10", "recall@100")
FEATURE_SETS = ("feature_static", "feature_idf", "feature_learned")


def exact_run(split: GoldSplit, queries: list[SparseQuery], documents: SparseVectors, limit: int) -> Run:
    """The sparse search done exactly as the engine does it: every anime sharing a feature with the query,
    scored by dot product (negative weights included), ties by anime id."""
    matrix = sparse.csr_matrix(([v for q in queries for v in q.values],
                                ([row for row, q in enumerate(queries) for _ in q.indices],
                                 [i for q in queries for i in q.indices])),
                               shape=(len(queries), documents.matrix.shape[1]))
    scores = (matrix @ documents.matrix.T).toarray()
    shares_a_feature = ((matrix != 0).astype(np.float32) @ (documents.matrix != 0).astype(np.float32).T).toarray() > 0
    ids = np.asarray(documents.ids)
    rankings = []
    for position in range(len(split.queries)):
        row = scores[position]
        candidates = np.flatnonzero(shares_a_feature[position])
        rankings.append([str(ids[i]) for i in sorted(candidates, key=lambda i: (-round(float(row[i]), 6), ids[i]))])
    return split.run_of(rankings, limit)


def feature_report(model: FeatureModel, splits: dict[str, GoldSplit], params: SparseParams,
                   limit: int) -> dict[str, Any]:
    """Vocabulary, query mapping coverage, learned weights, and exact-search scores per split."""
    mapper = QueryMapper(model.space, params.features)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    mapping = {}
    for split_name, split in splits.items():
        mapped = [mapper.map(query.text) for query in split.queries]
        mapping[split_name] = unmatched_report(mapped, [query.category for query in split.queries])
        vectors = [mapper.vector(query.text) for query in split.queries]
        for name in FEATURE_SETS:
            values = evaluate(split.qrels, exact_run(split, vectors, model.sets[name], limit), list(REPORT_METRICS))
            scores.setdefault(name, {})[split_name] = {m: round(float(v), 4) for m, v in values.items()}
    return {
        "vocabulary": describe_vocabulary(model.space),
        "weights": {kind: {"static": params.features.static_weights[kind], "learned": model.learned_weights[kind]}
                    for kind in FEATURE_KINDS},
        "training": model.training,
        "query_mapping": mapping,
        "exact_scores": scores,
    }


def feature_markdown(report: dict[str, Any]) -> list[str]:
    splits = list(next(iter(report["exact_scores"].values())))
    lines = ["# Sparse vectors", "",
             "Feature sets scored by exact dot product (ties by anime id) with ranx; learned weights are fitted on "
             "the train split only, so the test columns are held out. The evaluate stage runs the same sets "
             "through Qdrant (see summary.md).", "",
             "| set | " + " | ".join(f"{m} {s}" for s in splits for m in REPORT_METRICS) + " |",
             "|---|" + "---:|" * (len(splits) * len(REPORT_METRICS))]
    for name, per_split in report["exact_scores"].items():
        lines.append(f"| {name} | " + " | ".join(f"{per_split[s][m]:.4f}" for s in splits for m in REPORT_METRICS)
                     + " |")
    lines += ["", "## Weights per feature kind", "",
              "The weight of every feature of the kind. Learned: the L1 logistic regression's coefficient "
              "(its scale is arbitrary, only ratios rank; 0 = dropped by the L1 penalty).", "",
              "| kind | features | static | learned |", "|---|---:|---:|---:|"]
    for kind, weights in report["weights"].items():
        lines.append(f"| {kind} | {report['vocabulary'][kind]} | {weights['static']:.2f} | {weights['learned']:+.3f} |")
    training = report["training"]
    lines += ["", f"Fitted on {training['pairs']} (query, anime) pairs ({training['relevant_pairs']} relevant) from "
              f"{training['queries_with_pairs']} of {training['train_queries']} train queries.", "",
              "## Query mapping", "",
              "| split | category | queries | with a feature | share |", "|---|---|---:|---:|---:|"]
    for split_name, mapping in report["query_mapping"].items():
        for category, row in mapping["coverage"].items():
            lines.append(f"| {split_name} | {category} | {row['queries']} | {row['with_features']} | "
                         f"{row['share']:.2f} |")
    for split_name, mapping in report["query_mapping"].items():
        words = ", ".join(f"{word} ({count})" for word, count in mapping["unmatched_words"].items())
        lines += ["", f"Most common unmatched words ({split_name}, {mapping['queries_with_unmatched']} queries with "
                  f"some): {words}"]
    return lines
