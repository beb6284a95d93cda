"""Search requests in, TREC runs out: every request run against one index, timed around the engine call."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ranx import Run

from animelab.evaluation.timing import timed_search
from animelab.gold.splits import GoldSplit, ranked_run
from animelab.index.backend import SearchIndex
from animelab.index.query import Hit, SearchRequest


@dataclass(frozen=True)
class Executed:
    """One run over a split: each query's kept anime ids (best first), the seconds of each engine call,
    the engine's own rankings before any re-ranking, and, when scored, the rankings as a ranx Run."""

    ranked: dict[str, list[str]]
    seconds: list[float]
    name: str
    engine_ranked: dict[str, list[str]]

    @functools.cached_property
    def run(self) -> Run:
        return ranked_run(self.ranked, self.name)


def execute(index: SearchIndex, split: GoldSplit, requests: list[SearchRequest], limit: int,
            name: str, rerank: Callable[[list[Hit]], list[Hit]] | None = None) -> Executed:
    """Run every request (its hits re-ranked by ``rerank``). The backend already broke ties, so the run
    keeps its order."""
    found, seconds, engine = timed_search(index, requests, rerank)
    ranked = split.kept([[hit.anime_id for hit in hits] for hits in found], limit)
    engine_ranked = split.kept([[hit.anime_id for hit in hits] for hits in engine], limit) if rerank else ranked
    return Executed(ranked, seconds, name, engine_ranked)
