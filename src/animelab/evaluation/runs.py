"""Search requests in, TREC runs out: every request run against one index, timed around the engine call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ranx import Run

from animelab.evaluation.timing import timed_search
from animelab.gold.splits import GoldSplit
from animelab.index.backend import SearchIndex
from animelab.index.query import Hit, SearchRequest
from animelab.io import atomic_path


def execute(index: SearchIndex, split: GoldSplit, requests: list[SearchRequest], limit: int,
            name: str, rerank: Callable[[list[Hit]], list[Hit]] | None = None) -> tuple[Run, list[float]]:
    """Run every request (its hits re-ranked by ``rerank``); returns the ranx Run and per-query seconds.
    The backend already broke ties, so the run keeps its order."""
    found, seconds = timed_search(index, requests, rerank)
    return split.run_of([[hit.anime_id for hit in hits] for hits in found], limit, name), seconds


def write_trec_run(path: Path, run: Run) -> None:
    """The run as a TREC file (ranx writes it: queries in order, best first, tagged with the run's name)."""
    with atomic_path(path) as staging:
        run.save(str(staging), kind="trec")
