"""The normalised corpus record (AnimeEntry) that every reader produces and every stage reads.

The shape follows the production design's enriched AnimeEntry format. Fields are strict: a
value of the wrong type (``"episodes": "abc"``) is a validation error, never coerced, so the
ingest stage can quarantine it with the reason.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Tag(Record):
    """A theme or tag with an optional explanation (enriched themes carry one)."""

    name: NonEmptyStr
    description: str | None = None


class Character(Record):
    name: NonEmptyStr
    role: str | None = None
    name_native: str | None = None
    name_variations: list[str] = []
    nicknames: list[str] = []
    gender: str | None = None
    description: str | None = None
    images: list[str] = []
    character_pages: dict[str, str] = {}
    voice_actors: list[str] = []


class StaffMember(Record):
    name: NonEmptyStr
    native_name: str | None = None
    role: str | None = None
    occupations: list[str] = []


class StaffData(Record):
    """People behind the anime, grouped by role (``directors``, ``music_composers``...)."""

    production_staff: dict[str, list[StaffMember]] = {}
    voice_actors: dict[str, list[StaffMember]] = {}


class Relation(Record):
    title: NonEmptyStr
    relation_type: str | None = None
    url: str | None = None


class StreamingInfo(Record):
    platform: NonEmptyStr
    url: str | None = None
    subtitle_languages: list[str] = []


class Trailer(Record):
    url: str | None = None
    title: str | None = None


class ThemeSong(Record):
    title: NonEmptyStr


class Episode(Record):
    episode_number: int | None = None
    season_number: int | None = None
    title: str | None = None
    title_japanese: str | None = None
    title_romaji: str | None = None
    synopsis: str | None = None
    aired: str | None = None
    duration_seconds: int | None = Field(default=None, ge=0)
    filler: bool = False
    recap: bool = False


class AiredDates(Record):
    start: str | None = None
    end: str | None = None
    text: str | None = None


class Award(Record):
    name: NonEmptyStr
    year: int | None = None
    category: str | None = None


class Images(Record):
    covers: list[str] = []
    posters: list[str] = []
    banners: list[str] = []
    trailer_thumbnails: list[str] = []


class PlatformStatistics(Record):
    score: float | None = None
    scored_by: int | None = None
    rank: int | None = None
    popularity_rank: int | None = None
    members: int | None = None
    favorites: int | None = None


class AnimeEntry(Record):
    """One anime. ``id`` is stable across runs: ``mal:<MyAnimeList id>`` when one is known."""

    id: NonEmptyStr
    origin: NonEmptyStr
    title: NonEmptyStr
    title_english: str | None = None
    title_japanese: str | None = None
    synonyms: list[str] = []
    synopsis: str | None = None
    background: str | None = None

    genres: list[str] = []
    tags: list[str] = []
    themes: list[Tag] = []
    demographics: list[str] = []
    content_warnings: list[str] = []

    characters: list[Character] = []
    staff_data: StaffData = StaffData()
    studios: list[str] = []
    producers: list[str] = []
    licensors: list[str] = []

    type: str | None = None
    status: str | None = None
    episodes: int | None = Field(default=None, ge=0)
    duration_seconds: int | None = Field(default=None, ge=0)
    rating: str | None = None
    source_material: str | None = None
    episode_overrides: dict[str, dict[str, int]] = {}

    year: int | None = Field(default=None, ge=1900, le=2100)
    season: str | None = None
    aired_dates: AiredDates = AiredDates()
    broadcast: str | None = None
    premiere_dates: dict[str, str] = {}
    delay_information: dict[str, bool | str] = {}

    trailers: list[Trailer] = []
    opening_themes: list[ThemeSong] = []
    ending_themes: list[ThemeSong] = []
    related_anime: list[Relation] = []
    relations: list[Relation] = []
    streaming_info: list[StreamingInfo] = []
    streaming_licenses: list[str] = []
    episode_details: list[Episode] = []
    awards: list[Award] = []
    images: Images = Images()

    score: float | None = Field(default=None, ge=0, le=10)
    members: int | None = Field(default=None, ge=0)
    statistics: dict[str, PlatformStatistics] = {}
    nsfw: bool | None = None
    sources: list[str] = []
    ids: dict[str, str] = {}
    external_links: dict[str, str] = {}
    enrichment_metadata: dict[str, str | bool | None] = {}

    @property
    def theme_names(self) -> list[str]:
        return [theme.name for theme in self.themes]

    @property
    def start_year(self) -> int | None:
        """``year``, else the year of the aired start date (ISO 8601), else None."""
        if self.year:
            return self.year
        start = (self.aired_dates.start or "")[:4]
        return int(start) if start.isdigit() else None


class BangumiEntry(Record):
    """A bangumi.tv record: an independent, Chinese-language description of a season's anime.

    ``bangumi_id`` is bangumi's subject id (the source file calls it ``mal_id``, wrongly).
    """

    bangumi_id: int
    title: NonEmptyStr
    title_japanese: str | None = None
    synopsis: str | None = None
    genres: list[str] = []
    studios: list[str] = []
    year: int | None = None
    aired_from: str | None = None
    url: str | None = None
