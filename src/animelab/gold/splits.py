"""The gold set as files and as typed objects: queries, graded judgements, and the query and anime splits.

Layout of a gold directory (written by the gold stage, read by every stage that scores or trains)::

    queries.jsonl         one GoldQuery per line (id, text, category, split, group, script, vectors, filters, exclude)
    qrels.trec            TREC qrels: grade 2 and 1 relevant, 0 judged non-relevant (the hard negatives)
    hard_negatives.jsonl  the grade-0 judgements per query
    anime_split.json      every anime's train/dev/test split (by franchise), fixed before any training
    manifest.json         counts, sizes, inputs' hashes and params
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranx import Qrels, Run

from animelab.io import read_jsonl, write_json, write_jsonl, write_text

SPLITS = ("train", "dev", "test")
QUERIES, QRELS, HARD_NEGATIVES, ANIME_SPLIT, MANIFEST = (
    "queries.jsonl", "qrels.trec", "hard_negatives.jsonl", "anime_split.json", "manifest.json")
# What queries.jsonl holds per query; judgements live in qrels.trec.
RECORD_FIELDS = ("id", "text", "category", "split", "group", "script", "vectors", "filters", "exclude")
# Han, kana, Hangul and CJK punctuation/full-width forms: a query with any of these is read as CJK.
CJK = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
LATIN = re.compile("[A-Za-z\u00c0-\u024f]")


def query_script(text: str) -> str:
    """The script a query is written in: cjk if it has any CJK character, latin if it has Latin letters."""
    if CJK.search(text):
        return "cjk"
    return "latin" if LATIN.search(text) else "other"


@dataclass
class GoldQuery:
    id: str
    text: str
    category: str
    group: str
    qrels: dict[str, int]
    vectors: list[str]
    filters: dict[str, Any] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    hard_negatives: list[str] = field(default_factory=list)
    split: str = ""
    script: str = ""

    def __post_init__(self) -> None:
        if not self.script:
            self.script = query_script(self.text)

    def record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    @classmethod
    def from_record(cls, record: dict[str, Any], judged: dict[str, int]) -> "GoldQuery":
        return cls(**record, qrels={a: g for a, g in judged.items() if g > 0},
                   hard_negatives=[a for a, g in judged.items() if g == 0])


@dataclass
class Gold:
    """Every query, every judgement ({query: {anime: grade}}, grade 0 included) and every anime's split."""

    queries: list[GoldQuery]
    judgements: dict[str, dict[str, int]]
    anime_splits: dict[str, str]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """{query id: {anime id: grade}} from a TREC qrels file, grade 0 (judged non-relevant) included."""
    judgements: dict[str, dict[str, int]] = {}
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            query_id, _, anime_id, grade = line.split()
            judgements.setdefault(query_id, {})[anime_id] = int(grade)
    return judgements


def read_gold(gold_dir: Path) -> Gold:
    gold_dir = Path(gold_dir)
    judgements = read_qrels(gold_dir / QRELS)
    queries = [GoldQuery.from_record(row, judgements.get(row["id"], {})) for row in read_jsonl(gold_dir / QUERIES)]
    anime_splits = json.loads((gold_dir / ANIME_SPLIT).read_text(encoding="utf-8"))["splits"]
    return Gold(queries, judgements, anime_splits)


def write_gold(out_dir: Path, queries: list[GoldQuery], gold_manifest: dict[str, Any],
               anime_splits: dict[str, Any]) -> None:
    out_dir = Path(out_dir)
    write_jsonl(out_dir / QUERIES, [q.record() for q in queries])
    lines = []
    for q in queries:
        judged = sorted(q.qrels.items(), key=lambda item: (-item[1], item[0]))
        judged += [(anime, 0) for anime in q.hard_negatives]
        lines += [f"{q.id} 0 {anime} {grade}" for anime, grade in judged]
    write_text(out_dir / QRELS, "\n".join(lines) + "\n")
    write_jsonl(out_dir / HARD_NEGATIVES, [
        {"query_id": q.id, "anime_ids": q.hard_negatives} for q in queries if q.hard_negatives
    ])
    write_json(out_dir / MANIFEST, gold_manifest)
    write_json(out_dir / ANIME_SPLIT, anime_splits)


