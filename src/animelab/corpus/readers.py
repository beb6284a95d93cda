"""Readers that turn each source file's raw records into AnimeEntry / BangumiEntry.

A reader yields ``SourceRecord`` (where the record came from + its raw JSON text or object);
a parser turns one raw record into a validated entry or raises, and the ingest loop quarantines
whatever raises. Parsers never coerce a wrong type: they raise and say which field. A source file
that cannot be read as a whole (missing, not the document it should be) is a ``SourceError``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from animelab.corpus.schema import AnimeEntry, BangumiEntry
from animelab.errors import LabError


class SourceError(LabError):
    pass


class FieldError(ValueError):
    """A value a parser cannot use; the message starts with the field's name, so the reason groups by field."""


@dataclass(frozen=True)
class SourceRecord:
    """``unreadable`` is the reason the reader could not even decode the record; ``raw`` then holds its bytes."""

    location: str
    raw: str | bytes | dict[str, Any]
    unreadable: str = ""


def read_json_lines(path: Path) -> Iterator[SourceRecord]:
    """One record per line. Lines split on LF only (a bare CR is JSON whitespace, not a line end) and are
    decoded one by one, so an invalid UTF-8 byte costs its own line (reason: its 1-based byte in the line)."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)  # an editor's mark, not part of the first record
            line = line.removesuffix(b"\n").removesuffix(b"\r")  # the CR of a CRLF file
            location = f"{path.name}:{number}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                yield SourceRecord(location, line, f"invalid UTF-8: {error.reason} at byte {error.start + 1}")
                continue
            if text.strip():
                yield SourceRecord(location, text)


def read_enriched_document(path: Path) -> Iterator[SourceRecord]:
    """The design's export format: ``{"data": [AnimeEntry, ...]}``; one document, so a fault in it is the file's."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a BOM is ignored, as in JSON lines
    except UnicodeDecodeError as error:
        raise SourceError(f"{path}: invalid UTF-8: {error.reason} at byte {error.start + 1}") from error
    except json.JSONDecodeError as error:
        raise SourceError(f"{path}: invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from error
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise SourceError(f"{path}: expected a JSON object with a 'data' list")
    for index, record in enumerate(document["data"]):
        yield SourceRecord(f"{path.name}#data[{index}]", record)


def as_object(raw: str | dict[str, Any]) -> dict[str, Any]:
    record = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    return record


STATUS = {"finished airing": "FINISHED", "currently airing": "ONGOING", "not yet aired": "UPCOMING"}

PLATFORM_ID_PATTERNS = {
    "mal": re.compile(r"myanimelist\.net/anime/(\d+)"),
    "anilist": re.compile(r"anilist\.co/anime/(\d+)"),
    "kitsu": re.compile(r"kitsu\.(?:app|io)/anime/([\w-]+)"),
    "anime_planet": re.compile(r"anime-planet\.com/anime/([\w-]+)"),
    "animeschedule": re.compile(r"animeschedule\.net/anime/([\w-]+)"),
    "anisearch": re.compile(r"anisearch\.com/anime/(\d+)"),
    "anidb": re.compile(r"anidb\.net/(?:anime/|perl-bin/animedb\.pl\?show=anime&aid=)(\d+)"),
}

_DURATION_PART = re.compile(r"(\d+)\s*(hr|min|sec)")
_DURATION_UNIT_SECONDS = {"hr": 3600, "min": 60, "sec": 1}


def text_field(value: Any, field: str) -> str | None:
    """``value`` itself when it is a string or None; anything else is an error naming the field."""
    if value is not None and not isinstance(value, str):
        raise FieldError(f"{field}: expected a string, got {type(value).__name__} {value!r:.60}")
    return value


def normalise_status(status: Any, field: str) -> str | None:
    status = text_field(status, field)
    if status is None:
        return None
    return STATUS.get(status.strip().lower(), status.strip().upper())


def upper_or_none(value: Any, field: str) -> str | None:
    value = text_field(value, field)
    return value.strip().upper() if value else None


def lower_or_none(value: Any, field: str) -> str | None:
    value = text_field(value, field)
    return value.lower() if value else None


def text_or_none(value: Any, field: str) -> str | None:
    value = text_field(value, field)
    return value.strip() if value and value.strip() else None


def parse_jikan_duration(duration: str | None) -> int | None:
    """``"23 min per ep"`` / ``"1 hr 5 min"`` -> seconds per episode; ``"Unknown"`` -> None."""
    if duration is None or duration.strip().lower() == "unknown":
        return None
    parts = _DURATION_PART.findall(duration)
    if not parts:
        raise FieldError(f"duration: cannot parse {duration!r}")
    return sum(int(amount) * _DURATION_UNIT_SECONDS[unit] for amount, unit in parts)


def platform_ids(urls: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for url in urls:
        for platform, pattern in PLATFORM_ID_PATTERNS.items():
            match = pattern.search(url)
            if match and platform not in ids:
                ids[platform] = match.group(1)
    return ids


class JikanRecord(BaseModel):
    """One MyAnimeList season record as the Jikan API returns it (strict types)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    mal_id: int
    title: str | None = None
    title_english: str | None = None
    title_japanese: str | None = None
    title_synonyms: list[str] = []
    synopsis: str | None = None
    background: str | None = None
    type: str | None = None
    episodes: int | None = None
    status: str | None = None
    duration: str | None = None
    rating: str | None = None
    source: str | None = None
    studios: list[str] = []
    producers: list[str] = []
    licensors: list[str] = []
    genres: list[str] = []
    themes: list[str] = []
    demographics: list[str] = []
    aired_from: str | None = None
    aired_to: str | None = None
    broadcast: str | None = None
    year: int | None = None
    season: str | None = None
    score: float | int | None = None
    scored_by: int | None = None
    rank: int | None = None
    popularity: int | None = None
    members: int | None = None
    favorites: int | None = None
    image_url: str | None = None
    trailer_url: str | None = None
    url: str | None = None
    is_hentai: bool | None = None


def parse_jikan(raw: str | dict[str, Any]) -> AnimeEntry:
    record = JikanRecord.model_validate(as_object(raw))
    sources = [record.url] if record.url else []
    return AnimeEntry.model_validate(
        {
            "id": f"mal:{record.mal_id}",
            "origin": "mal_seasons",
            "title": record.title or "",
            "title_english": text_or_none(record.title_english, "title_english"),
            "title_japanese": text_or_none(record.title_japanese, "title_japanese"),
            "synonyms": record.title_synonyms,
            "synopsis": text_or_none(record.synopsis, "synopsis"),
            "background": text_or_none(record.background, "background"),
            "genres": record.genres,
            "themes": [{"name": theme} for theme in record.themes],
            "demographics": record.demographics,
            "studios": record.studios,
            "producers": record.producers,
            "licensors": record.licensors,
            "type": upper_or_none(record.type, "type"),
            "status": normalise_status(record.status, "status"),
            "episodes": record.episodes,
            "duration_seconds": parse_jikan_duration(record.duration),
            "rating": text_or_none(record.rating, "rating"),
            "source_material": upper_or_none(record.source, "source"),
            "year": record.year,
            "season": lower_or_none(record.season, "season"),
            "aired_dates": {"start": record.aired_from, "end": record.aired_to},
            "broadcast": text_or_none(record.broadcast, "broadcast"),
            "trailers": [{"url": record.trailer_url}] if record.trailer_url else [],
            "images": {"covers": [record.image_url] if record.image_url else []},
            "score": float(record.score) if record.score is not None else None,
            "members": record.members,
            "statistics": {
                "mal": {
                    "score": float(record.score) if record.score is not None else None,
                    "scored_by": record.scored_by,
                    "rank": record.rank,
                    "popularity_rank": record.popularity,
                    "members": record.members,
                    "favorites": record.favorites,
                }
            },
            "nsfw": record.is_hentai,
            "sources": sources,
            "ids": {"mal": str(record.mal_id)},
        }
    )


def _names(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["name"] for item in items or []]


def _staff_member(person: dict[str, Any], role: str | None = None) -> dict[str, Any]:
    return {
        "name": person.get("name") or "",
        "native_name": person.get("native_name"),
        "role": role if role is not None else person.get("role"),
        "occupations": person.get("primary_occupations") or [],
    }


def _enriched_staff(staff: dict[str, Any]) -> dict[str, Any]:
    production = {
        group: [_staff_member(person) for person in people]
        for group, people in (staff.get("production_staff") or {}).items()
    }
    voices = {
        language: [
            _staff_member(person, role="voice of " + ", ".join(person.get("character_assignments") or []))
            for person in people
        ]
        for language, people in (staff.get("voice_actors") or {}).items()
    }
    return {"production_staff": production, "voice_actors": voices}


def _enriched_character(character: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "name": character.get("name") or "",
        "role": character.get("role"),
        "name_native": character.get("name_native"),
        "name_variations": character.get("name_variations") or [],
        "nicknames": character.get("nicknames") or [],
        "gender": character.get("gender"),
        "description": text_or_none(character.get("description"), f"{where}.description"),
        "images": character.get("images") or [],
        "character_pages": character.get("character_pages") or {},
        "voice_actors": _names(character.get("voice_actors")),
    }


def _enriched_episode(episode: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "episode_number": episode.get("episode_number"),
        "season_number": episode.get("season_number"),
        "title": text_or_none(episode.get("title"), f"{where}.title"),
        "title_japanese": text_or_none(episode.get("title_japanese"), f"{where}.title_japanese"),
        "title_romaji": text_or_none(episode.get("title_romaji"), f"{where}.title_romaji"),
        "synopsis": text_or_none(episode.get("synopsis"), f"{where}.synopsis"),
        "aired": episode.get("aired"),
        "duration_seconds": episode.get("duration"),
        "filler": episode.get("filler", False),
        "recap": episode.get("recap", False),
    }


def _enriched_statistics(statistics: dict[str, Any]) -> dict[str, Any]:
    fields = ("score", "scored_by", "rank", "popularity_rank", "members", "favorites")
    return {
        platform: {field: values.get(field) for field in fields}
        for platform, values in statistics.items()
    }


def parse_enriched(raw: str | dict[str, Any]) -> AnimeEntry:
    """The production design's enriched format (multi-source: MAL, AniList, Kitsu...)."""
    record = as_object(raw)
    sources = record.get("sources") or []
    ids = platform_ids(sources)
    staff = record.get("staff_data") or {}
    statistics = _enriched_statistics(record.get("statistics") or {})
    mal_stats = statistics.get("mal", {})
    aired = record.get("aired_dates") or {}
    native_id = record.get("id")
    if "mal" in ids:
        anime_id = f"mal:{ids['mal']}"
    elif native_id:
        anime_id = f"enriched:{native_id}"
    else:
        raise FieldError("id: record has neither a MyAnimeList source nor an 'id'")
    return AnimeEntry.model_validate(
        {
            "id": anime_id,
            "origin": "enriched",
            "title": record.get("title") or "",
            "title_english": text_or_none(record.get("title_english"), "title_english"),
            "title_japanese": text_or_none(record.get("title_japanese"), "title_japanese"),
            "synonyms": record.get("synonyms") or [],
            "synopsis": text_or_none(record.get("synopsis"), "synopsis"),
            "background": text_or_none(record.get("background"), "background"),
            "genres": record.get("genres") or [],
            "tags": record.get("tags") or [],
            "themes": [
                {"name": theme["name"], "description": theme.get("description")}
                if isinstance(theme, dict)
                else {"name": theme}
                for theme in record.get("themes") or []
            ],
            "demographics": record.get("demographics") or [],
            "content_warnings": record.get("content_warnings") or [],
            "characters": [
                _enriched_character(c, f"characters.{i}") for i, c in enumerate(record.get("characters") or [])
            ],
            "staff_data": _enriched_staff(staff),
            "studios": _names(staff.get("studios")),
            "producers": _names(staff.get("producers")),
            "licensors": record.get("licensors") or [],
            "type": upper_or_none(record.get("type"), "type"),
            "status": normalise_status(record.get("status"), "status"),
            "episodes": record.get("episodes"),
            "duration_seconds": record.get("duration"),
            "rating": text_or_none(record.get("rating"), "rating"),
            "source_material": upper_or_none(record.get("source_material"), "source_material"),
            "episode_overrides": record.get("episode_overrides") or {},
            "year": record.get("year"),
            "season": lower_or_none(record.get("season"), "season"),
            "aired_dates": {"start": aired.get("from"), "end": aired.get("to"), "text": aired.get("string")},
            "broadcast": text_or_none(record.get("broadcast"), "broadcast"),
            "premiere_dates": record.get("premiere_dates") or {},
            "delay_information": record.get("delay_information") or {},
            "trailers": [{"url": t.get("url"), "title": t.get("title")} for t in record.get("trailers") or []],
            "opening_themes": [{"title": t["title"]} for t in record.get("opening_themes") or []],
            "ending_themes": [{"title": t["title"]} for t in record.get("ending_themes") or []],
            "related_anime": record.get("related_anime") or [],
            "relations": record.get("relations") or [],
            "streaming_info": record.get("streaming_info") or [],
            "streaming_licenses": record.get("streaming_licenses") or [],
            "episode_details": [
                _enriched_episode(e, f"episode_details.{i}") for i, e in enumerate(record.get("episode_details") or [])
            ],
            "awards": record.get("awards") or [],
            "images": record.get("images") or {},
            "score": mal_stats.get("score"),
            "members": mal_stats.get("members"),
            "statistics": statistics,
            "nsfw": record.get("nsfw"),
            "sources": sources,
            "ids": ids,
            "external_links": record.get("external_links") or {},
            "enrichment_metadata": record.get("enrichment_metadata") or {},
        }
    )


def parse_bangumi(raw: str | dict[str, Any]) -> BangumiEntry:
    record = as_object(raw)
    return BangumiEntry.model_validate(
        {
            "bangumi_id": record.get("mal_id"),
            "title": record.get("title") or "",
            "title_japanese": text_or_none(record.get("title_japanese"), "title_japanese"),
            "synopsis": text_or_none(record.get("synopsis"), "synopsis"),
            "genres": record.get("genres") or [],
            "studios": record.get("studios") or [],
            "year": record.get("year"),
            "aired_from": record.get("aired_from"),
            "url": record.get("url"),
        }
    )


@dataclass(frozen=True)
class SourceFormat:
    """How to read one kind of source file and parse its records."""

    read: Callable[[Path], Iterator[SourceRecord]]
    parse: Callable[[str | dict[str, Any]], BaseModel]


FORMATS: dict[str, SourceFormat] = {
    "jikan": SourceFormat(read_json_lines, parse_jikan),
    "enriched": SourceFormat(read_enriched_document, parse_enriched),
    "bangumi": SourceFormat(read_json_lines, parse_bangumi),
}


def read_corpus(path: Path) -> list[AnimeEntry]:
    """The normalised corpus the ingest stage wrote (already validated, so this cannot quarantine)."""
    with Path(path).open(encoding="utf-8") as lines:
        return [AnimeEntry.model_validate_json(line) for line in lines if line.strip()]
