"""The field mapper against the real enriched sample: every source field of every vector shows up."""

from __future__ import annotations

import copy
import random

import pytest

from animelab.corpus.readers import parse_enriched, parse_jikan
from animelab.fields import FIELD_RENDERERS, VECTORS, VECTORS_BY_NAME, vector_inputs, vector_text


def first(items, key=None):
    item = items[0] if items else None
    return item.get(key) if key and isinstance(item, dict) else item


def words(text, count=6):
    return " ".join((text or "").split()[:count]) or None


# For each source field: the value a reader of the raw JSON expects to find in the vector input.
EXPECTED_FROM_RAW = {
    "title": lambda r: r.get("title"),
    "title_english": lambda r: r.get("title_english"),
    "title_japanese": lambda r: r.get("title_japanese"),
    "synonyms": lambda r: first(r.get("synonyms")),
    "synopsis": lambda r: words(r.get("synopsis")) if "__" not in (r.get("synopsis") or "") else None,
    "background": lambda r: words(r.get("background")),
    "characters": lambda r: first(r.get("characters"), "name"),
    "genres": lambda r: first(r.get("genres")),
    "tags": lambda r: first(r.get("tags")),
    "themes": lambda r: first(r.get("themes"), "name"),
    "demographics": lambda r: first(r.get("demographics")),
    "content_warnings": lambda r: first(r.get("content_warnings")),
    "rating": lambda r: r.get("rating"),
    "source_material": lambda r: r.get("source_material"),
    "status": lambda r: r.get("status"),
    "type": lambda r: r.get("type"),
    "licensors": lambda r: first(r.get("licensors")),
    "episode_overrides": lambda r: next(
        (f"{k} {v}" for o in (r.get("episode_overrides") or {}).values() for k, v in o.items() if v), None
    ),
    "staff_data": lambda r: next(
        (people[0]["name"] for people in (r.get("staff_data") or {}).get("production_staff", {}).values()), None
    ),
    "studios": lambda r: first((r.get("staff_data") or {}).get("studios"), "name"),
    "producers": lambda r: first((r.get("staff_data") or {}).get("producers"), "name"),
    "awards": lambda r: first(r.get("awards"), "name"),
    "aired_dates": lambda r: ((r.get("aired_dates") or {}).get("from") or "")[:10] or None,
    "broadcast": lambda r: r.get("broadcast"),
    "premiere_dates": lambda r: (first(list((r.get("premiere_dates") or {}).values())) or "")[:10] or None,
    "delay_information": lambda r: next(
        (k.replace("_", " ") for k, v in (r.get("delay_information") or {}).items() if v), None
    ),
    "season": lambda r: r.get("season"),
    "year": lambda r: str(r["year"]) if r.get("year") else None,
    "streaming_info": lambda r: first(r.get("streaming_info"), "platform"),
    "streaming_licenses": lambda r: first(r.get("streaming_licenses")),
    "related_anime": lambda r: first(r.get("related_anime"), "title"),
    "relations": lambda r: first(r.get("relations"), "title"),
    "trailers": lambda r: first(r.get("trailers"), "title"),
    "opening_themes": lambda r: first(r.get("opening_themes"), "title"),
    "ending_themes": lambda r: first(r.get("ending_themes"), "title"),
    "episode_details": lambda r: next((e["title"] for e in r.get("episode_details") or [] if e.get("title")), None),
    "ids": lambda r: next((s.rsplit("/", 1)[1] for s in r.get("sources") or [] if "myanimelist" in s), None),
    "images": lambda r: first((r.get("images") or {}).get("covers")),
    "character_images": lambda r: next((c["images"][0] for c in r.get("characters") or [] if c.get("images")), None),
}

# Values no record of the sample carries (or carries only as "nothing happened"): injected by hand.
HAND_MADE = {
    "licensors": ["Sentai Filmworks"],
    "awards": [{"name": "Tokyo Anime Award Festival", "year": 2021, "category": "Best TV Series"}],
    "broadcast": "Saturdays at 01:28 (JST)",
    "opening_themes": [{"title": '"Unravel" by TK from Ling Tosite Sigure'}],
    "episode_overrides": {"main_override": {"override_episode": 3, "episodes_aired": 2}},
    "delay_information": {"delayed_timetable": True, "delay_reason": "production schedule"},
}


