"""Gold queries in, TREC runs out: one search request per query, timed around the engine call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranx import Qrels, Run

from animelab.experiments import SearchSettings
from animelab.index.backend import SearchIndex
from animelab.index.query import SearchRequest, Tuning, VectorQuery
from animelab.io import read_jsonl, write_text


@dataclass
class GoldSplit:
    queries: list[dict[str, Any]]
    qrels: Qrels
    hard_negatives: dict[str, set[str]] = field(default_factory=dict)

    @property
    def categories(self) -> dict[str, str]:
        return {q["id"]: q["category"] for q in self.queries}


def load_gold(gold_dir: Path, split: str) -> GoldSplit:
    """The split's queries, their qrels (grade 0 = judged non-relevant) and hard negatives."""
    queries = [q for q in read_jsonl(Path(gold_dir) / "queries.jsonl") if q["split"] == split]
    wanted = {q["id"] for q in queries}
    judgements: dict[str, dict[str, int]] = {}
    with (Path(gold_dir) / "qrels.trec").open(encoding="utf-8") as lines:
        for line in lines:
            query_id, _, anime_id, grade = line.split()
            if query_id in wanted:
                judgements.setdefault(query_id, {})[anime_id] = int(grade)
    negatives = {q_id: {a for a, g in judged.items() if g == 0} for q_id, judged in judgements.items()}
    return GoldSplit(queries, Qrels(judgements), {q: n for q, n in negatives.items() if n})


def query_vectors_for(settings: SearchSettings, hint: list[str], indexed: list[str]) -> list[str]:
    if settings.vectors == "all":
        return list(indexed)
    wanted = hint if settings.vectors == "hint" else settings.vectors
    chosen = [name for name in wanted if name in indexed]
    return chosen or list(indexed)


def build_requests(settings: SearchSettings, split: GoldSplit, encoded: dict[str, list[float]],
                   indexed: list[str], limit: int) -> list[SearchRequest]:
    """One request per gold query; query-by-example sources are fetched extra and dropped later."""
    requests = []
    for query in split.queries:
        names = query_vectors_for(settings, query["vectors"], indexed)
        vectors = tuple(VectorQuery(name, encoded[query["id"]], settings.prefetch_limit) for name in names)
        requests.append(SearchRequest(vectors, limit=limit + len(query["exclude"]), fusion=settings.fusion,
                                      rrf_k=settings.rrf_k, weights=settings.weights_for(names),
                                      tuning=settings.tuning, with_payload=("anime_id",)))
    return requests


def exact_twin(request: SearchRequest) -> SearchRequest:
    """The same request, scanned exactly on the original vectors: the ANN-fidelity reference."""
    return SearchRequest(request.queries, limit=request.limit, fusion=request.fusion, rrf_k=request.rrf_k,
                         weights=request.weights, tuning=Tuning(exact=True, quantization_ignore=True),
                         with_payload=request.with_payload)


def execute(index: SearchIndex, split: GoldSplit, requests: list[SearchRequest], limit: int,
            name: str) -> tuple[Run, list[float]]:
    """Run every request; returns the ranx Run (ranked by engine score) and per-query seconds."""
    results: dict[str, dict[str, float]] = {}
    seconds = []
    for query, request in zip(split.queries, requests, strict=True):
        start = time.perf_counter()
        hits = index.search(request)
        seconds.append(time.perf_counter() - start)
        excluded = set(query["exclude"])
        kept = [hit for hit in hits if hit.anime_id not in excluded][:limit]
        # Rank-preserving scores: the backend already broke ties; ranx must not reorder them.
        results[query["id"]] = {hit.anime_id: float(len(kept) - rank) for rank, hit in enumerate(kept)}
    return Run(results, name=name), seconds


def write_trec_run(path: Path, run: Run, name: str) -> None:
    lines = []
    for query_id in sorted(run.keys()):
        ranked = sorted(run[query_id].items(), key=lambda item: -item[1])
        lines += [f"{query_id} Q0 {anime} {rank} {score:g} {name}" for rank, (anime, score) in enumerate(ranked, 1)]
    write_text(path, "\n".join(lines) + "\n")
