"""Assemble the gold set: generate every category, sample and split by group, validate, write."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from animelab.corpus.schema import AnimeEntry, BangumiEntry
from animelab.errors import LabError
from animelab.gold import generators
from animelab.gold.franchise import franchise_groups
from animelab.gold.predicates import HAND_CATEGORIES, CuratedQuery, Judgement, load_curated, load_judgements
from animelab.gold.splits import SPLITS, GoldQuery
from animelab.params import GOLD_CATEGORIES, GoldParams, SplitParams


def generate(entries: list[AnimeEntry], bangumi: list[BangumiEntry], hand: HandWritten, params: GoldParams,
             seed: int) -> dict[str, list[GoldQuery]]:
    return {
        "facet": generators.facet_queries(entries, params.min_relevant, params.max_relevant,
                                          params.facet_phrasings, params.hard_negatives_per_query, seed),
        "studio": generators.studio_queries(entries, params.min_relevant, params.max_relevant),
        "temporal": generators.temporal_queries(entries, params.min_relevant),
        "known_item": generators.known_item_queries(entries),
        "cross_lingual": generators.cross_lingual_queries(entries, bangumi, params.cross_lingual_min_synopsis_chars),
        "similar": generators.similar_queries(entries, params.similar_min_jaccard),
        **{category: generators.hand_queries(entries, hand.queries.get(category, []), hand.judgements,
                                             params.max_relevant) for category in HAND_CATEGORIES},
    }


def seeded_order(seed: int, salt: str, key: str) -> str:
    return hashlib.sha256(f"{seed}:{salt}:{key}".encode()).hexdigest()


def groups_of(queries: list[GoldQuery]) -> dict[str, list[GoldQuery]]:
    groups: dict[str, list[GoldQuery]] = {}
    for query in queries:
        groups.setdefault(query.group, []).append(query)
    return groups


def sample_by_group(queries: list[GoldQuery], cap: int, seed: int, category: str) -> list[GoldQuery]:
    """Whole groups in a seeded order until the next group would pass ``cap`` queries."""
    kept: list[GoldQuery] = []
    groups = groups_of(queries)
    for group in sorted(groups, key=lambda g: seeded_order(seed, f"sample:{category}", g)):
        if len(kept) + len(groups[group]) > cap:
            break
        kept += groups[group]
    return kept


def assign_splits(queries: list[GoldQuery], split: SplitParams, seed: int, category: str) -> None:
    """Stratified by category, grouped: every query of a group gets its group's split."""
    groups = groups_of(queries)
    order = sorted(groups, key=lambda g: seeded_order(seed, f"split:{category}", g))
    test_end = round(len(order) * split.test)
    dev_end = test_end + round(len(order) * split.dev)
    for position, group in enumerate(order):
        name = "test" if position < test_end else "dev" if position < dev_end else "train"
        for query in groups[group]:
            query.split = name


@dataclass
class HandWritten:
    """The hand-written queries per category (curated, paraphrase) and the pooled judgements over them."""
    queries: dict[str, list[CuratedQuery]]
    judgements: list[Judgement]

    def __post_init__(self) -> None:
        known = {query.id for queries in self.queries.values() for query in queries}
        unknown = sorted({judgement.query for judgement in self.judgements} - known)
        if unknown:
            raise LabError(f"gold.judgements name queries no hand-written file has: {unknown[:5]}")


def load_hand_written(params: GoldParams) -> HandWritten:
    files = {"curated": params.curated, "paraphrase": params.paraphrase}
    return HandWritten({category: load_curated(files[category], category) for category in HAND_CATEGORIES},
                       load_judgements(params.judgements))


@dataclass
class GoldSet:
    queries: list[GoldQuery]
    # Hand-written queries whose predicates match no anime of this corpus (e.g. a small slice).
    dropped_curated: list[str]


def build_gold(entries: list[AnimeEntry], bangumi: list[BangumiEntry], hand: HandWritten, params: GoldParams,
               seed: int) -> GoldSet:
    candidates = generate(entries, bangumi, hand, params, seed)
    dropped = sorted(q.id for category in HAND_CATEGORIES for q in candidates[category] if 2 not in q.qrels.values())
    for category in HAND_CATEGORIES:
        candidates[category] = [q for q in candidates[category] if q.id not in dropped]
    queries = []
    for category in GOLD_CATEGORIES:
        sampled = sample_by_group(candidates[category], params.max_queries.get(category, 10**9), seed, category)
        assign_splits(sampled, params.split, seed, category)
        queries += sampled
    validate(queries, {entry.id for entry in entries})
    return GoldSet(sorted(queries, key=lambda q: q.id), dropped)


