"""Gold queries in, TREC runs out: one search request per query, timed around the engine call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranx import Qrels, Run

from animelab.experiments import SearchSettings
from animelab.index.backend import SearchIndex
from animelab.bench import timed_search
from animelab.index.query import FilterSpec, SearchRequest, SparseQuery, VectorQuery
from animelab.io import atomic_path, read_jsonl


@dataclass
class GoldSplit:
    queries: list[dict[str, Any]]
    qrels: Qrels
    hard_negatives: dict[str, set[str]] = field(default_factory=dict)
    anime_splits: dict[str, str] = field(default_factory=dict)
    # Set on a held-out view: searches are filtered to these anime and only they are judged.
    restricted_to: frozenset[str] | None = None

    @property
    def categories(self) -> dict[str, str]:
        return {q["id"]: q["category"] for q in self.queries}

    def held_out(self) -> "GoldSplit":
        """The view for trained models: judgements and results limited to test-split anime; a query
        left without a relevant anime is dropped."""
        test_anime = frozenset(a for a, split in self.anime_splits.items() if split == "test")
        judgements = {q: {a: g for a, g in judged.items() if a in test_anime}
                      for q, judged in self.qrels.to_dict().items()}
        judgements = {q: judged for q, judged in judgements.items() if any(g > 0 for g in judged.values())}
        return GoldSplit([q for q in self.queries if q["id"] in judgements], Qrels(judgements),
                         {q: n & test_anime for q, n in self.hard_negatives.items() if n & test_anime and q in judgements},
                         self.anime_splits, test_anime)


Gold = tuple[list[dict[str, Any]], dict[str, dict[str, int]], dict[str, str]]


def load_gold(gold_dir: Path, split: str) -> GoldSplit:
    return gold_split(read_gold(gold_dir), split)


def gold_split(gold: Gold, split: str) -> GoldSplit:
    """The split's queries, their qrels (grade 0 = judged non-relevant) and hard negatives."""
    all_queries, all_judgements, anime_splits = gold
    queries = [q for q in all_queries if q["split"] == split]
    judgements = {q["id"]: all_judgements[q["id"]] for q in queries if q["id"] in all_judgements}
    negatives = {q_id: {a for a, g in judged.items() if g == 0} for q_id, judged in judgements.items()}
    return GoldSplit(queries, Qrels(judgements), {q: n for q, n in negatives.items() if n}, anime_splits)


def read_gold(gold_dir: Path) -> Gold:
    """Every gold query, every judgement ({query: {anime: grade}}) and every anime's split."""
    queries = list(read_jsonl(Path(gold_dir) / "queries.jsonl"))
    anime_splits = json.loads((Path(gold_dir) / "anime_split.json").read_text(encoding="utf-8"))["splits"]
    return queries, read_qrels(Path(gold_dir) / "qrels.trec"), anime_splits


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """{query id: {anime id: grade}} from a TREC qrels file, grade 0 (judged non-relevant) included."""
    judgements: dict[str, dict[str, int]] = {}
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            query_id, _, anime_id, grade = line.split()
            judgements.setdefault(query_id, {})[anime_id] = int(grade)
    return judgements


def query_vectors_for(settings: SearchSettings, hint: list[str], indexed: list[str]) -> list[str]:
    if settings.vectors == "all":
        return list(indexed)
    wanted = hint if settings.vectors == "hint" else settings.vectors
    chosen = [name for name in wanted if name in indexed]
    return chosen or list(indexed)


def build_requests(settings: SearchSettings, split: GoldSplit, encoded: dict[str, dict[str, list[float]]],
                   indexed: list[str], limit: int,
                   sparse_queries: dict[str, dict[str, SparseQuery]] | None = None) -> list[SearchRequest]:
    """One request per gold query; query-by-example sources are fetched extra and dropped later.
    ``encoded``: per dense vector, every query's vector (a tuned model may encode some vectors only).
    ``sparse_queries``: per sparse set the settings name, the query vector of every query."""
    restriction = FilterSpec(anime_id_any=sorted(split.restricted_to)) if split.restricted_to is not None else None
    requests = []
    for query in split.queries:
        names = query_vectors_for(settings, query["vectors"], indexed) if settings.dense else []
        vectors = tuple(VectorQuery(name, encoded[name][query["id"]], settings.prefetch_limit) for name in names)
        vectors += tuple(VectorQuery(name, sparse_queries[name][query["id"]], settings.prefetch_limit)
                         for name in settings.sparse)
        requests.append(SearchRequest(vectors, limit=limit + len(query["exclude"]), fusion=settings.fusion,
                                      rrf_k=settings.rrf_k, weights=settings.weights_for([*names, *settings.sparse]),
                                      filter=restriction, tuning=settings.tuning, with_payload=("anime_id",)))
    return requests


def execute(index: SearchIndex, split: GoldSplit, requests: list[SearchRequest], limit: int,
            name: str) -> tuple[Run, list[float]]:
    """Run every request; returns the ranx Run (ranked by engine score) and per-query seconds."""
    results: dict[str, dict[str, float]] = {}
    found, seconds = timed_search(index, requests)
    for query, hits in zip(split.queries, found, strict=True):
        excluded = set(query["exclude"])
        kept = [hit for hit in hits if hit.anime_id not in excluded][:limit]
        # Rank-preserving scores: the backend already broke ties; ranx must not reorder them.
        results[query["id"]] = {hit.anime_id: float(len(kept) - rank) for rank, hit in enumerate(kept)}
    return Run(results, name=name), seconds


def write_trec_run(path: Path, run: Run) -> None:
    """The run as a TREC file (ranx writes it: queries in order, best first, tagged with the run's name)."""
    with atomic_path(path) as staging:
        run.save(str(staging), kind="trec")
