"""Engine-agnostic search requests and results; each backend translates them to its own API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from animelab.errors import LabError

# Qdrant's RRF constant as the design uses it: sum 1 / (k + rank), ranks from 0.
RRF_K = 60


@dataclass(frozen=True)
class SparseQuery:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class VectorQuery:
    """Nearest neighbours of ``vector`` in the named vector ``using``; ``limit`` is the prefetch depth,
    ``score_threshold`` the least score a prefetched point needs (None: any)."""

    using: str
    vector: list[float] | SparseQuery
    limit: int = 100
    score_threshold: float | None = None


@dataclass(frozen=True)
class Condition:
    """One payload condition: ``any_of`` / ``all_of`` values, or a ``gte``/``lte`` range."""

    key: str
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    gte: float | None = None
    lte: float | None = None


class FilterSpec(BaseModel):
    """Payload filters of the search API. List filters match any of / all of their values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anime_id_any: list[str] = []
    genres_any: list[str] = []
    genres_all: list[str] = []
    themes_any: list[str] = []
    themes_all: list[str] = []
    demographics_any: list[str] = []
    demographics_all: list[str] = []
    studios_any: list[str] = []
    producers_any: list[str] = []
    type_any: list[str] = []
    season_any: list[str] = []
    status_any: list[str] = []
    year_gte: int | None = None
    year_lte: int | None = None
    score_gte: float | None = None
    score_lte: float | None = None

    def conditions(self) -> list[Condition]:
        result = []
        for key in ("anime_id", "genres", "themes", "demographics", "studios", "producers", "type", "status", "season"):
            any_of = tuple(getattr(self, f"{key}_any"))
            all_of = tuple(getattr(self, f"{key}_all", ()))
            if any_of or all_of:
                result.append(Condition(key, any_of=any_of, all_of=all_of))
        for key in ("year", "score"):
            gte, lte = getattr(self, f"{key}_gte"), getattr(self, f"{key}_lte")
            if gte is not None or lte is not None:
                result.append(Condition(key, gte=gte, lte=lte))
        return result


def must_clauses(conditions: list[Condition]) -> list[tuple[str, str, Any]]:
    """The filter's semantics in one place, for every backend to translate clause by clause:
    ``("any", key, values)``, ``("value", key, value)`` (one per all-of value), ``("range", key, (gte, lte))``.

    Anime ids match the ``anime_id`` payload field, not the point ids: in Qdrant Edge a prefetch filtered by
    point ids returns lists that are not the exact top k and change from call to call (measured), which made
    every fused held-out row differ run to run."""
    clauses: list[tuple[str, str, Any]] = []
    for condition in conditions:
        if condition.any_of:
            clauses.append(("any", condition.key, list(condition.any_of)))
        clauses += [("value", condition.key, value) for value in condition.all_of]
        if condition.gte is not None or condition.lte is not None:
            clauses.append(("range", condition.key, (condition.gte, condition.lte)))
    return clauses