def test_the_table_names_all_fourteen_vectors_and_a_renderer_for_each_source():
    assert len(VECTORS) == 14
    assert sum(spec.modality == "image" for spec in VECTORS) == 2
    assert {spec.name for spec in VECTORS if spec.priority == "high"} == {"title_vector", "character_vector", "genre_vector"}
    sources = {source for spec in VECTORS for source in spec.sources}
    assert sources == set(FIELD_RENDERERS) == set(EXPECTED_FROM_RAW)


@pytest.mark.parametrize(
    ("vector", "source"), [(spec.name, source) for spec in VECTORS for source in spec.sources]
)
def test_every_source_field_reaches_its_vector(vector, source, enriched_raw):
    records = [r for r in enriched_raw if EXPECTED_FROM_RAW[source](r)]
    if not records:
        assert source in HAND_MADE, f"{source}: absent from the sample and no hand-made value"
        records = [copy.deepcopy(enriched_raw[0]) | {source: HAND_MADE[source]}]
    for raw in records:
        expected = EXPECTED_FROM_RAW[source](raw)
        entry = parse_enriched(raw)
        text = "\n".join(vector_inputs(entry, VECTORS_BY_NAME[vector]))
        assert expected.lower() in text.lower(), f"{vector}: {expected!r} from {source} missing"


def test_fields_only_injected_where_the_sample_lacks_them(enriched_raw):
    lacking = {source for source, expected in EXPECTED_FROM_RAW.items() if not any(expected(r) for r in enriched_raw)}
    assert lacking == set(HAND_MADE)


def test_a_vector_without_source_content_is_absent(enriched_sample):
    spare = enriched_sample[0].model_copy(update={"awards": [], "streaming_info": [], "streaming_licenses": []})
    assert vector_inputs(spare, VECTORS_BY_NAME["review_vector"]) == []
    assert vector_inputs(spare, VECTORS_BY_NAME["streaming_vector"]) == []
    assert vector_text(spare, VECTORS_BY_NAME["streaming_vector"]) == ""


def test_text_is_deterministic_whatever_the_key_order(enriched_raw):
    raw = next(r for r in enriched_raw if r.get("staff_data") and r.get("premiere_dates"))
    shuffled = copy.deepcopy(raw)
    staff = shuffled["staff_data"]["production_staff"]
    keys = list(staff)
    random.Random(3).shuffle(keys)
    shuffled["staff_data"]["production_staff"] = {key: staff[key] for key in keys}
    for spec in VECTORS:
        assert vector_text(parse_enriched(raw), spec) == vector_text(parse_enriched(shuffled), spec)


def test_mal_records_yield_the_core_vectors(mal_lines):
    entries = [parse_jikan(line) for line in mal_lines[:200]]
    for name in ("title_vector", "genre_vector", "technical_vector", "staff_vector", "temporal_vector"):
        present = sum(bool(vector_inputs(entry, VECTORS_BY_NAME[name])) for entry in entries)
        assert present >= 0.95 * len(entries), name
    death_note = entries[0]
    assert "Shounen" in vector_text(death_note, VECTORS_BY_NAME["genre_vector"])
    assert "Madhouse" in vector_text(death_note, VECTORS_BY_NAME["staff_vector"])
    assert "2006-10-04" in vector_text(death_note, VECTORS_BY_NAME["temporal_vector"])


def test_episode_and_character_vectors_keep_one_segment_per_item(enriched_sample):
    entry = max(enriched_sample, key=lambda e: len(e.episode_details))
    segments = vector_inputs(entry, VECTORS_BY_NAME["episode_vector"])
    assert len(segments) == len(entry.episode_details) > 1
    # No episode of the sample is a filler or recap, so flag two by hand.
    episodes = list(entry.episode_details)
    episodes[0] = episodes[0].model_copy(update={"filler": True})
    episodes[1] = episodes[1].model_copy(update={"recap": True})
    flagged = vector_inputs(entry.model_copy(update={"episode_details": episodes}), VECTORS_BY_NAME["episode_vector"])
    assert "[filler]" in flagged[0] and "[recap]" in flagged[1] and "[" not in segments[2]
