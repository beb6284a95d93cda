"""The field mapper: which AnimeEntry fields feed each of the design's 14 named vectors.

``VECTORS`` is the single table (the README repeats it). Each source field has one renderer
that turns it into text segments (or image URLs); a vector's input is the concatenation of its
fields' segments in table order. A vector with no segments is *absent* for that anime: it is
never the embedding of an empty string. Rendering is deterministic: dict-shaped fields are
walked in sorted key order, lists in their stored order.

Bump ``FIELD_MAPPER_VERSION`` whenever a renderer or the table changes: the embed stage
records it, and downstream stages refuse embeddings made by another version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from animelab.corpus.schema import AnimeEntry, StaffMember

FIELD_MAPPER_VERSION = "1"

Modality = Literal["text", "image"]
Priority = Literal["high", "medium", "low"]
LongText = Literal["truncate", "chunk_mean"]


@dataclass(frozen=True)
class VectorSpec:
    name: str
    modality: Modality
    priority: Priority
    sources: tuple[str, ...]
    # chunk_mean: segments are packed into max-length chunks whose embeddings are averaged
    long_text: LongText = "truncate"


VECTORS: tuple[VectorSpec, ...] = (
    VectorSpec("title_vector", "text", "high",
               ("title", "title_english", "title_japanese", "synonyms", "synopsis", "background")),
    VectorSpec("character_vector", "text", "high", ("characters",), "chunk_mean"),
    VectorSpec("genre_vector", "text", "high", ("genres", "tags", "themes", "demographics", "content_warnings")),
    VectorSpec("technical_vector", "text", "medium",
               ("rating", "source_material", "status", "type", "licensors", "episode_overrides")),
    VectorSpec("staff_vector", "text", "medium", ("staff_data", "studios", "producers")),
    VectorSpec("review_vector", "text", "low", ("awards",)),
    VectorSpec("temporal_vector", "text", "medium",
               ("aired_dates", "broadcast", "premiere_dates", "delay_information", "season", "year")),
    VectorSpec("streaming_vector", "text", "low", ("streaming_info", "streaming_licenses")),
    VectorSpec("related_vector", "text", "medium", ("related_anime", "relations")),
    VectorSpec("franchise_vector", "text", "low", ("trailers", "opening_themes", "ending_themes")),
    VectorSpec("episode_vector", "text", "low", ("episode_details",), "chunk_mean"),
    VectorSpec("identifiers_vector", "text", "low", ("ids",)),
    VectorSpec("image_vector", "image", "medium", ("images",)),
    VectorSpec("character_image_vector", "image", "low", ("character_images",)),
)

VECTOR_NAMES: tuple[str, ...] = tuple(spec.name for spec in VECTORS)
TEXT_VECTOR_NAMES: tuple[str, ...] = tuple(spec.name for spec in VECTORS if spec.modality == "text")
IMAGE_VECTOR_NAMES: tuple[str, ...] = tuple(spec.name for spec in VECTORS if spec.modality == "image")
VECTORS_BY_NAME: dict[str, VectorSpec] = {spec.name: spec for spec in VECTORS}
# A vector of an extra embedding set (embed.sets) is named "<set>:<vector>", e.g. use:title_vector.
SET_SEPARATOR = ":"


def base_vector(name: str) -> str:
    """The field vector behind a vector name: use:title_vector -> title_vector."""
    return name.rpartition(SET_SEPARATOR)[2]


def vector_set(name: str) -> str | None:
    """The embedding set a qualified vector name belongs to (use:title_vector -> use), None for the default set."""
    return name.rpartition(SET_SEPARATOR)[0] or None

_SPACES = re.compile(r"\s+")
_MARKUP = re.compile(r"__|~!|!~|\[Written by MAL Rewrite\]")


def clean(text: str | None) -> str:
    """Collapse white space and drop site markup that carries no meaning."""
    return _SPACES.sub(" ", _MARKUP.sub("", text or "")).strip()


def labelled(label: str, values: list[str] | str | None) -> list[str]:
    """``["Genres: Action, Comedy"]``, or nothing when there are no non-empty values."""
    items = [values] if isinstance(values, str) or values is None else values
    kept = [clean(value) for value in items if clean(value)]
    return [f"{label}: {', '.join(kept)}"] if kept else []


def _date(value: str | None) -> str:
    return (value or "")[:10]


def render_characters(entry: AnimeEntry) -> list[str]:
    segments = []
    for character in entry.characters:
        parts = [character.name + (f" ({character.name_native})" if character.name_native else "")]
        if character.role:
            parts.append(f"{character.role} character")
        aliases = [*character.name_variations, *character.nicknames]
        if aliases:
            parts.append("also known as " + ", ".join(dict.fromkeys(aliases)))
        if character.gender:
            parts.append(character.gender)
        if character.voice_actors:
            parts.append("voiced by " + ", ".join(character.voice_actors))
        text = ". ".join(parts) + "."
        if character.description:
            text += " " + clean(character.description)
        segments.append(clean(text))
    return segments


def _person(person: StaffMember) -> str:
    return person.name + (f" ({person.native_name})" if person.native_name else "")


def render_staff(entry: AnimeEntry) -> list[str]:
    staff = entry.staff_data
    segments = []
    for role in sorted(staff.production_staff):
        segments += labelled(role.replace("_", " ").capitalize(), [_person(p) for p in staff.production_staff[role]])
    for language in sorted(staff.voice_actors):
        people = [_person(p) + (f", {p.role}" if p.role else "") for p in staff.voice_actors[language]]
        segments += labelled(f"Voice actors ({language})", people)
    return segments


def render_aired_dates(entry: AnimeEntry) -> list[str]:
    aired = entry.aired_dates
    if not aired.start and not aired.text:
        return []
    if aired.start:
        text = f"Aired from {_date(aired.start)}" + (f" to {_date(aired.end)}" if aired.end else "")
    else:
        text = f"Aired {aired.text}"
    return [text]


def render_premiere_dates(entry: AnimeEntry) -> list[str]:
    return [f"Premiere ({kind}): {_date(date)}" for kind, date in sorted(entry.premiere_dates.items()) if date]


def render_delay_information(entry: AnimeEntry) -> list[str]:
    """Only delays that happened: ``{"delayed_timetable": false}`` says nothing worth embedding."""
    return [
        f"{key.replace('_', ' ').capitalize()}: {'yes' if value is True else value}"
        for key, value in sorted(entry.delay_information.items())
        if value is True or (isinstance(value, str) and value.strip())
    ]


def render_episode_overrides(entry: AnimeEntry) -> list[str]:
    return [
        f"Episode override ({kind.replace('_', ' ')}): {', '.join(f'{k} {v}' for k, v in sorted(values.items()))}"
        for kind, values in sorted(entry.episode_overrides.items())
        if any(values.values())
    ]


def render_episodes(entry: AnimeEntry) -> list[str]:
    segments = []
    for episode in entry.episode_details:
        number = "Episode" + (f" {episode.episode_number}" if episode.episode_number is not None else "")
        if episode.season_number is not None:
            number = f"Season {episode.season_number} {number}"
        titles = [t for t in (episode.title, episode.title_romaji, episode.title_japanese) if t]
        text = number + (": " + " / ".join(dict.fromkeys(titles)) if titles else "")
        flags = [flag for flag, on in (("filler", episode.filler), ("recap", episode.recap)) if on]
        if flags:
            text += f" [{', '.join(flags)}]"
        if episode.synopsis:
            text += ". " + clean(episode.synopsis)
        segments.append(clean(text))
    return segments


def render_relations(label: str) -> Callable[[AnimeEntry], list[str]]:
    def render(entry: AnimeEntry) -> list[str]:
        relations = getattr(entry, label)
        unique = dict.fromkeys(
            f"{(r.relation_type or 'related').replace('_', ' ').lower()}: {clean(r.title)}" for r in relations
        )
        return [f"{label.replace('_', ' ').capitalize()}: " + "; ".join(unique)] if unique else []

    return render


def render_trailers(entry: AnimeEntry) -> list[str]:
    """Trailer titles only: a bare video URL carries no meaning a text encoder could use."""
    return labelled("Trailers", [trailer.title or "" for trailer in entry.trailers])


def render_ids(entry: AnimeEntry) -> list[str]:
    return [f"{platform} id {value}" for platform, value in sorted(entry.ids.items())]


def render_images(entry: AnimeEntry) -> list[str]:
    images = entry.images
    return list(dict.fromkeys([*images.covers, *images.posters, *images.banners, *images.trailer_thumbnails]))


def render_character_images(entry: AnimeEntry) -> list[str]:
    return list(dict.fromkeys(url for character in entry.characters for url in character.images))


FIELD_RENDERERS: dict[str, Callable[[AnimeEntry], list[str]]] = {
    "title": lambda e: labelled("Title", e.title),
    "title_english": lambda e: labelled("English title", e.title_english),
    "title_japanese": lambda e: labelled("Japanese title", e.title_japanese),
    "synonyms": lambda e: labelled("Also known as", e.synonyms),
    "synopsis": lambda e: [clean(e.synopsis)] if clean(e.synopsis) else [],
    "background": lambda e: [clean(e.background)] if clean(e.background) else [],
    "characters": render_characters,
    "genres": lambda e: labelled("Genres", e.genres),
    "tags": lambda e: labelled("Tags", e.tags),
    "themes": lambda e: labelled(
        "Themes", [t.name + (f" ({clean(t.description)})" if t.description else "") for t in e.themes]
    ),
    "demographics": lambda e: labelled("Demographic", e.demographics),
    "content_warnings": lambda e: labelled("Content warnings", e.content_warnings),
    "rating": lambda e: labelled("Rating", e.rating),
    "source_material": lambda e: labelled("Source material", (e.source_material or "").lower()),
    "status": lambda e: labelled("Status", (e.status or "").lower()),
    "type": lambda e: labelled("Format", e.type),
    "licensors": lambda e: labelled("Licensed by", e.licensors),
    "episode_overrides": render_episode_overrides,
    "staff_data": render_staff,
    "studios": lambda e: labelled("Animation studio", e.studios),
    "producers": lambda e: labelled("Producers", e.producers),
    "awards": lambda e: labelled(
        "Awards",
        [a.name + "".join(f" ({part})" for part in (a.category, a.year) if part) for a in e.awards],
    ),
    "aired_dates": render_aired_dates,
    "broadcast": lambda e: labelled("Broadcast", e.broadcast),
    "premiere_dates": render_premiere_dates,
    "delay_information": render_delay_information,
    "season": lambda e: labelled("Season", e.season),
    "year": lambda e: labelled("Year", str(e.year) if e.year else None),
    "streaming_info": lambda e: labelled(
        "Streaming on",
        [s.platform + (f" (subtitles: {', '.join(s.subtitle_languages)})" if s.subtitle_languages else "")
         for s in e.streaming_info],
    ),
    "streaming_licenses": lambda e: labelled("Streaming licenses", e.streaming_licenses),
    "related_anime": render_relations("related_anime"),
    "relations": render_relations("relations"),
    "trailers": render_trailers,
    "opening_themes": lambda e: labelled("Opening themes", [t.title for t in e.opening_themes]),
    "ending_themes": lambda e: labelled("Ending themes", [t.title for t in e.ending_themes]),
    "episode_details": render_episodes,
    "ids": render_ids,
    "images": render_images,
    "character_images": render_character_images,
}


def vector_inputs(entry: AnimeEntry, spec: VectorSpec) -> list[str]:
    """Text segments (text vectors) or image URLs (image vectors); empty means the vector is absent."""
    return [segment for field in spec.sources for segment in FIELD_RENDERERS[field](entry)]


def vector_text(entry: AnimeEntry, spec: VectorSpec) -> str:
    return "\n".join(vector_inputs(entry, spec))
