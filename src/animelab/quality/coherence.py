"""Semantic coherence of a vector space: do neighbours share what the catalogue says they share?

Per vector (params ``drift.coherence``), over the anime that have it:

- **labels** (genres; demographics), multi-label: ``neighbour_agreement`` is the share of each anime's ``knn_k``
  nearest neighbours (cosine) sharing at least one label with it, ``random_agreement`` the same share over all
  pairs of anime (exact, from the label matrix), ``lift`` their ratio; ``neighbour_jaccard`` the mean label
  Jaccard with the neighbours. Single-label *purity* uses each anime's primary label (its rarest label among
  those carried by at least ``min_label_count`` anime, so "Sports" wins over "Comedy"): the cross-validated
  accuracy of a kNN classifier (scikit-learn, ``folds`` stratified folds) against the majority-class share, and
  the silhouette (cosine) of the primary-label clusters.
- **relations** (franchise = same normalised base title, ``animelab.gold.franchise``; studio = a shared studio;
  sequel = consecutive entries of one franchise in release order): cosine similarities of related pairs against
  unrelated ones (random pairs; for sequels, non-consecutive entries of the same franchise), compared by a
  one-sided Mann-Whitney U test (scipy). ``probability_closer`` = U / (n1 n2): the chance a related pair is more
  similar than an unrelated one (0.5 = no structure). Pairs are sampled to ``max_pairs`` with the seed.
- **cross-modal**: text and image vectors come from different encoders, so one anime's text and image vectors
  live in different spaces and cannot be compared directly. Instead: pairs of anime that are image-space
  neighbours against random pairs, compared by their text similarity (Mann-Whitney U). With no image vectors
  (no image cache) the entry reads ``{"available": false, "reason": "not available: 0 images"}``.

``coherence_report`` returns (and the drift stage writes to ``reports/coherence.json``)::

    {"knn_k": 10, "folds": 5,
     "vectors": {"<vector>": {"anime": n,
                              "genre": {"labelled", "neighbour_agreement", "random_agreement", "lift",
                                        "neighbour_jaccard",
                                        "primary": {"anime", "labels", "knn_accuracy", "majority_baseline",
                                                    "silhouette"}},
                              "demographic": {same keys as genre},
                              "franchise" | "studio" | "sequel": {"pairs", "unrelated_pairs", "median_similarity",
                                        "median_unrelated_similarity", "u", "p_value", "probability_closer"}}
                 | {"skipped": reason}},
     "cross_modal": {"<image vector>": {"<text vector>": {same keys as franchise}} | {"available": false, ...}}}

Any entry with too little data to compute is ``{"skipped": reason}``.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import sparse, stats
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.preprocessing import MultiLabelBinarizer

from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import VectorEmbeddings
from animelab.fields import VECTORS
from animelab.gold.franchise import base_title
from animelab.params import CoherenceParams
from animelab.quality.drift import derived_rng

Pairs = np.ndarray  # (m, 2) row indices


def nearest_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k nearest other rows by cosine distance."""
    finder = NearestNeighbors(metric="cosine", algorithm="brute").fit(vectors)
    # Queried without points, each row's own entry is left out.
    return finder.kneighbors(n_neighbors=min(k, len(vectors) - 1), return_distance=False)


def neighbour_agreement(vectors: np.ndarray, label_sets: Sequence[set[str]], k: int) -> dict[str, Any]:
    """How often the k nearest neighbours share a label, against all pairs of anime; rows need >= 1 label."""
    matrix = sparse.csr_matrix(MultiLabelBinarizer(sparse_output=True).fit_transform(label_sets), dtype=np.int64)
    neighbours = nearest_neighbours(vectors, k)
    rows = np.repeat(np.arange(len(vectors)), neighbours.shape[1])
    shared = np.asarray(matrix[rows].multiply(matrix[neighbours.ravel()]).sum(axis=1)).ravel()
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    jaccard = shared / (sizes[rows] + sizes[neighbours.ravel()] - shared)
    overlaps = matrix @ matrix.T
    n = len(vectors)
    sharing_pairs = overlaps.nnz - np.count_nonzero(overlaps.diagonal())  # ordered pairs i != j sharing a label
    random_agreement = sharing_pairs / (n * (n - 1))
    agreement = float(np.mean(shared > 0))
    return {"labelled": n, "neighbour_agreement": agreement, "random_agreement": float(random_agreement),
            "lift": agreement / random_agreement if random_agreement else None,
            "neighbour_jaccard": float(jaccard.mean())}


def primary_labels(label_sets: Sequence[Iterable[str]], min_count: int) -> list[str | None]:
    """Each item's rarest label among those at least ``min_count`` items carry (ties by name); None if none."""
    counts = Counter(label for labels in label_sets for label in set(labels))
    return [min((label for label in labels if counts[label] >= min_count), key=lambda label: (counts[label], label),
                default=None) for labels in label_sets]


