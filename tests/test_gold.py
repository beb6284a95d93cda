"""Gold-set generators on a hand-made corpus whose right qrels are known by construction."""

from __future__ import annotations

import pytest

from animelab.corpus.schema import AnimeEntry, BangumiEntry
from animelab.errors import LabError
from animelab.gold import generators
from animelab.gold.build import HandWritten, anime_split, assign_splits, build_gold, hole_rates, manifest, validate
from animelab.gold.splits import read_gold, write_gold
from animelab.gold.franchise import base_title, franchises
from animelab.gold.predicates import CuratedQuery, Predicate, load_curated
from animelab.params import GoldParams, SplitParams
from tests.conftest import REPO


def anime(anime_id: str, title: str, demographics=(), genres=(), themes=(), **fields) -> AnimeEntry:
    return AnimeEntry(id=anime_id, origin="test", title=title, demographics=list(demographics), genres=list(genres),
                      themes=[{"name": t} for t in themes], **fields)


CORPUS = [
    anime("a1", "Spike Team", ["Shounen"], ["Sports"], ["Team Sports", "School"], title_english="Spike!",
          synopsis="A volleyball club aims for nationals.", year=2015, season="spring"),
    anime("a2", "Spike Team 2nd Season", ["Shounen"], ["Sports"], ["Team Sports"], year=2016, season="winter"),
    anime("a3", "Ribbon Court", ["Shoujo"], ["Sports"], ["School"], year=2015, season="fall"),
    anime("a4", "Laugh Club", ["Shounen"], ["Comedy"], ["School"], synopsis="They lose every match they play.",
          year=2014, season="summer"),
    anime("a5", "Office Hearts", ["Seinen"], ["Romance"], ["Adult Cast"], year=2016, season="fall",
          studios=["Studio A"], title_japanese="オフィスハーツ"),
    anime("a6", "Quiet Letters", ["Josei"], ["Romance"], [], year=2016, season="spring", studios=["Studio A"],
          title_japanese="同じ題"),
    anime("a7", "Net Kings", ["Shounen"], ["Sports"], ["Team Sports", "School"], year=2017, season="spring",
          title_japanese="同じ題"),
    anime("a8", "Grey Rain", [], ["Drama"], [], year=2013, season="fall"),
]


def by_group(queries, group):
    return [q for q in queries if q.group == group]


def test_facet_grades_follow_the_rule():
    queries = generators.facet_queries(CORPUS, min_relevant=2, max_relevant=10, phrasings=2, hard_negatives=5,
                                       rng_seed=1)
    shounen_sports = by_group(queries, "demographic+genre:Shounen|Sports")
    assert len(shounen_sports) == 2 and len({q.text for q in shounen_sports}) == 2
    assert shounen_sports[0].qrels == {"a1": 2, "a2": 2, "a3": 1, "a7": 2}
    # Laugh Club lacks Sports but its synopsis talks of a match: confusable. Ribbon Court (shoujo
    # sports) has the main genre, so it is relevant (grade 1), never a negative.
    assert shounen_sports[0].hard_negatives == ["a4"]
    three_facets = by_group(queries, "demographic+genre+theme:Shounen|Sports|School")
    assert three_facets[0].qrels == {"a1": 2, "a2": 1, "a3": 1, "a7": 2}
    assert three_facets[0].filters == {"genres_all": ["Sports"], "themes_all": ["School"],
                                       "demographics_any": ["Shounen"]}
    # Romance has one anime per demographic: below min_relevant, so no Seinen-Romance query.
    assert not by_group(queries, "demographic+genre:Seinen|Romance")


def test_studio_and_temporal_rules():
    studio = generators.studio_queries(CORPUS, min_relevant=2, max_relevant=10)
    assert {q.text for q in studio} == {"anime animated by Studio A", "Studio A anime", "shows made by the studio Studio A"}
    assert all(q.qrels == {"a5": 2, "a6": 2} for q in studio)
    temporal = generators.temporal_queries(CORPUS, min_relevant=1)
    fall_2016 = by_group(temporal, "season:fall-2016")[0]
    assert fall_2016.qrels == {"a5": 2, "a2": 1, "a6": 1}
    year_2015 = by_group(temporal, "year:2015")[0]
    assert year_2015.qrels == {"a1": 2, "a3": 2, "a4": 1, "a2": 1, "a5": 1, "a6": 1}
    mid_2010s = by_group(temporal, "decade:mid-2010")[0]
    assert mid_2010s.text == "anime from the mid 2010s"
    assert {k for k, g in mid_2010s.qrels.items() if g == 2} == {"a1", "a2", "a3", "a4", "a5", "a6"}  # 2014-2016
    assert {k for k, g in mid_2010s.qrels.items() if g == 1} == {"a7", "a8"}  # 2017 and 2013: one year outside


