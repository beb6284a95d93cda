"""Training data for the genre adapter, drawn from train-split anime and train-split queries only.

Anchors are texts a user or a story provides (a gold query phrasing, a synopsis); the positive
is the genre text (``genre_vector`` input) of an anime the anchor belongs to. Every batch goes
through ``LeakageGuard`` before the model sees it, so a held-out anime or a held-out query
phrasing cannot reach training, whatever the sampling code does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from animelab.corpus.schema import AnimeEntry
from animelab.errors import LabError
from animelab.fields import VECTORS_BY_NAME, vector_inputs
from animelab.gold.splits import GoldQuery

TRAIN = "train"


class LeakageError(LabError):
    pass


@dataclass(frozen=True)
class Pair:
    anchor: str
    anime_id: str
    source: str  # "query" or "synopsis"


@dataclass(frozen=True)
class Batch:
    pairs: list[Pair]
    negatives: list[str]  # anime ids whose genre texts are mined hard negatives, one per pair


def genre_text(entry: AnimeEntry) -> str:
    """Exactly the text the embed stage encodes for ``genre_vector``."""
    return "\n".join(vector_inputs(entry, VECTORS_BY_NAME["genre_vector"]))


def labels(entry: AnimeEntry) -> frozenset[str]:
    """Genre, theme and demographic labels, prefixed so equal names of different kinds stay apart."""
    return frozenset([f"genre:{g}" for g in entry.genres] + [f"theme:{t}" for t in entry.theme_names]
                     + [f"demographic:{d}" for d in entry.demographics])


def seeded_key(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join([str(seed), *parts]).encode()).hexdigest()


def query_pairs(queries: list[GoldQuery], qrels: dict[str, dict[str, int]], anime_splits: dict[str, str],
                categories: list[str], per_query: int, split: str, seed: int) -> list[Pair]:
    """(query phrasing, genre text of a grade-2 anime) for queries and anime of ``split``."""
    pairs = []
    for query in queries:
        if query.split != split or query.category not in categories:
            continue
        relevant = [a for a, grade in qrels.get(query.id, {}).items() if grade == 2 and anime_splits.get(a) == split]
        relevant.sort(key=lambda anime: seeded_key(seed, query.id, anime))
        pairs += [Pair(query.text, anime, "query") for anime in relevant[:per_query]]
    return pairs


def synopsis_pairs(entries: list[AnimeEntry], anime_splits: dict[str, str], split: str) -> list[Pair]:
    """(synopsis, genre text) of every ``split`` anime that has both: genres inferred from the story."""
    return [Pair(entry.synopsis, entry.id, "synopsis") for entry in entries
            if anime_splits.get(entry.id) == split and entry.synopsis and genre_text(entry)]


class LeakageGuard:
    """Refuses any batch holding a non-train anime (as positive or negative) or a held-out query text."""

    def __init__(self, anime_splits: dict[str, str], queries: list[GoldQuery]):
        self.train_anime = {anime for anime, split in anime_splits.items() if split == TRAIN}
        self.held_out_texts = {normalise(q.text) for q in queries if q.split != TRAIN}
        self.checked = 0

    def check(self, batch: Batch) -> None:
        leaked_anime = sorted(({p.anime_id for p in batch.pairs} | set(batch.negatives)) - self.train_anime)
        if leaked_anime:
            raise LeakageError(f"training batch holds non-train anime {leaked_anime[:5]}")
        leaked_texts = sorted({p.anchor for p in batch.pairs if normalise(p.anchor) in self.held_out_texts})
        if leaked_texts:
            raise LeakageError(f"training batch holds held-out query phrasings {leaked_texts[:3]}")
        self.checked += 1


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def confusable_negatives(anime_ids: list[str], genre_vectors: np.ndarray, label_sets: list[frozenset[str]],
                         pool: int) -> dict[str, str | None]:
    """Per anime, the train anime whose genre text the base model finds most similar among those with a
    different genre set (e.g. Drama where the anchor is Comedy): the confusions worth training on."""
    if pool == 0 or len(anime_ids) < 2:
        return dict.fromkeys(anime_ids)
    similarities = genre_vectors @ genre_vectors.T
    np.fill_diagonal(similarities, -np.inf)
    genres = [frozenset(label for label in labels if label.startswith("genre:")) for labels in label_sets]
    nearest = np.argsort(-similarities, axis=1, kind="stable")[:, :pool]
    negatives: dict[str, str | None] = {}
    for row, anime in enumerate(anime_ids):
        different = [int(col) for col in nearest[row] if genres[col] != genres[row]]
        negatives[anime] = anime_ids[different[0]] if different else None
    return negatives


def batches(pairs: list[Pair], negatives: dict[str, str | None], size: int, rng: np.random.Generator) -> list[Batch]:
    """Shuffled batches; a pair whose anime has no confusable negative is given none (fewer columns)."""
    order = rng.permutation(len(pairs))
    result = []
    for start in range(0, len(order), size):
        chunk = [pairs[i] for i in order[start:start + size]]
        result.append(Batch(chunk, [n for p in chunk if (n := negatives.get(p.anime_id)) is not None]))
    return result
