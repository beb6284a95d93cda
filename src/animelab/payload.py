"""What each point carries besides its vectors: the payload used for filters and display."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from animelab.corpus.schema import AnimeEntry

# Payload field -> how it is read from an entry. Filterable fields get an index (params).
PAYLOAD_FIELDS: dict[str, Any] = {
    "anime_id": lambda e: e.id,
    "title": lambda e: e.title,
    "genres": lambda e: e.genres,
    "themes": lambda e: e.theme_names,
    "demographics": lambda e: e.demographics,
    "studios": lambda e: e.studios,
    "producers": lambda e: e.producers,
    "type": lambda e: e.type,
    "status": lambda e: e.status,
    "source": lambda e: e.source_material,
    "rating": lambda e: e.rating,
    "year": lambda e: e.year,
    "season": lambda e: e.season,
    "score": lambda e: e.score,
    "episodes": lambda e: e.episodes,
    "members": lambda e: e.members,
}

# Qdrant point ids must be integers or UUIDs; the anime id maps to a fixed UUID.
POINT_NAMESPACE = uuid.UUID("6f1c1f1e-5a7e-4b8e-9a51-0a11ab000000")


def point_uuid(anime_id: str) -> uuid.UUID:
    return uuid.uuid5(POINT_NAMESPACE, anime_id)


def point_id(anime_id: str) -> str:
    return str(point_uuid(anime_id))


def point_table(anime_ids: Iterable[str]) -> dict[uuid.UUID, str]:
    """Point id -> anime id: how a search that reads no payload names its hits. Keyed by ``uuid.UUID``, as the
    embedded engine returns ids: hashing one costs a quarter of formatting it as a string."""
    return {point_uuid(anime_id): anime_id for anime_id in anime_ids}


def payload_for(entry: AnimeEntry) -> dict[str, Any]:
    """Every payload field that has a value (absent fields match no filter instead of null ones)."""
    values = {field: read(entry) for field, read in PAYLOAD_FIELDS.items()}
    return {field: value for field, value in values.items() if value not in (None, [], "")}
