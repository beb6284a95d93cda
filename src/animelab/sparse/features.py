"""Categorical feature vectors: a vocabulary of ``kind:value`` keys, per-anime extraction, weights, queries.

Kinds: genre, theme, demographic, studio, producer, source (material), type (format), rating
(content rating code, "PG-13"), year (a ``sparse.features.year_bucket``-year bucket, "2005-2009"),
season, episodes (a bucket of ``episode_buckets``: "1", "2-13", ..., ">52"), award (award names,
and MyAnimeList's "Award Winning" genre, which is an award rather than a genre) and franchise
(the gold set's base-title rule, kept when at least ``min_franchise_size`` anime share it).

A document's value on a feature is its weight; a query's is 1 for every feature it names, so
the dot product sums the weights of the features query and anime share. Weights:

- static: one weight per kind (``static_weights``: the design's genre 1.0, demographic 0.9, ...);
- idf: per feature ``ln(1 + (N - df + 0.5) / (df + 0.5))`` over the N anime (BM25's IDF, always
  positive): rare features say more. Deterministic, no sampling;
- learned: one weight per kind, like static, fitted on train queries (``learned.py``).

Queries are mapped to features by phrase matching: the text is NFKC-normalised, lower-cased
and split into unicode words; at each word the longest phrase (up to the longest known) whose
words, joined without spaces, equal a feature value's or a synonym's (``"sci fi"`` -> ``scifi``
-> genre:Sci-Fi; a trailing plural ``s``/``ies`` is also tried) wins. Years ("2011"), decades
("2000s", "late 2000s") and episode counts ("12 episodes") map to their buckets. Words left
over that are not stopwords are reported as unmatched.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.gold.franchise import franchise_groups
from animelab.index.query import SparseQuery
from animelab.params import FEATURE_KINDS, FeatureParams
from animelab.sparse.store import SparseVectors

AWARD_GENRE = "Award Winning"
DECADE_PARTS = {"early": (0, 3), "mid": (4, 6), "late": (7, 9)}
_WORD = re.compile(r"\w+")
_YEAR = re.compile(r"^(19|20)\d\d$")
_DECADE = re.compile(r"^((?:19|20)\d)0s$")


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def phrase_key(text: str) -> str:
    """A phrase's words joined without spaces: "Sci-Fi", "sci fi" and "scifi" share one key."""
    return "".join(words(text))


def year_bucket(year: int, width: int) -> str:
    start = year - year % width
    return f"{start}-{start + width - 1}" if width > 1 else str(year)


def episode_bucket(episodes: int, bounds: list[int]) -> str:
    lower = 1
    for upper in bounds:
        if episodes <= upper:
            return str(upper) if upper == lower else f"{lower}-{upper}"
        lower = upper + 1
    return f">{bounds[-1]}"


def rating_code(rating: str) -> str:
    """"PG-13 - Teens 13 or older" -> "PG-13"."""
    return rating.split(" - ", 1)[0].strip()


def entry_features(entry: AnimeEntry, params: FeatureParams, franchise: str | None = None) -> list[str]:
    """The ``kind:value`` keys of one anime, in kind order, without duplicates."""
    values: dict[str, list[str]] = {
        "genre": [g for g in entry.genres if g != AWARD_GENRE],
        "theme": entry.theme_names,
        "demographic": entry.demographics,
        "studio": entry.studios,
        "producer": entry.producers,
        "source": [entry.source_material] if entry.source_material else [],
        "type": [entry.type] if entry.type else [],
        "rating": [rating_code(entry.rating)] if entry.rating else [],
        "year": [year_bucket(entry.year, params.year_bucket)] if entry.year else [],
        "season": [entry.season] if entry.season else [],
        "episodes": [episode_bucket(entry.episodes, params.episode_buckets)] if entry.episodes else [],
        "award": [a.name for a in entry.awards] + ([AWARD_GENRE] if AWARD_GENRE in entry.genres else []),
        "franchise": [franchise] if franchise else [],
    }
    return list(dict.fromkeys(f"{kind}:{value}" for kind in FEATURE_KINDS for value in values[kind]))


