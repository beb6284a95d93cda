"""The query router: from the query text alone, the vectors a query should search.

Its target is the gold set's vector hint (what the oracle rows read); its features are the query's
embedding by one text model and TF-IDF character n-grams (scripts, title-like strings, "anime like ...").
Trained on train queries; the feature set, C and class weighting are chosen on dev by the mean over
categories of each one's accuracy, so the large templated categories do not outvote the small ones.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix

from animelab.errors import LabError
from animelab.fields import TEXT_VECTOR_NAMES
from animelab.gold.splits import GoldQuery
from animelab.params import RouteParams

SEPARATOR = "+"


def route_label(vectors: list[str]) -> str:
    """One class per vector set, in the field order (a set's order changes no fusion)."""
    return SEPARATOR.join(sorted(set(vectors), key=TEXT_VECTOR_NAMES.index))


def route_vectors(label: str) -> list[str]:
    return label.split(SEPARATOR)


@dataclass
class Router:
    features: tuple[str, ...]
    classifier: LogisticRegression
    vectorizer: TfidfVectorizer | None

    def matrix(self, texts: list[str], dense: np.ndarray) -> sparse.csr_matrix:
        parts = []
        if "dense" in self.features:
            parts.append(sparse.csr_matrix(dense))
        if self.vectorizer is not None:
            parts.append(self.vectorizer.transform(texts))
        return sparse.hstack(parts, format="csr")

    def predict(self, texts: list[str], dense: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Each text's vector-set label and the classifier's probability of it."""
        probabilities = self.classifier.predict_proba(self.matrix(texts, dense))
        best = probabilities.argmax(axis=1)
        return [str(self.classifier.classes_[i]) for i in best], probabilities[np.arange(len(best)), best]


def save_router(router: Router, path: Path) -> None:
    joblib.dump(router, path)


def load_router(path: Path) -> Router:
    """The route stage's router (``data/routing/router.joblib``)."""
    if not Path(path).is_file():
        raise LabError(f"{path}: no router there (the route stage writes it: dvc repro route)")
    return joblib.load(path)


def fit_router(texts: list[str], dense: np.ndarray, labels: list[str], features: tuple[str, ...], c: float,
               class_weight: str, params: RouteParams, seed: int) -> Router:
    vectorizer = None
    if "lexical" in features:
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(params.char_ngrams), min_df=2,
                                     sublinear_tf=True).fit(texts)
    router = Router(features, LogisticRegression(C=c, max_iter=5000, random_state=seed,
                                                 class_weight=None if class_weight == "none" else "balanced"),
                    vectorizer)
    router.classifier.fit(router.matrix(texts, dense), labels)
    return router


def accuracy(queries: list[GoldQuery], predicted: list[str]) -> dict[str, Any]:
    """Share of queries routed to exactly their hint's vector set: over all, per category, and the macro mean."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for query, label in zip(queries, predicted, strict=True):
        hits[query.category].append(route_label(query.vectors) == label)
    per_category = {category: float(np.mean(values)) for category, values in sorted(hits.items())}
    return {"overall": float(np.mean([hit for values in hits.values() for hit in values])),
            "macro": float(np.mean(list(per_category.values()))), "per_category": per_category,
            "queries": {category: len(values) for category, values in sorted(hits.items())}}


@dataclass
class SplitData:
    queries: list[GoldQuery]
    dense: np.ndarray

    @property
    def texts(self) -> list[str]:
        return [query.text for query in self.queries]

    @property
    def labels(self) -> list[str]:
        return [route_label(query.vectors) for query in self.queries]


def choose_router(train: SplitData, dev: SplitData, params: RouteParams, seed: int
                  ) -> tuple[Router, dict[str, Any], list[dict[str, Any]]]:
    """Every combination fitted on train and scored on dev; the best dev macro accuracy wins (ties: the
    earlier combination in params order, the simpler one as written). Returns the router, its trial, all trials."""
    if len(set(train.labels)) < 2:
        raise LabError(f"the router needs train queries of at least two vector sets; the train split has "
                       f"{sorted(set(train.labels))}")
    trials, best, best_trial, best_score = [], None, {}, -1.0
    for features, c, weight in itertools.product(params.feature_sets, params.c_values, params.class_weights):
        router = fit_router(train.texts, train.dense, train.labels, tuple(features), c, weight, params, seed)
        scored = accuracy(dev.queries, router.predict(dev.texts, dev.dense)[0])
        trials.append({"features": list(features), "c": c, "class_weight": weight,
                       "dev_macro_accuracy": round(scored["macro"], 4), "dev_accuracy": round(scored["overall"], 4)})
        if scored["macro"] > best_score:
            best, best_trial, best_score = router, trials[-1], scored["macro"]
    return best, best_trial, trials


def confusions(queries: list[GoldQuery], predicted: list[str]) -> dict[str, dict[str, Any]]:
    """Per category, scikit-learn's confusion matrix over the vector sets its queries have or were routed to."""
    by_category: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for query, label in zip(queries, predicted, strict=True):
        by_category[query.category].append((route_label(query.vectors), label))
    result = {}
    for category, pairs in sorted(by_category.items()):
        truth, routed = zip(*pairs, strict=True)
        labels = sorted(set(truth) | set(routed), key=lambda label: (-Counter(truth)[label], label))
        with warnings.catch_warnings():  # a category every query of which has one label is a 1x1 matrix
            warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
            matrix = confusion_matrix(truth, routed, labels=labels)
        result[category] = {"labels": labels, "matrix": matrix.tolist()}
    return result


@dataclass
class Routing:
    router: Router
    # Every gold query's routed vectors: what a `vectors: routed` row searches.
    routes: dict[str, list[str]]
    metrics: dict[str, Any]


def route_gold(queries: list[GoldQuery], dense: np.ndarray, params: RouteParams, seed: int) -> Routing:
    """Train on the train split, choose on dev, route every query; accuracy per split and per category, and
    the test split's confusion matrices (paraphrase test queries included: a category of their own)."""
    parts = {name: SplitData([q for q in queries if q.split == name],
                             dense[[i for i, q in enumerate(queries) if q.split == name]])
             for name in ("train", "dev", "test")}
    router, chosen, trials = choose_router(parts["train"], parts[params.choose_on], params, seed)
    started = time.perf_counter()
    router.predict(parts["test"].texts, parts["test"].dense)
    ms_per_query = 1000 * (time.perf_counter() - started) / max(len(parts["test"].queries), 1)
    labels, probabilities = router.predict([q.text for q in queries], dense)
    routed = dict(zip((q.id for q in queries), labels, strict=True))
    scored = {name: accuracy(part.queries, [routed[q.id] for q in part.queries]) for name, part in parts.items()}
    metrics = {
        "chosen": chosen, "trials": trials, "accuracy": scored,
        "confusion_test": confusions(parts["test"].queries, [routed[q.id] for q in parts["test"].queries]),
        "classes": sorted(Counter(parts["train"].labels).items(), key=lambda item: -item[1]),
        "mean_probability": float(np.mean(probabilities)),
        # The classifier alone, one batch of the test queries: the query embedding is the search's own cost.
        "ms_per_query": ms_per_query,
    }
    return Routing(router, {query_id: route_vectors(label) for query_id, label in routed.items()}, metrics)