def ranked_run(ranked: dict[str, list[str]], name: str | None = None) -> Run:
    """A ranx Run of each query's anime ids, best first, scored by rank so ranx keeps the order."""
    return Run({query: {anime: float(len(ids) - rank) for rank, anime in enumerate(ids)}
                for query, ids in ranked.items()}, name=name)



def write_trec_run(path: Path, ranked: dict[str, list[str]], name: str) -> None:
    """``ranked`` as a TREC run file, line for line what ranx's ``Run.save`` writes for ``ranked_run(ranked, name)``
    (queries in order, best first, the rank-derived score) without reading ranx's numba dicts back."""
    lines = [f"{query} Q0 {anime} {rank} {float(len(ids) - rank + 1)} {name}"
             for query, ids in ranked.items() for rank, anime in enumerate(ids, 1)]
    write_text(path, "\n".join(lines))


def read_trec_rankings(path: Path) -> dict[str, list[str]]:
    """A TREC run file's rankings: per query in file order, its documents by score, best first (what
    ``Run.from_file`` then reading each query's scores gives, without building the Run)."""
    scored: dict[str, list[tuple[float, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        query, _, document, _, score, *_ = line.split()
        scored.setdefault(query, []).append((float(score), document))
    return {query: [document for _, document in sorted(pairs, key=lambda pair: -pair[0])]
            for query, pairs in scored.items()}

@dataclass
class GoldSplit:
    """One query split with its qrels (ranx) and hard negatives, as the scoring stages use it."""

    queries: list[GoldQuery]
    qrels: Qrels
    hard_negatives: dict[str, set[str]] = field(default_factory=dict)
    anime_splits: dict[str, str] = field(default_factory=dict)
    # Set on a held-out view: searches are filtered to these anime and only they are judged.
    restricted_to: frozenset[str] | None = None

    @property
    def categories(self) -> dict[str, str]:
        return {q.id: q.category for q in self.queries}

    @functools.cached_property
    def judged(self) -> dict[str, dict[str, int]]:
        """The qrels as Python dicts, in query order: read out of ranx's numba dicts once (slow to read)."""
        return self.qrels.to_dict()

    def kept(self, rankings: list[list[str]], limit: int) -> dict[str, list[str]]:
        """Each query's anime ids, best first, with the query's own ``exclude`` ids (a query-by-example
        source) dropped, cut at ``limit``."""
        results = {}
        for query, ranking in zip(self.queries, rankings, strict=True):
            excluded = set(query.exclude)
            results[query.id] = [anime for anime in ranking if anime not in excluded][:limit]
        return results

    def run_of(self, rankings: list[list[str]], limit: int, name: str | None = None) -> Run:
        """A ranx Run of the ``kept`` rankings."""
        return ranked_run(self.kept(rankings, limit), name)

    def held_out(self, anime_split: str) -> "GoldSplit":
        """The view for trained models: judgements and results limited to the anime of ``anime_split``
        (training saw train anime only)."""
        return self.restricted(frozenset(a for a, split in self.anime_splits.items() if split == anime_split))

    def restricted(self, kept_anime: frozenset[str]) -> "GoldSplit":
        """Judgements and results limited to ``kept_anime`` (a held-out split, a sample of the corpus); a query
        left without a relevant anime is dropped."""
        judgements = {q: {a: g for a, g in judged.items() if a in kept_anime}
                      for q, judged in self.judged.items()}
        judgements = {q: judged for q, judged in judgements.items() if any(g > 0 for g in judged.values())}
        return GoldSplit([q for q in self.queries if q.id in judgements], Qrels(judgements),
                         {q: n & kept_anime for q, n in self.hard_negatives.items() if n & kept_anime and q in judgements},
                         self.anime_splits, kept_anime)


def gold_split(gold: Gold, split: str, categories: tuple[str, ...] | None = None) -> GoldSplit:
    """The split's queries (of ``categories``, or all), their qrels (grade 0 = judged non-relevant) and hard
    negatives."""
    queries = [q for q in gold.queries if q.split == split and (categories is None or q.category in categories)]
    judgements = {q.id: gold.judgements[q.id] for q in queries if q.id in gold.judgements}
    negatives = {q_id: {a for a, g in judged.items() if g == 0} for q_id, judged in judgements.items()}
    return GoldSplit(queries, Qrels(judgements), {q: n for q, n in negatives.items() if n}, gold.anime_splits)


def load_gold(gold_dir: Path, split: str) -> GoldSplit:
    return gold_split(read_gold(gold_dir), split)