def franchise_keys(entries: list[AnimeEntry], min_size: int) -> dict[str, str]:
    """anime id -> its franchise's base title, for franchises of at least ``min_size`` anime."""
    return {anime_id: base for base, members in franchise_groups(entries).items() if len(members) >= min_size
            for anime_id in members}


@dataclass(frozen=True)
class FeatureSpace:
    """The vocabulary: sorted ``kind:value`` keys, one column each."""

    keys: list[str]

    @cached_property
    def column(self) -> dict[str, int]:
        return {key: position for position, key in enumerate(self.keys)}

    @cached_property
    def kinds(self) -> np.ndarray:
        """The kind (an index into FEATURE_KINDS) of every column."""
        return np.asarray([FEATURE_KINDS.index(key.split(":", 1)[0]) for key in self.keys], dtype=np.int64)

    def binary(self, rows: list[list[str]]) -> sparse.csr_matrix:
        """A 0/1 matrix: one row per key list; keys outside the vocabulary are ignored."""
        pairs = [(row, self.column[key]) for row, keys in enumerate(rows) for key in keys if key in self.column]
        data = np.ones(len(pairs), dtype=np.float32)
        rows_, columns = (np.asarray(x, dtype=np.int64) for x in zip(*pairs)) if pairs else ([], [])
        return sparse.csr_matrix((data, (rows_, columns)), shape=(len(rows), len(self.keys)))

    def kind_indicator(self) -> sparse.csr_matrix:
        """Columns x kinds 0/1: summing a row's features per kind is a product with this."""
        return sparse.csr_matrix((np.ones(len(self.keys), dtype=np.float32), (np.arange(len(self.keys)), self.kinds)),
                                 shape=(len(self.keys), len(FEATURE_KINDS)))


@dataclass
class FeatureModel:
    space: FeatureSpace
    sets: dict[str, SparseVectors]
    learned_weights: dict[str, float]
    training: dict[str, Any]


def corpus_features(entries: list[AnimeEntry], params: FeatureParams) -> tuple[FeatureSpace, list[list[str]]]:
    franchises = franchise_keys(entries, params.min_franchise_size)
    per_entry = [entry_features(entry, params, franchises.get(entry.id)) for entry in entries]
    return FeatureSpace(sorted({key for keys in per_entry for key in keys})), per_entry


def kind_weights(space: FeatureSpace, weights: dict[str, float]) -> np.ndarray:
    """Per column: the weight of its kind."""
    return np.asarray([weights[kind] for kind in FEATURE_KINDS], dtype=np.float32)[space.kinds]


def idf_weights(binary: sparse.csr_matrix) -> np.ndarray:
    documents = binary.shape[0]
    df = np.asarray((binary > 0).sum(axis=0)).ravel()
    return np.log1p((documents - df + 0.5) / (df + 0.5)).astype(np.float32)


def weighted(binary: sparse.csr_matrix, column_weights: np.ndarray) -> sparse.csr_matrix:
    return sparse.csr_matrix(binary.multiply(column_weights[np.newaxis, :]))


@dataclass
class QueryFeatures:
    keys: list[str]
    unmatched: list[str] = field(default_factory=list)


