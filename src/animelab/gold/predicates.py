"""Relevance predicates over corpus metadata, used by the hand-written queries (gold/curated.yaml,
gold/paraphrase.yaml), and the pooled judgements laid over them (gold/paraphrase_judgements.jsonl)."""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from animelab.corpus.schema import AnimeEntry
from animelab.errors import LabError, problems
from animelab.fields import TEXT_VECTOR_NAMES
from animelab.io import read_yaml


def _phrase(phrase: str) -> str:
    """Refuses a blank word: its pattern would match (nearly) any text."""
    if not phrase.strip():
        raise ValueError("empty phrase")
    return phrase


Phrase = Annotated[str, AfterValidator(_phrase)]


class Predicate(BaseModel):
    """Conditions are ANDed; a list condition matches when any of its values does (``*_all``: every)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    genres_any: list[str] = []
    genres_all: list[str] = []
    genres_none: list[str] = []
    themes_any: list[str] = []
    themes_all: list[str] = []
    themes_none: list[str] = []
    demographics_any: list[str] = []
    studios_any: list[str] = []
    source_any: list[str] = []
    text_any: list[Phrase] = Field(default=[], description="whole words/phrases in titles, synopsis, background")
    title_any: list[Phrase] = Field(default=[], description="whole words/phrases in the titles only")
    year_gte: int | None = None
    year_lte: int | None = None
    score_gte: float | None = None

    @model_validator(mode="after")
    def has_a_condition(self) -> "Predicate":
        if all(getattr(self, name) in ([], None) for name in type(self).model_fields):
            raise ValueError("has no condition (it would match every anime)")
        return self

    @cached_property
    def _text_pattern(self) -> re.Pattern[str] | None:
        return _words(self.text_any)

    @cached_property
    def _title_pattern(self) -> re.Pattern[str] | None:
        return _words(self.title_any)

    def matches(self, entry: AnimeEntry) -> bool:
        genres, themes = set(entry.genres), set(entry.theme_names)
        titles = " ".join(filter(None, [entry.title, entry.title_english, *entry.synonyms]))
        text = " ".join(filter(None, [titles, entry.synopsis, entry.background]))
        return (
            _any(self.genres_any, genres) and set(self.genres_all) <= genres and not genres & set(self.genres_none)
            and _any(self.themes_any, themes) and set(self.themes_all) <= themes
            and not themes & set(self.themes_none)
            and _any(self.demographics_any, set(entry.demographics))
            and _any(self.studios_any, set(entry.studios))
            and (not self.source_any or entry.source_material in self.source_any)
            and (self._text_pattern is None or bool(self._text_pattern.search(text)))
            and (self._title_pattern is None or bool(self._title_pattern.search(titles)))
            and (self.year_gte is None or (entry.year is not None and entry.year >= self.year_gte))
            and (self.year_lte is None or (entry.year is not None and entry.year <= self.year_lte))
            and (self.score_gte is None or (entry.score is not None and entry.score >= self.score_gte))
        )


def _any(wanted: list[str], present: set[str]) -> bool:
    return not wanted or bool(set(wanted) & present)


def _words(phrases: list[str]) -> re.Pattern[str] | None:
    if not phrases:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in phrases) + r")\b", re.IGNORECASE)


# Hand-written query categories; a query's id starts with its category.
HAND_CATEGORIES = ("curated", "paraphrase")
# What a paraphrase query asks for: one title described in other words, or a kind of anime.
NEEDS = ("known_item", "topic", "mood", "comparison", "mixed")


class CuratedQuery(BaseModel):
    """A hand-written query: grade 2 by ``grade_2`` or an explicit id, grade 1 by ``grade_1``; ``group``: the
    phrasings of one need share it (and so their relevance and split); ``need``: what a paraphrase asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^(curated|paraphrase)-[a-z0-9-]+$")
    text: str = Field(min_length=2)
    vectors: list[str] = Field(min_length=1)
    grade_2: Predicate | None = None
    grade_1: Predicate | None = None
    ids: dict[str, Literal[0, 1, 2]] = {}
    group: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$")
    need: Literal[NEEDS] | None = None

    @model_validator(mode="after")
    def names_a_relevant_anime(self) -> "CuratedQuery":
        if self.grade_2 is None and 2 not in self.ids.values():
            raise ValueError("needs grade_2 or an id graded 2")
        if (self.category == "paraphrase") != (self.need is not None):
            raise ValueError("a paraphrase query states its need (and only a paraphrase query does)")
        return self

    @property
    def category(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def group_name(self) -> str:
        return self.group or self.id

    def grades(self, entries: list[AnimeEntry]) -> dict[str, int]:
        """anime id -> 2 / 1 by the predicates, then the explicit ``ids`` grades on top (0: judged not relevant)."""
        grades = {}
        for entry in entries:
            if self.grade_2 is not None and self.grade_2.matches(entry):
                grades[entry.id] = 2
            elif self.grade_1 is not None and self.grade_1.matches(entry):
                grades[entry.id] = 1
        present = {entry.id for entry in entries}
        return grades | {anime_id: grade for anime_id, grade in self.ids.items() if anime_id in present}


def load_curated(path: Path, category: str = "curated") -> list[CuratedQuery]:
    """The hand-written queries of one category (``gold.curated`` or ``gold.paraphrase``), validated."""
    try:
        raw = read_yaml(path) or []
    except FileNotFoundError as error:
        raise LabError(f"gold.{category}: {path} does not exist") from error
    queries = []
    for position, item in enumerate(raw):
        try:
            query = CuratedQuery.model_validate(item)
        except ValidationError as error:
            raise LabError(f"{path}: query #{position + 1} ({item.get('id', '?')}): "
                           + "; ".join(problems(error))) from error
        if query.category != category:
            raise LabError(f"{path}: {query.id}: ids in this file start with {category}-")
        unknown = sorted(set(query.vectors) - set(TEXT_VECTOR_NAMES))
        if unknown:
            raise LabError(f"{path}: {query.id}: unknown vectors {unknown}")
        queries.append(query)
    for key in ("id", "text"):
        seen = [getattr(q, key) for q in queries]
        duplicates = sorted({value for value in seen if seen.count(value) > 1})
        if duplicates:
            raise LabError(f"{path}: duplicate {key}s {duplicates}")
    relevance = {}
    for query in queries:
        judged = query.model_dump(include={"vectors", "grade_2", "grade_1", "ids"})
        if relevance.setdefault(query.group_name, judged) != judged:
            raise LabError(f"{path}: {query.id}: the queries of group {query.group_name} differ in vectors or "
                           "relevance (phrasings of one need share them)")
    return queries


class Judgement(BaseModel):
    """One pooled anime judged by reading its record: TREC-style pooling fills the predicates' holes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str
    anime: str
    grade: Literal[0, 1, 2]
    reason: str = Field(min_length=3)


def load_judgements(path: Path) -> list[Judgement]:
    """``gold.judgements``: an absent file is no judgements yet; a malformed line names its number."""
    if not Path(path).exists():
        return []
    judgements = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            judgements.append(Judgement.model_validate_json(line))
        except ValidationError as error:
            raise LabError(f"{path}: line {number}: " + "; ".join(problems(error))) from error
    pairs = Counter((j.query, j.anime) for j in judgements)
    repeated = sorted(f"{q} {a}" for (q, a), n in pairs.items() if n > 1)
    if repeated:
        raise LabError(f"{path}: judged twice: {repeated[:5]}")
    return judgements
