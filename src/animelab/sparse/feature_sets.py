"""The feature sets method: categorical feature vectors (``features.py``) weighted three ways, one shared
vocabulary: ``feature_static`` (the design's kind weights), ``feature_idf`` (BM25's IDF per feature) and
``feature_learned`` (kind weights fitted on TRAIN-split queries only, ``learned.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.gold.splits import GoldSplit
from animelab.index.query import SparseQuery
from animelab.params import FEATURE_KINDS, SparseParams
from animelab.sparse.features import (FeatureModel, FeatureSpace, QueryMapper, corpus_features, idf_weights,
                                      kind_weights, weighted)
from animelab.sparse.learned import fit_kind_weights, training_pairs
from animelab.sparse.method import BuiltSets, SparseMethod
from animelab.sparse.report import FEATURE_SETS, feature_markdown, feature_report
from animelab.sparse.store import SparseVectors

VOCABULARY = "vocabulary.json"


def feature_sets(entries: list[AnimeEntry], params: SparseParams, train: GoldSplit, seed: int) -> FeatureModel:
    space, per_entry = corpus_features(entries, params.features)
    binary = space.binary(per_entry)
    mapper = QueryMapper(space, params.features)
    queries = space.binary([mapper.map(query.text).keys for query in train.queries])
    row = {entry.id: position for position, entry in enumerate(entries)}
    judged = train.qrels.to_dict()
    relevant = [{row[anime] for anime, grade in judged.get(query.id, {}).items()
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


class FeatureMethod(SparseMethod):
    sets = FEATURE_SETS
    label_fields = frozenset(FEATURE_KINDS)

    def build(self, entries: list[AnimeEntry], params: SparseParams, train: GoldSplit, seed: int) -> BuiltSets:
        model = feature_sets(entries, params, train, seed)
        return BuiltSets(model.sets, {name: {"kind": "feature"} for name in model.sets},
                         manifest={"learned_weights": model.learned_weights}, files={VOCABULARY: model.space.keys},
                         state=model)

    def queries(self, name: str, texts: list[str], sparse_dir: Path | None, params: SparseParams,
                lexical: sparse.csr_matrix | None) -> list[SparseQuery]:
        vocabulary = json.loads((Path(sparse_dir) / VOCABULARY).read_text(encoding="utf-8"))
        mapper = QueryMapper(FeatureSpace(vocabulary), params.features)
        return [mapper.vector(text) for text in texts]

    def report(self, built: BuiltSets, splits: dict[str, GoldSplit], params: SparseParams,
               limit: int) -> tuple[list[str], dict[str, Any]]:
        report = feature_report(built.state, splits, params, limit)
        return feature_markdown(report), dict(report["exact_scores"]) | {"learned_weights": built.state.learned_weights}
