"""Data quality on hand-made records whose answers are known by construction: completeness, each consistency
rule, cross-source links and their threshold, stratified samples, regression alerts."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from animelab.corpus.schema import AiredDates, AnimeEntry, BangumiEntry, Character, StaffData, Tag
from animelab.dataquality.completeness import field_completeness, present, record_scores, vector_coverage
from animelab.dataquality.consistency import check_rules
from animelab.dataquality.links import (Candidate, choose_threshold, duplicates, enriched_links, fuzzy_links,
                                        normalise_title, read_labels, similarity, title_links)
from animelab.dataquality.sampling import representativeness, strata, stratified_sample
from animelab.dataquality.tracking import log_data_quality, regression_alerts
from animelab.params import DataQualityParams, LinkParams, ParamsError, TrackingParams, load_params
from tests.conftest import REPO


@pytest.fixture(scope="module")
def settings() -> DataQualityParams:
    return load_params(REPO / "params.yaml").data_quality


def anime(anime_id: str, **fields) -> AnimeEntry:
    return AnimeEntry(id=anime_id, origin=fields.pop("origin", "test"), title=fields.pop("title", anime_id), **fields)


def test_presence_counts_values_not_containers():
    assert not any(present(v) for v in (None, "", "  ", [], {}, [""], {"a": None}, AiredDates(), StaffData()))
    assert all(present(v) for v in (0, False, "x", ["", "y"], AiredDates(start="2020-01-01"), [Tag(name="x")]))
    records = [anime("a", synopsis="s", episodes=0), anime("b", synopsis=" "), anime("c", episodes=12)]
    assert field_completeness(records, ["synopsis", "episodes", "awards"]) == {
        "synopsis": pytest.approx(1 / 3), "episodes": pytest.approx(2 / 3), "awards": 0.0}


def test_vector_coverage_follows_the_fields_that_feed_each_vector():
    entries = [anime("a", characters=[Character(name="Kei")]), anime("b"), anime("c", genres=["Drama"])]
    coverage = vector_coverage(entries)
    assert coverage["character_vector"] | {"fields": None} == {"anime": 1, "share": pytest.approx(1 / 3),
                                                               "modality": "text", "fields": None}
    assert coverage["character_vector"]["fields"] == ["characters"]
    assert coverage["genre_vector"]["anime"] == 1 and coverage["title_vector"]["anime"] == 3
    assert coverage["review_vector"]["anime"] == 0


def test_record_score_weighs_required_fields_above_optional_ones(settings):
    bare = anime("a")
    required = anime("b", synopsis="s", genres=["Drama"])
    optional = anime("c", background="b", tags=["x"])
    scores = record_scores([bare, required, optional], settings)
    # Every record has a title (required); b adds two required fields, c two optional ones.
    weights = settings.required_weight, settings.optional_weight
    total = len(settings.required_fields) * weights[0] + (47 - len(settings.required_fields)) * weights[1]
    assert scores == pytest.approx([weights[0] / total, 3 * weights[0] / total, (weights[0] + 2 * weights[1]) / total])


def test_each_consistency_rule_flags_exactly_its_violations(settings):
    entries = [
        anime("ok", year=2020, season="spring", status="FINISHED", episodes=12, duration_seconds=1440, score=7.5,
              members=10, aired_dates=AiredDates(start="2020-04-03T00:00:00+00:00", end="2020-06-19T00:00:00+00:00")),
        anime("year", year=2019, aired_dates=AiredDates(start="2020-01-05")),
        anime("upcoming_episodes", status="UPCOMING", episodes=12),
        anime("upcoming_end", status="UPCOMING", aired_dates=AiredDates(start="2030-01-01", end="2030-03-01")),
        anime("finished_open", status="FINISHED", aired_dates=AiredDates(start="2010-01-01")),
        anime("backwards", aired_dates=AiredDates(start="2012-05-01", end="2012-04-01")),
        anime("score", score=0.5),
        anime("duration", duration_seconds=0),
        anime("episodes", episodes=0),
        anime("season", season="summer", aired_dates=AiredDates(start="2015-04-10")),
        # A premiere in the month before its season is allowed (tolerance 1), two months before is not.
        anime("early", season="fall", aired_dates=AiredDates(start="2015-09-28")),
        anime("unreadable", year=2001, aired_dates=AiredDates(start="sometime in 2001")),
    ]
    result = check_rules(settings.rules, entries, examples=5)
    flagged = {name: [e["id"] for e in rule["examples"]] for name, rule in result.items()}
    assert flagged == {
        "year_vs_aired_start": ["year"], "upcoming_without_episode_count": ["upcoming_episodes"],
        "upcoming_without_end_date": ["upcoming_end"], "finished_has_end_date": ["finished_open"],
        "aired_end_not_before_start": ["backwards"], "score_in_range": ["score"], "duration_positive": ["duration"],
        "members_non_negative": [], "episodes_positive": ["episodes"], "season_vs_aired_month": ["season"]}
    assert result["year_vs_aired_start"]["unreadable"] == 1
    # Only the records holding both compared fields are checked.
    assert result["year_vs_aired_start"]["checked"] == 2 and result["finished_has_end_date"]["checked"] == 2
    assert result["upcoming_without_end_date"]["violating_ids"] == ["upcoming_end"]  # an error rule lists them
    assert result["year_vs_aired_start"]["violating_ids"] == []  # a warning rule does not
    assert result["year_vs_aired_start"]["examples"][0] == {"id": "year", "year": "2019", "aired_dates.start": "2020-01-05"}


def test_rule_params_are_checked_by_name(tmp_path):
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    bad = text.replace("fields: [year, aired_dates.start], severity: warning",
                       "fields: [year, aired_dates.begin], severity: warning", 1)
    (tmp_path / "params.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(ParamsError, match=r"data_quality\.rules\.0\.fields\.1.*aired_dates\.begin"):
        load_params(tmp_path / "params.yaml")


def test_titles_normalise_across_width_case_and_punctuation():
    assert normalise_title("ＳＨＩＲＯＢＡＫＯ 第2期！") == normalise_title("shirobako・第２期") == "shirobako第2期"
    assert normalise_title(None) == ""


def mal(anime_id: str, japanese: str, start: str | None, **fields) -> AnimeEntry:
    return anime(anime_id, title_japanese=japanese, aired_dates=AiredDates(start=start),
                 year=int(start[:4]) if start else fields.pop("year", None), **fields)


def bangumi(bangumi_id: int, japanese: str, start: str | None, **fields) -> BangumiEntry:
    return BangumiEntry(bangumi_id=bangumi_id, title=japanese, title_japanese=japanese, aired_from=start, **fields)


LINKS = LinkParams(labelled=REPO / "gold/link_labels.csv", min_precision=0.9, max_start_gap_days=3, year_window=1,
                   min_candidate_similarity=0.3, labelling_sample=10)


def test_title_links_exact_by_year_ambiguous_and_fuzzy():
    anime_records = [
        mal("mal:1", "ＷＯＲＫＩＮＧ!!", "2010-04-04"),
        mal("mal:2", "鋼の錬金術師", "2003-10-04"), mal("mal:3", "鋼の錬金術師", "2009-04-05"),  # a remake: by year
        mal("mal:4", "同名", "2012-01-01"), mal("mal:5", "同名", "2012-02-01"),  # same title and year: ambiguous
        mal("mal:6", "ゴールデンカムイ 第2期", "2018-10-08"),
        mal("mal:7", "ゴールデンカムイ 第3期", "2020-10-05"),  # the sequel: similar title, other start
    ]
    bangumi_records = [bangumi(10, "WORKING!!", "2010-04-04"), bangumi(11, "鋼の錬金術師", "2009-04-05"),
                       bangumi(12, "同名", "2012-01-01"), bangumi(13, "ゴールデンカムイ 2期", "2018-10-08"),
                       bangumi(14, "まったく別の作品", "2018-10-08")]
    links = title_links(anime_records, bangumi_records, LINKS)
    assert links.exact == {10: "mal:1"} and links.by_year == {11: "mal:3"}
    assert links.ambiguous == [{"title": "同名", "bangumi": [12], "anime": ["mal:4", "mal:5"]}]
    candidates = {c.bangumi_id: c for c in links.candidates}
    assert candidates[13].anime_id == "mal:6" and candidates[13].similarity == pytest.approx(
        similarity(bangumi_records[3], anime_records[5], LINKS))
    assert 14 not in candidates  # nothing near enough in title among the anime that started then
    assert similarity(bangumi_records[3], anime_records[6], LINKS) == 0.0  # two years apart: not comparable


def write_labels(path, rows) -> list[dict[str, str]]:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["bangumi_id", "anime_id", "same"])
        writer.writerows(rows)
    return read_labels(path)


def test_threshold_is_the_lowest_reaching_the_precision_on_labelled_pairs(tmp_path):
    # Five pairs at similarities 1.0, 0.8, 0.6, 0.5, 0.4 (titles of 10 characters sharing 10..4 of them).
    stem = "あいうえおかきくけこ"
    anime_records = {f"mal:{i}": mal(f"mal:{i}", stem, "2020-01-01") for i in range(5)}
    shared = [10, 8, 6, 5, 4]
    bangumi_records = {i: bangumi(i, stem[:n] + "さしすせそたちつてと"[: 10 - n], "2020-01-02") for i, n in enumerate(shared)}
    scores = [similarity(bangumi_records[i], anime_records[f"mal:{i}"], LINKS) for i in range(5)]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    labels = write_labels(tmp_path / "labels.csv", [(i, f"mal:{i}", same) for i, same in enumerate([1, 1, 1, 0, 1])])
    candidates = [Candidate(i, f"mal:{i}", scores[i], 0.0) for i in range(5)]
    chosen = choose_threshold(labels, anime_records, bangumi_records, candidates, LINKS)
    # At the lowest score, precision is 4/5 < 0.9; at the pair labelled 0 it is 3/4; above it 3/3.
    assert chosen["threshold"] == pytest.approx(scores[2]) and chosen["precision"] == 1.0
    assert chosen["recall"] == pytest.approx(3 / 4)
    strict = choose_threshold(labels, anime_records, bangumi_records, candidates, LINKS.model_copy(update={"min_precision": 0.7}))
    assert strict["threshold"] == pytest.approx(scores[4]) and strict["recall"] == 1.0
    empty = choose_threshold([], anime_records, bangumi_records, candidates, LINKS)
    assert empty["threshold"] is None and fuzzy_links(candidates, None) == ({}, 0)


def test_a_labelled_pair_naming_unknown_records_is_refused(tmp_path):
    labels = write_labels(tmp_path / "labels.csv", [(99, "mal:1", 1)])
    with pytest.raises(Exception, match="data_quality.links.labelled: 1 labelled pairs name records no source holds"):
        choose_threshold(labels, {"mal:1": mal("mal:1", "x", None)}, {}, [], LINKS)


def test_fuzzy_links_give_each_anime_to_its_most_similar_record():
    candidates = [Candidate(1, "mal:1", 0.9, 0.1), Candidate(2, "mal:1", 0.95, 0.1), Candidate(3, "mal:2", 0.5, 0.1)]
    assert fuzzy_links(candidates, 0.6) == ({2: "mal:1"}, 1)


def test_enriched_records_link_to_the_season_file_by_source_url():
    enriched = [anime("mal:5", sources=["https://anilist.co/anime/9", "https://myanimelist.net/anime/5"]),
                anime("x:1", sources=["https://myanimelist.net/anime/6"]), anime("x:2", sources=["https://kitsu.app/anime/a"])]
    result = enriched_links(enriched, [anime("mal:5"), anime("mal:7")])
    assert (result["linked"], result["not_in_season_file"], result["without_mal_url"]) == (1, 1, 1)


def test_duplicates_share_a_normalised_title_and_start_date():
    groups = duplicates([("a", "Title!", "2020-01-01T00:00:00"), ("b", "title", "2020-01-01"), ("c", "title", "2021-01-01"),
                         ("d", "", "2020-01-01")])
    assert groups == [{"title": "title", "start": "2020-01-01", "ids": ["a", "b"]}]


def catalogue(size: int) -> list[AnimeEntry]:
    rng = np.random.default_rng(0)
    genres, studios = ["Action", "Comedy", "Drama", "Romance"], ["A", "B", "C", "D", "E"]
    return [anime(f"a{i}", genres=[genres[int(rng.integers(4))]], studios=[studios[int(rng.integers(5))]],
                  year=int(rng.integers(2006, 2026)), members=int(rng.lognormal(10, 2))) for i in range(size)]


def test_a_stratified_sample_keeps_each_genre_share_and_beats_a_random_one(settings):
    entries = catalogue(2000)
    sample = stratified_sample(entries, 0.1, settings.strata, seed=3)
    assert len(sample) == 200 and len(set(sample)) == 200
    assert sample == stratified_sample(entries, 0.1, settings.strata, seed=3)  # seeded
    genres = Counter(strata(entries, settings.strata)["genre"])
    kept = set(sample)
    in_sample = Counter(g for g, e in zip(strata(entries, settings.strata)["genre"], entries) if e.id in kept)
    assert all(abs(in_sample[g] - 0.1 * n) <= 1 for g, n in genres.items())
    stratified = representativeness(entries, sample, settings.strata)
    random = representativeness(entries, np.random.default_rng(3).choice([e.id for e in entries], 200, replace=False),
                                settings.strata)
    assert all(stratified[v]["total_variation"] <= random[v]["total_variation"] for v in ("genre", "year", "popularity"))
    assert representativeness(entries, [e.id for e in entries], settings.strata)["studio"]["total_variation"] == 0.0


def test_regression_alerts_name_the_fields_whose_completeness_fell():
    before = {"completeness.mal_seasons.synopsis": 0.98, "coverage.title_vector": 1.0, "violations.x": 3.0}
    now = {"completeness.mal_seasons.synopsis": 0.90, "coverage.title_vector": 0.99, "violations.x": 30.0}
    assert regression_alerts(before, now, 0.05) == [{"metric": "completeness.mal_seasons.synopsis", "before": 0.98,
                                                     "now": 0.90, "drop": pytest.approx(0.08)}]


def test_a_tracked_run_is_compared_with_the_previous_one(tmp_path):
    tracking = TrackingParams(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="lab")
    first_id, first = log_data_quality(tracking, {"completeness.mal_seasons.synopsis": 0.98}, 0.05, {"seed": 1})
    second_id, second = log_data_quality(tracking, {"completeness.mal_seasons.synopsis": 0.97}, 0.05, {"seed": 1})
    _, third = log_data_quality(tracking, {"completeness.mal_seasons.synopsis": 0.50}, 0.05, {"seed": 1})
    assert first == [] and second == []  # nothing before the first; a 0.01 drop is within the tolerance
    assert [alert["metric"] for alert in third] == ["completeness.mal_seasons.synopsis"]
    assert third[0]["before"] == 0.97  # against the latest run, not the first

    import mlflow

    run = mlflow.MlflowClient(tracking_uri=tracking.uri).get_run(second_id)
    assert run.data.tags["compared_to"] == first_id and run.data.metrics["regression_alerts"] == 0.0