def test_franchise_rule():
    assert base_title("Spike Team 2nd Season") == base_title("Spike Team") == "spiketeam"
    assert base_title("Re:Zero kara Hajimeru Isekai Seikatsu") != base_title("Re:Creators")
    assert base_title("86 Part 2") == base_title("86")
    assert franchises(CORPUS)["a1"] == ["a2"] and franchises(CORPUS)["a3"] == []


def test_known_item_and_similar_rules():
    known = generators.known_item_queries(CORPUS)
    spike = [q for q in known if q.text == "Spike!"]
    assert len(spike) == 1 and spike[0].qrels == {"a1": 2, "a2": 1}
    # "同じ題" is the Japanese title of two anime: ambiguous, so it is no known-item query.
    assert not [q for q in known if q.text == "同じ題"]
    similar = {q.text: q for q in generators.similar_queries(CORPUS, min_jaccard=0.6)}
    like_spike = similar["anime like Spike Team"]
    assert like_spike.exclude == ["a1"]
    assert like_spike.qrels == {"a2": 2, "a7": 1}  # a7 shares all four labels; a3 only 2 of 5
    assert "anime like Ribbon Court" not in similar  # no franchise, no grade-2 anime


def test_cross_lingual_needs_a_unique_match_on_both_sides():
    bangumi = [
        BangumiEntry(bangumi_id=1, title="x", title_japanese="オフィスハーツ", synopsis="一个关于办公室恋爱的长篇故事" * 3),
        BangumiEntry(bangumi_id=2, title="y", title_japanese="同じ題", synopsis="两部作品共用这个日文标题的故事" * 3),
        BangumiEntry(bangumi_id=3, title="z", title_japanese="オフィスハーツ", synopsis="另一条记录使用了同一个标题" * 3),
    ]
    assert generators.cross_lingual_queries(CORPUS, bangumi, min_synopsis_chars=10) == []
    queries = generators.cross_lingual_queries(CORPUS, bangumi[:2], min_synopsis_chars=10)
    assert [(q.text, q.qrels) for q in queries] == [(bangumi[0].synopsis, {"a5": 2})]


def test_curated_predicates():
    query = CuratedQuery(id="curated-sports-school", text="school sports", vectors=["genre_vector"],
                         grade_2=Predicate(genres_all=["Sports"], themes_any=["School"], text_any=["volleyball"]),
                         grade_1=Predicate(genres_any=["Sports"]), ids={"a8": 1, "a3": 0, "zz": 2})
    # ids override the predicates; 0 marks a judged non-relevant anime; ids not in the corpus are ignored.
    assert query.grades(CORPUS) == {"a1": 2, "a2": 1, "a3": 0, "a7": 1, "a8": 1}
    (made,) = generators.hand_queries(CORPUS, [query], [], max_relevant=10)
    assert made.id == "curated-sports-school" and made.qrels == {"a1": 2, "a2": 1, "a7": 1, "a8": 1}
    assert made.hard_negatives == ["a3"]
    assert Predicate(text_any=["match"]).matches(CORPUS[3]) and not Predicate(text_any=["mat"]).matches(CORPUS[3])
    assert Predicate(genres_none=["Sports"], year_gte=2016).matches(CORPUS[4])


def test_committed_curated_queries_load_and_name_real_anime(repo_params):
    from animelab.corpus.ingest import anime_sources, ingest

    queries = load_curated(REPO / repo_params.gold.curated)
    assert len(queries) >= 60
    corpus = ingest(anime_sources(repo_params.data.path("enriched"), repo_params.data.path("mal_seasons"))).entries
    ids = {entry.id for entry in corpus}
    for query in queries:
        assert set(query.ids) <= ids, query.id
        assert 2 in query.grades(corpus).values(), query.id


def gold_params(**changes) -> GoldParams:
    values = dict(curated="unused.yaml", paraphrase="unused.yaml", judgements="unused.jsonl", pool="unused.jsonl",
                  split=SplitParams(train=0.4, dev=0.2, test=0.4), min_relevant=2,
                  max_relevant=10, facet_phrasings=2, hard_negatives_per_query=5, cross_lingual_min_synopsis_chars=10,
                  similar_min_jaccard=0.6, max_queries={}, min_test_queries=1)
    return GoldParams(**(values | changes))


def test_splits_keep_groups_together_and_follow_the_fractions():
    queries = generators.facet_queries(CORPUS, 1, 10, 3, 5, rng_seed=1)
    assign_splits(queries, SplitParams(train=0.5, dev=0.25, test=0.25), seed=3, category="facet")
    splits_per_group = {}
    for query in queries:
        splits_per_group.setdefault(query.group, set()).add(query.split)
    assert all(len(splits) == 1 for splits in splits_per_group.values())
    groups = len(splits_per_group)
    test_groups = sum(splits == {"test"} for splits in splits_per_group.values())
    assert test_groups == round(groups * 0.25)