class Tuning(BaseModel):
    """Search-time knobs: HNSW beam width, exact scan, and how quantized vectors are used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hnsw_ef: int | None = Field(default=None, ge=1)
    exact: bool = False
    quantization_ignore: bool = False
    rescore: bool | None = None
    oversampling: float | None = Field(default=None, ge=1.0)

    @model_validator(mode="after")
    def exact_ignores_the_rest(self) -> "Tuning":
        if self.exact and self.hnsw_ef is not None:
            raise ValueError("hnsw_ef has no effect with exact search")
        return self


@dataclass(frozen=True)
class SearchRequest:
    """One vector query is a plain search; several are prefetched and fused."""

    queries: tuple[VectorQuery, ...]
    limit: int = 10
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = RRF_K
    weights: tuple[float, ...] | None = None
    filter: FilterSpec | None = None
    tuning: Tuning = field(default_factory=Tuning)
    with_payload: tuple[str, ...] = ("anime_id", "title")

    def __post_init__(self) -> None:
        if not self.queries:
            raise ValueError("a search needs at least one vector query")
        if self.weights is not None and len(self.weights) != len(self.queries):
            raise ValueError(f"{len(self.weights)} weights for {len(self.queries)} vector queries")

    @property
    def fused(self) -> bool:
        return len(self.queries) > 1


# Not frozen: a frozen dataclass's __init__ costs twice as much, and a search makes a hundred hits.
@dataclass(slots=True)
class Hit:
    anime_id: str
    score: float
    payload: dict[str, Any]


def payload_to_read(request: SearchRequest, anime_ids: Mapping[uuid.UUID, str] | None) -> list[str] | None:
    """The payload fields the engine reads for each hit: none when ``anime_ids`` (point id -> anime id) names
    the hits and the request asks for nothing else. Reading payload is most of a small search's cost (here
    1.1-1.5 of 1.7-1.9 ms for 100 hits of one 384-d vector)."""
    fields = sorted({"anime_id", *request.with_payload})
    return None if anime_ids is not None and fields == ["anime_id"] else fields


def hit_of(point_id: Any, score: float, payload: dict[str, Any] | None,
           anime_ids: Mapping[uuid.UUID, str] | None) -> Hit:
    """A hit from the engine's point: its anime id from the payload read with it, else from ``anime_ids``
    (``point_table``: ``point_id`` a ``uuid.UUID``)."""
    if payload:
        return Hit(payload["anime_id"], float(score), dict(payload))
    try:
        return Hit(anime_ids[point_id], float(score), {})
    except KeyError:
        raise LabError(f"point {point_id} is not among the anime the index was opened with: the index was built "
                       "from another corpus") from None


def exact_twin(request: SearchRequest) -> SearchRequest:
    """The same request, scanned exactly on the original vectors: the ANN-fidelity reference."""
    return replace(request, tuning=Tuning(exact=True, quantization_ignore=True))


def fetch_limit(request: SearchRequest) -> int:
    """How many results to ask the engine for first: one more than the limit, to see whether the group of
    equal scores at the cut goes on; fused scores tie more (equal ranks in different lists), so one extra
    per list, which holds a whole RRF tie group."""
    return request.limit + (len(request.queries) if request.fused else 1)


# Scores within this share of each other are ties. The engine sums fused scores in float32, in an
# order of its own: sums of 12 lists that are equal in exact arithmetic differ by a few float32 steps
# (one step is 6e-8 to 1.2e-7 of the value), more than any fixed rounding absorbs.
TIE_TOLERANCE = 4e-6


def demote_hubs(hits: list[Hit], shares: dict[str, float], penalty: float) -> list[Hit]:
    """``hits`` re-scored ``score - penalty x share`` (an anime's share of a query log's top-10 lists) and
    re-ranked by the same tie rule."""
    return ranked([replace(hit, score=hit.score - penalty * shares.get(hit.anime_id, 0.0)) for hit in hits], len(hits))


def ranked(hits: list[Hit], limit: int) -> list[Hit]:
    """Best first, ties (scores within ``TIE_TOLERANCE`` of their group's best) broken by anime id:
    the same request always gives the same list."""
    result: list[Hit] = []
    group: list[Hit] = []
    for hit in sorted(hits, key=lambda hit: -hit.score):
        if group and group[0].score - hit.score > TIE_TOLERANCE * abs(group[0].score):
            result += sorted(group, key=lambda tied: tied.anime_id)
            group = []
            if len(result) >= limit:
                break
        group.append(hit)
    return (result + sorted(group, key=lambda tied: tied.anime_id))[:limit]


def with_whole_ties(request: SearchRequest, fetch: Callable[[int], list[Hit]]) -> list[Hit]:
    """The request's hits, ties broken by anime id (``ranked``), from ``fetch(limit)``: the engine's best
    ``limit`` hits. A tie group that straddles the engine's limit comes back as an arbitrary part of itself
    (DBSF gives every anime with the same genre text one score, dozens of them), so fetch twice as many
    until the last hit falls below the group at the cut."""
    limit = fetch_limit(request)
    while True:
        hits = fetch(limit)
        if len(hits) < limit:
            return ranked(hits, request.limit)
        cut, last = hits[request.limit - 1].score, hits[-1].score
        if cut - last > TIE_TOLERANCE * abs(cut):
            return ranked(hits, request.limit)
        limit *= 2
