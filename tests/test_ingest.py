"""Ingest: readers on the real files, and quarantine of every kind of bad record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from animelab.corpus.ingest import QuarantineExceeded, check_quarantine, ingest
from animelab.corpus.readers import parse_jikan_duration, read_corpus
from animelab.io import write_jsonl


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_real_sources_are_ingested_with_stable_ids(repo_params):
    result = ingest([
        ("enriched", "enriched", repo_params.data.path("enriched")),
        ("mal_seasons", "jikan", repo_params.data.path("mal_seasons")),
    ])
    assert result.read_per_source == {"enriched": 28, "mal_seasons": 3951}
    # The one anime present in both files is kept once (the enriched record) and the other quarantined.
    assert len(result.entries) + len(result.quarantined) == 3979
    assert [q.reason.split(":")[0] for q in result.quarantined] == ["duplicate id"]
    ids = [entry.id for entry in result.entries]
    assert len(ids) == len(set(ids))
    death_note = next(entry for entry in result.entries if entry.id == "mal:1535")
    assert death_note.title == "Death Note"
    assert death_note.demographics == ["Shounen"] and death_note.studios == ["Madhouse"]
    assert death_note.duration_seconds == 23 * 60 and death_note.status == "FINISHED"


def test_bangumi_records_keep_their_bangumi_id(repo_params):
    result = ingest([("bangumi", "bangumi", repo_params.data.path("bangumi"))])
    assert len(result.entries) == 4293 and not result.quarantined
    first = result.entries[0]
    assert first.bangumi_id == 8233 and first.url.endswith("/subject/8233")


def test_malformed_records_are_quarantined_with_reasons_and_the_rest_ingested(tmp_path, mal_lines):
    good = [json.loads(line) for line in mal_lines[:3]]
    bad_episodes = good[0] | {"mal_id": 990001, "episodes": "abc"}
    no_title = good[0] | {"mal_id": 990002, "title": ""}
    bad_duration = good[0] | {"mal_id": 990003, "duration": "forever"}
    wrong_list = good[0] | {"mal_id": 990004, "genres": "Action"}
    lines = [
        json.dumps(good[0]),
        '{"mal_id": 990005, "title": "cut off',
        json.dumps(bad_episodes),
        json.dumps(good[1]),
        json.dumps(no_title),
        "[1, 2, 3]",
        json.dumps(good[0]),  # the same anime again
        json.dumps(bad_duration),
        json.dumps(wrong_list),
        json.dumps(good[2]),
    ]
    source = write_lines(tmp_path / "seasons.jsonl", lines)
    result = ingest([("mal_seasons", "jikan", source)])

    assert [entry.id for entry in result.entries] == [f"mal:{record['mal_id']}" for record in good]
    reasons = {q.location: q.reason for q in result.quarantined}
    assert set(reasons) == {f"seasons.jsonl:{n}" for n in (2, 3, 5, 6, 7, 8, 9)}
    assert reasons["seasons.jsonl:2"].startswith("invalid JSON")
    assert reasons["seasons.jsonl:3"].startswith("episodes:") and "'abc'" in reasons["seasons.jsonl:3"]
    assert reasons["seasons.jsonl:5"].startswith("title:")
    assert reasons["seasons.jsonl:6"].startswith("ValueError: expected a JSON object")
    assert reasons["seasons.jsonl:7"] == f"duplicate id: mal:{good[0]['mal_id']} already ingested from seasons.jsonl:1"
    assert "duration" in reasons["seasons.jsonl:8"]
    assert reasons["seasons.jsonl:9"].startswith("genres:")
    # The quarantined raw text is kept verbatim, so nothing is lost.
    assert next(q for q in result.quarantined if q.location == "seasons.jsonl:2").raw == lines[1]
    metrics = result.metrics()
    assert metrics["read"] == 10 and metrics["ingested"] == 3 and metrics["quarantined"] == 7
    assert metrics["quarantined_per_reason"]["invalid JSON"] == 1


def test_quarantine_threshold_fails_with_a_clear_message(tmp_path, mal_lines):
    source = write_lines(tmp_path / "seasons.jsonl", [mal_lines[0], "not json", "also not json"])
    result = ingest([("mal_seasons", "jikan", source)])
    check_quarantine(result, max_share=0.7, what="anime corpus")
    with pytest.raises(QuarantineExceeded, match=r"2 of 3 records quarantined .*ingest.max_quarantined_share=50.0%"):
        check_quarantine(result, max_share=0.5, what="anime corpus")


def test_enriched_fields_are_mapped(enriched_sample, enriched_raw):
    nvade = enriched_sample[0]
    assert nvade.id == "mal:51478" and nvade.origin == "enriched"
    assert nvade.studios == ["SANZIGEN"]
    assert nvade.theme_names[:2] == ["Full CGI", "Band"]
    assert nvade.ids["anilist"] == "142051"
    assert nvade.characters[0].name == "Masuki Satou" and nvade.characters[0].images
    assert nvade.staff_data.production_staff["music_composers"][0].name == "Junpei Fujita"
    with_episodes = [e for e in enriched_sample if e.episode_details]
    assert sum(len(e.episode_details) for e in with_episodes) == sum(len(r["episode_details"]) for r in enriched_raw)


def test_corpus_round_trips_through_jsonl(tmp_path, enriched_sample):
    path = tmp_path / "anime.jsonl"
    write_jsonl(path, enriched_sample)
    assert read_corpus(path) == enriched_sample


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("23 min per ep", 1380), ("1 hr 5 min", 3900), ("24 sec per ep", 24), ("Unknown", None), (None, None)],
)
def test_jikan_durations(text, seconds):
    assert parse_jikan_duration(text) == seconds