def test_the_gold_set_is_byte_identical_for_the_same_inputs(tmp_path):
    params = gold_params()
    outputs = []
    for run in ("first", "second"):
        gold = build_gold(CORPUS, [], HandWritten({}, []), params, seed=5)
        write_gold(tmp_path / run, gold.queries, manifest(gold, params, 5, {"corpus": "x"}),
                   anime_split(CORPUS, params.split, seed=5))
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"queries.jsonl", "qrels.trec", "hard_negatives.jsonl", "manifest.json",
                               "anime_split.json"}
    qrels = outputs[0]["qrels.trec"].decode().splitlines()
    assert all(len(line.split()) == 4 and line.split()[3] in {"0", "1", "2"} for line in qrels)


def test_gold_queries_read_back_as_they_were_written(tmp_path):
    params = gold_params()
    gold = build_gold(CORPUS, [], HandWritten({}, []), params, seed=5)
    write_gold(tmp_path, gold.queries, manifest(gold, params, 5, {"corpus": "x"}),
               anime_split(CORPUS, params.split, seed=5))
    read = read_gold(tmp_path)
    assert read.queries == gold.queries
    assert read.judgements == {q.id: q.qrels | {a: 0 for a in q.hard_negatives} for q in gold.queries}
    assert set(read.anime_splits) == {entry.id for entry in CORPUS}


def test_anime_split_keeps_franchises_together_and_follows_the_fractions():
    split = SplitParams(train=0.5, dev=0.2, test=0.3)
    assigned = anime_split(CORPUS, split, seed=7)
    splits = assigned["splits"]
    assert set(splits) == {entry.id for entry in CORPUS}
    for anime, others in franchises(CORPUS).items():
        assert {splits[other] for other in others} <= {splits[anime]}
    # Whole franchises are placed until a split's share is reached: off by less than one franchise.
    largest = max(len(others) + 1 for others in franchises(CORPUS).values())
    assert abs(assigned["counts"]["test"] - 0.3 * len(CORPUS)) < largest
    assert anime_split(CORPUS, split, seed=7) == assigned
    assert anime_split(CORPUS, split, seed=8)["splits"] != splits


def test_curated_queries_without_relevant_anime_are_dropped_and_reported():
    matching = CuratedQuery(id="curated-volleyball", text="volleyball", vectors=["title_vector"],
                            grade_2=Predicate(text_any=["volleyball"]))
    absent = CuratedQuery(id="curated-ninja", text="ninja", vectors=["title_vector"], grade_2=Predicate(text_any=["ninja"]))
    gold = build_gold(CORPUS, [], HandWritten({"curated": [matching, absent]}, []), gold_params(), seed=5)
    assert [q.id for q in gold.queries if q.category == "curated"] == ["curated-volleyball"]
    assert manifest(gold, gold_params(), 5, {})["dropped_curated_without_relevant_anime"] == ["curated-ninja"]


def test_validation_rejects_broken_sets():
    good = generators.studio_queries(CORPUS, 2, 10)
    validate(good, {e.id for e in CORPUS})
    with pytest.raises(LabError, match="ids not in the corpus"):
        validate(good, {"a1"})
    broken = [generators.make_query("curated", "nothing", "g", {"a1": 1}, ["title_vector"])]
    with pytest.raises(LabError, match="no grade-2 anime"):
        validate(broken, {e.id for e in CORPUS})
    with pytest.raises(LabError, match="duplicate query text"):
        validate(good + good[:1], {e.id for e in CORPUS})