class QueryMapper:
    """Maps query text to the features of a vocabulary (see the module docstring for the rule)."""

    def __init__(self, space: FeatureSpace, params: FeatureParams):
        self.space = space
        self.params = params
        self.stopwords = set(params.stopwords)
        self.phrases: dict[str, list[str]] = {}
        for key in space.keys:
            kind, value = key.split(":", 1)
            if kind not in ("year", "episodes"):
                self.phrases.setdefault(phrase_key(value), []).append(key)
        for phrase, keys in params.synonyms.items():
            known = [key for key in keys if key in space.column]
            if known:
                self.phrases.setdefault(phrase_key(phrase), []).extend(known)
        phrases = [*params.synonyms, *(key.split(":", 1)[1] for key in space.keys)]
        self.longest = max((len(words(phrase)) for phrase in phrases), default=1)
        self.year_keys = [key for key in space.keys if key.startswith("year:")]

    def lookup(self, tokens: list[str]) -> list[str]:
        joined = "".join(tokens)
        candidates = [joined, joined[:-1] if joined.endswith("s") else None,
                      joined[:-3] + "y" if joined.endswith("ies") else None]
        return next((self.phrases[c] for c in candidates if c and c in self.phrases), [])

    def temporal(self, tokens: list[str], position: int) -> tuple[int, list[str]]:
        """Year and decade tokens as year-bucket keys ("late 2000s": the buckets covering 2007-2009)."""
        token, following = tokens[position], tokens[position + 1] if position + 1 < len(tokens) else ""
        if _YEAR.match(token):
            span, years = 1, [int(token)]
        elif (decade := _DECADE.match(token)) or (token in DECADE_PARTS and (decade := _DECADE.match(following))):
            start = int(decade.group(1)) * 10
            first, last = DECADE_PARTS.get(token, (0, 9))
            span, years = 1 if token == decade.group(0) else 2, list(range(start + first, start + last + 1))
        else:
            return 1, []
        wanted = {f"year:{year_bucket(year, self.params.year_bucket)}" for year in years}
        return span, [key for key in self.year_keys if key in wanted]

    def episodes(self, tokens: list[str], position: int) -> list[str]:
        token = tokens[position]
        following = tokens[position + 1] if position + 1 < len(tokens) else ""
        if not token.isdigit() or following not in ("episode", "episodes") or int(token) < 1:
            return []
        key = f"episodes:{episode_bucket(int(token), self.params.episode_buckets)}"
        return [key] if key in self.space.column else []

    def match_at(self, tokens: list[str], position: int) -> tuple[int, list[str]]:
        """How many tokens the match at ``position`` spans, and its keys (none: span 1, no keys)."""
        span, found = self.temporal(tokens, position)
        if found:
            return span, found
        if found := self.episodes(tokens, position):
            return 2, found
        for length in range(min(self.longest, len(tokens) - position), 0, -1):
            if length == 1 and tokens[position] in self.stopwords:
                break
            if found := self.lookup(tokens[position:position + length]):
                return length, found
        return 1, []

    def map(self, text: str) -> QueryFeatures:
        tokens = words(text)
        keys: list[str] = []
        unmatched: list[str] = []
        position = 0
        while position < len(tokens):
            span, found = self.match_at(tokens, position)
            keys += found
            if not found and tokens[position] not in self.stopwords and not _YEAR.match(tokens[position]):
                unmatched.append(tokens[position])
            position += span
        return QueryFeatures(list(dict.fromkeys(keys)), unmatched)

    def vector(self, text: str) -> SparseQuery:
        columns = sorted(self.space.column[key] for key in self.map(text).keys)
        return SparseQuery(columns, [1.0] * len(columns))


def unmatched_report(mapped: list[QueryFeatures], categories: list[str]) -> dict:
    """How many queries of each category got at least one feature, and the most common unmatched words."""
    totals, covered = Counter(categories), Counter(c for c, m in zip(categories, mapped, strict=True) if m.keys)
    words_left = Counter(word for m in mapped for word in m.unmatched)
    return {
        "coverage": {c: {"queries": totals[c], "with_features": covered[c],
                         "share": round(covered[c] / totals[c], 4)} for c in sorted(totals)},
        "unmatched_words": dict(words_left.most_common(40)),
        "queries_with_unmatched": sum(bool(m.unmatched) for m in mapped),
        "mean_features_per_query": round(sum(len(m.keys) for m in mapped) / max(len(mapped), 1), 3),
    }


def describe_vocabulary(space: FeatureSpace) -> dict[str, int]:
    counts = Counter(FEATURE_KINDS[k] for k in space.kinds)
    return {kind: counts[kind] for kind in FEATURE_KINDS}