def label_purity(vectors: np.ndarray, labels: Sequence[str], k: int, folds: int, seed: int) -> dict[str, Any]:
    """Cross-validated kNN accuracy and cosine silhouette of single-label clusters."""
    classes = Counter(labels)
    if len(classes) < 2 or min(classes.values()) < folds:
        return {"skipped": f"{len(classes)} labels, smallest {min(classes.values(), default=0)} anime: "
                           f"need 2 labels with >= {folds} anime each"}
    classifier = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    accuracy = cross_val_score(classifier, vectors, labels, scoring="accuracy",
                               cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return {"anime": len(labels), "labels": len(classes), "knn_accuracy": float(accuracy.mean()),
            "majority_baseline": max(classes.values()) / len(labels),
            "silhouette": float(silhouette_score(vectors, labels, metric="cosine"))}


def labels_report(vectors: np.ndarray, label_sets: Sequence[set[str]], params: CoherenceParams,
                  seed: int) -> dict[str, Any]:
    labelled = [i for i, labels in enumerate(label_sets) if labels]
    if len(labelled) < params.min_anime:
        return {"skipped": f"{len(labelled)} labelled anime: fewer than min_anime={params.min_anime}"}
    sets = [label_sets[i] for i in labelled]
    report = neighbour_agreement(vectors[labelled], sets, params.knn_k)
    primary = primary_labels(sets, params.min_label_count)
    keep = [i for i, label in enumerate(primary) if label is not None]
    report["primary"] = label_purity(vectors[labelled][keep], [primary[i] for i in keep], params.knn_k,
                                     params.folds, seed)
    return report


def closer_pairs(vectors: np.ndarray, related: Pairs, unrelated: Pairs) -> dict[str, Any]:
    """Are related pairs more similar (cosine) than unrelated ones? One-sided Mann-Whitney U."""
    if len(related) < 2 or len(unrelated) < 2:
        return {"skipped": f"{len(related)} related and {len(unrelated)} unrelated pairs: need 2 of each"}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    near, far = (np.einsum("ij,ij->i", unit[pairs[:, 0]], unit[pairs[:, 1]]) for pairs in (related, unrelated))
    test = stats.mannwhitneyu(near, far, alternative="greater")
    return {"pairs": len(near), "unrelated_pairs": len(far), "median_similarity": float(np.median(near)),
            "median_unrelated_similarity": float(np.median(far)), "u": float(test.statistic),
            "p_value": float(test.pvalue), "probability_closer": float(test.statistic / (len(near) * len(far)))}


def unique_pairs(pairs: Iterable[tuple[int, int]]) -> Pairs:
    """Unordered pairs of distinct rows, each once, sorted."""
    return np.array(sorted({(min(i, j), max(i, j)) for i, j in pairs if i != j}), dtype=np.int64).reshape(-1, 2)


def at_most(pairs: Pairs, count: int, rng: np.random.Generator) -> Pairs:
    if len(pairs) <= count:
        return pairs
    return pairs[np.sort(rng.choice(len(pairs), count, replace=False))]


def group_pairs(groups: Iterable[Sequence[int]]) -> Iterable[tuple[int, int]]:
    return (pair for group in groups for pair in itertools.combinations(group, 2))


def random_pairs(n: int, count: int, excluded: Pairs, rng: np.random.Generator) -> Pairs:
    """``count`` distinct pairs of distinct rows drawn uniformly, none of them in ``excluded``."""
    taken = {(int(i), int(j)) for i, j in excluded}
    possible = n * (n - 1) // 2 - len(taken)
    count = min(count, possible)
    drawn: set[tuple[int, int]] = set()
    while len(drawn) < count:
        i, j = rng.integers(n, size=2)
        pair = (int(min(i, j)), int(max(i, j)))
        if i != j and pair not in taken:
            drawn.add(pair)
    return np.array(sorted(drawn), dtype=np.int64).reshape(-1, 2)


def relation_report(vectors: np.ndarray, groups: Iterable[Sequence[int]], max_pairs: int,
                    rng: np.random.Generator) -> dict[str, Any]:
    """Pairs within a group (franchise, studio) against random pairs outside every group."""
    related = unique_pairs(group_pairs(groups))
    return closer_pairs(vectors, at_most(related, max_pairs, rng), random_pairs(len(vectors), max_pairs, related, rng))


def release_order_pairs(groups: Iterable[Sequence[int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Within each group (already in release order): consecutive entries, and entries further apart."""
    consecutive, distant = [], []
    for group in groups:
        for (a, i), (b, j) in itertools.combinations(enumerate(group), 2):
            (consecutive if b - a == 1 else distant).append((i, j))
    return consecutive, distant


def release_key(entry: AnimeEntry) -> tuple:
    return entry.year, entry.aired_dates.start or "", entry.id


def index_groups(keys: Sequence[Iterable[str]]) -> list[list[int]]:
    """Rows grouped by every key they carry (groups of one dropped), in row order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for row, row_keys in enumerate(keys):
        for key in set(row_keys):
            groups[key].append(row)
    return [rows for _, rows in sorted(groups.items()) if len(rows) > 1]


def vector_report(vectors: VectorEmbeddings, entries: dict[str, AnimeEntry], params: CoherenceParams,
                  seed: int) -> dict[str, Any]:
    anime = [entries[anime_id] for anime_id in vectors.ids]
    dense = vectors.dense.astype(np.float64)
    rng = derived_rng(seed, "coherence", vectors.name)
    franchise_groups = index_groups([[key] if (key := base_title(entry.title)) else [] for entry in anime])
    dated = [sorted((row for row in group if anime[row].year is not None), key=lambda row: release_key(anime[row]))
             for group in franchise_groups]
    consecutive, distant = release_order_pairs(dated)
    return {
        "anime": len(anime),
        "genre": labels_report(dense, [set(entry.genres) for entry in anime], params, seed),
        "demographic": labels_report(dense, [set(entry.demographics) for entry in anime], params, seed),
        "franchise": relation_report(dense, franchise_groups, params.max_pairs, rng),
        "studio": relation_report(dense, index_groups([entry.studios for entry in anime]), params.max_pairs, rng),
        "sequel": closer_pairs(dense, at_most(unique_pairs(consecutive), params.max_pairs, rng),
                               at_most(unique_pairs(distant), params.max_pairs, rng)),
    }


def cross_modal(text: VectorEmbeddings, image: VectorEmbeddings, params: CoherenceParams,
                rng: np.random.Generator) -> dict[str, Any]:
    """Image-space neighbour pairs against random pairs, by their text similarity."""
    rows = {anime_id: row for row, anime_id in enumerate(text.ids)}
    both = [(rows[anime_id], row) for row, anime_id in enumerate(image.ids) if anime_id in rows]
    if len(both) < params.min_anime:
        return {"skipped": f"{len(both)} anime with both vectors: fewer than min_anime={params.min_anime}"}
    text_rows, image_rows = map(list, zip(*both))
    neighbours = nearest_neighbours(image.dense[image_rows], params.knn_k)
    near = at_most(unique_pairs((i, int(j)) for i, row in enumerate(neighbours) for j in row), params.max_pairs, rng)
    return closer_pairs(text.dense[text_rows].astype(np.float64), near,
                        random_pairs(len(both), params.max_pairs, near, rng))


def coherence_report(embeddings: dict[str, VectorEmbeddings], image_counts: dict[str, int],
                     entries: list[AnimeEntry], params: CoherenceParams, seed: int) -> dict[str, Any]:
    """Coherence of every configured text vector, and cross-modal consistency per image vector.

    ``embeddings`` holds the loaded text and image vectors; ``image_counts`` says, per image vector of the
    field table, how many anime have it (0 when the embed stage found no images).
    """
    by_id = {entry.id: entry for entry in entries}
    report: dict[str, Any] = {"knn_k": params.knn_k, "folds": params.folds, "vectors": {}, "cross_modal": {}}
    for name in params.vectors:
        vectors = embeddings.get(name)
        count = len(vectors.ids) if vectors else 0
        report["vectors"][name] = (vector_report(vectors, by_id, params, seed) if count >= params.min_anime else
                                   {"skipped": f"{count} anime: fewer than min_anime={params.min_anime}"})
    for spec in (spec for spec in VECTORS if spec.modality == "image"):
        image = embeddings.get(spec.name)
        if image is None or not image.ids:
            report["cross_modal"][spec.name] = {"available": False,
                                                "reason": f"not available: {image_counts.get(spec.name, 0)} images"}
            continue
        report["cross_modal"][spec.name] = {
            name: cross_modal(embeddings[name], image, params, derived_rng(seed, "cross_modal", spec.name, name))
            for name in params.vectors if name in embeddings}
    return report


def headline(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The DVC metrics view: per vector genre purity, label lift and the relations' probability_closer."""
    numbers: dict[str, dict[str, float]] = {}
    for vector, aspects in report["vectors"].items():
        if "skipped" in aspects:
            continue
        row: dict[str, float] = {}
        for aspect in ("genre", "demographic"):
            labels = aspects[aspect]
            if "lift" in labels:
                row[f"{aspect}_lift"] = labels["lift"]
            row |= {f"{aspect}_{key}": labels.get("primary", {}).get(key) for key in ("knn_accuracy", "silhouette")}
        row |= {f"{relation}_probability_closer": aspects[relation].get("probability_closer")
                for relation in ("franchise", "studio", "sequel")}
        numbers[vector] = {key: round(value, 4) for key, value in row.items() if value is not None}
    return numbers