def test_paraphrase_queries_take_judgements_groups_and_the_relevance_cap(tmp_path):
    from animelab.gold.predicates import Judgement, load_judgements

    sports = dict(vectors=["genre_vector"], grade_2=Predicate(genres_any=["Sports"]), need="topic")
    first = CuratedQuery(id="paraphrase-ball-games", text="kids playing ball games", group="ball", **sports)
    second = CuratedQuery(id="paraphrase-ball-teams", text="teams chasing a ball", group="ball", **sports)
    judged = [Judgement(query="paraphrase-ball-games", anime="a4", grade=1, reason="a comedy club that plays matches"),
              Judgement(query="paraphrase-ball-games", anime="a8", grade=0, reason="a drama, no games")]
    made = generators.hand_queries(CORPUS, [first, second], judged, max_relevant=10)
    assert [(q.category, q.group) for q in made] == [("paraphrase", "ball"), ("paraphrase", "ball")]
    # A pooled anime judged 0 is not a hard negative (it came from the compared rows' results).
    assert made[0].qrels == {"a1": 2, "a2": 2, "a3": 2, "a4": 1, "a7": 2} and made[0].hard_negatives == []
    assert made[1].qrels == {"a1": 2, "a2": 2, "a3": 2, "a7": 2}
    # A judgement may only fill a hole: an anime the predicates graded is not judged again.
    with pytest.raises(LabError, match="already graded"):
        generators.hand_queries(CORPUS, [first], [Judgement(query=first.id, anime="a1", grade=0, reason="not it")], 10)
    with pytest.raises(LabError, match="more than gold.max_relevant 3"):
        generators.hand_queries(CORPUS, [first], [], max_relevant=3)
    with pytest.raises(LabError, match="name queries no hand-written file has"):
        HandWritten({"paraphrase": [first]}, [Judgement(query="paraphrase-x", anime="a1", grade=2, reason="x y")])
    with pytest.raises(ValueError, match="states its need"):
        CuratedQuery(id="paraphrase-no-need", text="ball", vectors=["genre_vector"], grade_2=Predicate(genres_any=["Sports"]))
    with pytest.raises(ValueError, match="needs grade_2 or an id graded 2"):
        CuratedQuery(id="paraphrase-nothing", text="ball", vectors=["genre_vector"], need="topic", ids={"a1": 1})

    path = tmp_path / "paraphrase.yaml"
    path.write_text("- {id: paraphrase-a, text: aa, vectors: [genre_vector], need: topic, group: g, grade_2: {genres_any: [Sports]}}\n"
                    "- {id: paraphrase-b, text: bb, vectors: [title_vector], need: topic, group: g, grade_2: {genres_any: [Sports]}}\n")
    with pytest.raises(LabError, match="group g differ"):
        load_curated(path, "paraphrase")
    with pytest.raises(LabError, match="start with curated-"):
        load_curated(path, "curated")
    lines = tmp_path / "judgements.jsonl"
    lines.write_text('{"query": "q", "anime": "a1", "grade": 2, "reason": "fits"}\n{"query": "q", "anime": "a1", "grade": 3}\n')
    with pytest.raises(LabError, match="line 2"):
        load_judgements(lines)
    assert load_judgements(tmp_path / "absent.jsonl") == []


def test_hole_rate_is_the_share_of_pooled_anime_unjudged_until_pooling_and_relevant():
    from animelab.gold.predicates import Judgement

    query = CuratedQuery(id="paraphrase-q", text="qq", vectors=["title_vector"], need="known_item", ids={"a1": 2})
    pooled = [{"query": "paraphrase-q", "anime": "a1", "grade": 2}, {"query": "paraphrase-q", "anime": "a2", "grade": None},
              {"query": "paraphrase-q", "anime": "a3", "grade": None}, {"query": "paraphrase-q", "anime": "a4", "grade": None}]
    judged = [Judgement(query="paraphrase-q", anime="a2", grade=1, reason="the sequel"),
              Judgement(query="paraphrase-q", anime="a3", grade=0, reason="another show")]
    rates = hole_rates(pooled, HandWritten({"paraphrase": [query]}, judged))
    assert rates["known_item"] == rates["all"] == {"pooled": 4, "unjudged_when_pooled": 3, "still_unjudged": 1,
                                                    "hole_rate": 0.25}


def test_committed_paraphrase_queries_are_specific_and_split_by_group(repo_params):
    from animelab.corpus.ingest import anime_sources, ingest
    from animelab.gold.build import load_hand_written

    hand = load_hand_written(repo_params.gold.model_copy(update={
        name: REPO / getattr(repo_params.gold, name) for name in ("curated", "paraphrase", "judgements")}))
    queries = hand.queries["paraphrase"]
    assert len(queries) >= 300
    corpus = ingest(anime_sources(repo_params.data.path("enriched"), repo_params.data.path("mal_seasons"))).entries
    made = generators.hand_queries(corpus, queries, hand.judgements, repo_params.gold.max_relevant)
    for query in made:
        assert 1 <= sum(grade == 2 for grade in query.qrels.values()) <= repo_params.gold.max_relevant, query.id
    assert sum(query.need == "known_item" for query in queries) >= 0.4 * len(queries)
    # Split as the gold stage splits them: by group, so a need's phrasings never straddle train and test.
    assign_splits(made, repo_params.gold.split, repo_params.seed, "paraphrase")
    assert sum(query.split == "test" for query in made) >= 150
    splits_of_group = {}
    for query in made:
        splits_of_group.setdefault(query.group, set()).add(query.split)
    assert len(splits_of_group) < len(made) and all(len(splits) == 1 for splits in splits_of_group.values())
