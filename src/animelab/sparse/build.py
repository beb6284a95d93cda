"""The sparse stage's work: every sparse set from the corpus (and train queries), plus its report.

Feature sets share one vocabulary: ``feature_static`` (kind weights), ``feature_idf`` and
``feature_learned`` (kind weights fitted on TRAIN queries only). ``bm25`` is
Qdrant's BM25 over titles and synopsis. The report scores the feature sets by exact dot
product (ranked as the engine ranks: score, then anime id) on the train and test queries with
ranx, so the fit and the static vs IDF vs learned comparison are visible before any index is
built; the evaluate stage then runs them through Qdrant with significance tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ranx import Run, evaluate
from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.evaluation.runs import GoldSplit
from animelab.index.points import sparse_row
from animelab.index.query import SparseQuery
from animelab.params import FEATURE_KINDS, SparseParams
from animelab.sparse.bm25 import bm25_queries
from animelab.sparse.features import (FeatureSpace, QueryMapper, corpus_features, describe_vocabulary, idf_weights,
                                      kind_weights, unmatched_report, weighted)
from animelab.sparse.learned import fit_kind_weights, training_pairs
from animelab.sparse.vectors import (BM25, FEATURE_SETS, LEXICAL, MODIFIERS, VOCABULARY, SparseVectors,
                                     load_sparse_manifest)

REPORT_METRICS = ("ndcg@10", "mrr@10", "recall@100")


@dataclass
class FeatureModel:
    space: FeatureSpace
    sets: dict[str, SparseVectors]
    learned_weights: dict[str, float]
    training: dict[str, Any]


def feature_sets(entries: list[AnimeEntry], params: SparseParams, train: GoldSplit, seed: int) -> FeatureModel:
    space, per_entry = corpus_features(entries, params.features)
    binary = space.binary(per_entry)
    mapper = QueryMapper(space, params.features)
    queries = space.binary([mapper.map(query["text"]).keys for query in train.queries])
    row = {entry.id: position for position, entry in enumerate(entries)}
    judged = train.qrels.to_dict()
    relevant = [{row[anime] for anime, grade in judged.get(query["id"], {}).items()
                 if grade >= params.learned.relevant_grade and anime in row} for query in train.queries]
    pairs = training_pairs(queries, binary, space.kind_indicator(), relevant, params.learned, seed)
    learned = fit_kind_weights(pairs, params.learned, seed)
    ids = [entry.id for entry in entries]
    matrices = {"feature_static": weighted(binary, kind_weights(space, params.features.static_weights)),
                "feature_idf": weighted(binary, idf_weights(binary)),
                "feature_learned": weighted(binary, kind_weights(space, learned))}
    training = {"train_queries": len(train.queries), "queries_with_pairs": pairs.queries, "pairs": len(pairs.labels),
                "relevant_pairs": int(pairs.labels.sum())}
    return FeatureModel(space, {name: SparseVectors(name, ids, matrix) for name, matrix in matrices.items()},
                        learned, training)


def encode_queries(name: str, texts: list[str], sparse_dir: Path | None, params: SparseParams,
                   lexical: sparse.csr_matrix | None = None) -> list[SparseQuery]:
    """Query vectors for a sparse set: feature mapping, BM25, or ``lexical``, the BGE-M3 lexical weights the
    model already gave the texts when it encoded them."""
    if name == LEXICAL:
        if lexical is None:
            raise ValueError(f"sparse set {LEXICAL} needs the query texts' lexical weights from BGE-M3")
        return [sparse_row(lexical, row) for row in range(len(texts))]
    manifest = load_sparse_manifest(sparse_dir)
    if name == BM25:
        return bm25_queries(texts, params.bm25, manifest["sets"][BM25]["avg_len"])
    vocabulary = json.loads((Path(sparse_dir) / VOCABULARY).read_text(encoding="utf-8"))
    mapper = QueryMapper(FeatureSpace(vocabulary), params.features)
    return [mapper.vector(text) for text in texts]


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
    results = {}
    for position, query in enumerate(split.queries):
        row, excluded = scores[position], set(query["exclude"])
        candidates = [i for i in np.flatnonzero(shares_a_feature[position]) if ids[i] not in excluded]
        ranked = sorted(candidates, key=lambda i: (-round(float(row[i]), 6), ids[i]))[:limit]
        results[query["id"]] = {str(ids[i]): float(len(ranked) - rank) for rank, i in enumerate(ranked)}
    return Run(results)


def feature_report(model: FeatureModel, splits: dict[str, GoldSplit], params: SparseParams,
                   limit: int) -> dict[str, Any]:
    """Vocabulary, query mapping coverage, learned weights, and exact-search scores per split."""
    mapper = QueryMapper(model.space, params.features)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    mapping = {}
    for split_name, split in splits.items():
        mapped = [mapper.map(query["text"]) for query in split.queries]
        mapping[split_name] = unmatched_report(mapped, [query["category"] for query in split.queries])
        vectors = [mapper.vector(query["text"]) for query in split.queries]
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


def report_markdown(report: dict[str, Any], avg_len: float) -> str:
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
    lines += ["", f"BM25: average document length {avg_len:.1f} tokens (title, titles, synonyms, synopsis).", ""]
    return "\n".join(lines)


def manifest_entry(name: str, sha256: str, **details: Any) -> dict[str, Any]:
    return {"modifier": MODIFIERS[name], "sha256": sha256, **details}