def validate(queries: list[GoldQuery], corpus_ids: set[str]) -> None:
    """Every judged id exists, every query has a grade-2 anime, texts are unique within a category."""
    problems = []
    for query in queries:
        unknown = sorted((set(query.qrels) | set(query.hard_negatives) | set(query.exclude)) - corpus_ids)
        if unknown:
            problems.append(f"{query.id}: ids not in the corpus {unknown[:5]}")
        if 2 not in query.qrels.values():
            problems.append(f"{query.id}: no grade-2 anime")
        if set(query.hard_negatives) & set(query.qrels):
            problems.append(f"{query.id}: a hard negative is also relevant")
    texts = Counter((q.category, q.text) for q in queries)
    problems += [f"{category}: duplicate query text {text!r}" for (category, text), n in texts.items() if n > 1]
    ids = Counter(q.id for q in queries)
    problems += [f"duplicate query id {query_id}" for query_id, n in ids.items() if n > 1]
    if problems:
        raise LabError("gold set failed validation:\n  " + "\n  ".join(problems[:20]))


def hole_rates(pooled: list[dict[str, Any]], hand: HandWritten) -> dict[str, dict[str, Any]]:
    """Per paraphrase need and over all: of the pooled anime (pipelines/pool.py), how many no predicate had
    graded, how many of those are still unjudged, and the hole rate: the share of pooled anime that were
    unjudged and are relevant."""
    grades = {(j.query, j.anime): j.grade for j in hand.judgements}
    needs = {query.id: query.need for query in hand.queries.get("paraphrase", [])}
    by_need: dict[str, list[dict[str, Any]]] = {}
    for item in pooled:
        for need in (needs.get(item["query"], "other"), "all"):
            by_need.setdefault(need, []).append(item)
    rates = {}
    for need, items in sorted(by_need.items()):
        unjudged = [item for item in items if item["grade"] is None]
        relevant = sum(grades.get((item["query"], item["anime"]), 0) > 0 for item in unjudged)
        rates[need] = {"pooled": len(items), "unjudged_when_pooled": len(unjudged),
                       "still_unjudged": sum((item["query"], item["anime"]) not in grades for item in unjudged),
                       "hole_rate": round(relevant / len(items), 4)}
    return rates


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(gold: GoldSet, params: GoldParams, seed: int, hashes: dict[str, str],
             pool: dict[str, Any] | None = None) -> dict[str, Any]:
    queries = gold.queries
    counts = {category: {split: 0 for split in SPLITS} for category in GOLD_CATEGORIES}
    sizes: dict[str, list[int]] = {category: [] for category in GOLD_CATEGORIES}
    for query in queries:
        counts[query.category][query.split] += 1
        sizes[query.category].append(sum(grade == 2 for grade in query.qrels.values()))
    shortfalls = {
        category: f"{split_counts['test']} test queries, below {params.min_test_queries}: the data supports no more"
        for category, split_counts in counts.items() if split_counts["test"] < params.min_test_queries
    }
    return {
        "counts": counts,
        "totals": {split: sum(c[split] for c in counts.values()) for split in SPLITS},
        "scripts": {category: dict(sorted(Counter(q.script for q in queries if q.category == category).items()))
                    for category in GOLD_CATEGORIES},
        "grade_2_per_query": {
            category: {"min": min(s), "median": median(s), "max": max(s)} if s else None
            for category, s in sizes.items()
        },
        "shortfalls": shortfalls,
        "dropped_curated_without_relevant_anime": gold.dropped_curated,
        "pool": pool or {},
        "inputs_sha256": hashes,
        "params": json.loads(params.model_dump_json()) | {"seed": seed},
    }


def anime_split(entries: list[AnimeEntry], split: SplitParams, seed: int) -> dict[str, Any]:
    """Every anime's split for training on the corpus (fine-tuning), fixed before any training.

    Grouped by franchise (the normalised base title), so a sequel never sits on the other side of
    its first season; groups are ordered by ``sha256(seed:anime:group)`` and cut by ``split``.
    """
    groups = franchise_groups(entries)
    grouped = {anime for members in groups.values() for anime in members}
    groups |= {entry.id: [entry.id] for entry in entries if entry.id not in grouped}  # ids never look like base titles
    order = sorted(groups, key=lambda g: seeded_order(seed, "anime", g))
    test_end = round(len(entries) * split.test)
    dev_end = test_end + round(len(entries) * split.dev)
    assigned: dict[str, str] = {}
    for group in order:
        placed = len(assigned)
        name = "test" if placed < test_end else "dev" if placed < dev_end else "train"
        assigned.update({anime: name for anime in groups[group]})
    counts = Counter(assigned.values())
    return {"grouping": "franchise", "seed": seed, "counts": {name: counts[name] for name in SPLITS},
            "splits": dict(sorted(assigned.items()))}
