"""One generator per gold-set category; each states its relevance rule (gold/README.md repeats them).

A generator returns every candidate query it can derive; sampling and splitting happen later
(``gold.build``), by group, so all phrasings of one combination / all variants of one anime
land in the same split.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import replace
from itertools import combinations
from typing import Any

from animelab.corpus.schema import AnimeEntry, BangumiEntry
from animelab.gold.franchise import base_title, franchises
from animelab.errors import LabError
from animelab.gold.predicates import CuratedQuery, Judgement
from animelab.gold.splits import GoldQuery

# The corpus label fields each category's relevance rule reads (grade 2 or 1). A system whose index
# or query mapping is built from these fields reproduces the rule rather than ranking: a metadata row.
# Titles are not listed: matching a title is what a known-item search is for.
RELEVANCE_FIELDS: dict[str, frozenset[str]] = {
    "facet": frozenset({"genre", "theme", "demographic"}),
    "studio": frozenset({"studio", "producer"}),
    "temporal": frozenset({"year", "season"}),
    "known_item": frozenset({"franchise"}),
    "cross_lingual": frozenset({"franchise"}),
    "similar": frozenset({"franchise", "genre", "theme", "demographic"}),
    "curated": frozenset({"genre", "theme"}),  # a few of its predicates
    "paraphrase": frozenset({"genre", "theme", "demographic"}),  # some of its predicates
}

AUDIENCE = {"Shounen": "teenage boys", "Shoujo": "teenage girls", "Seinen": "adult men", "Josei": "adult women",
            "Kids": "children"}
THEME_PHRASES = {
    "Team Sports": "a sports team", "CGDCT": "cute girls doing cute things", "Idols (Female)": "female idols",
    "Idols (Male)": "male idols", "Mahou Shoujo": "magical girls", "Iyashikei": "healing everyday life",
    "Love Polygon": "a love triangle", "Super Power": "superpowers", "Adult Cast": "adult characters",
    "Video Game": "video games", "Strategy Game": "strategy games", "High Stakes Game": "high-stakes games",
    "Otaku Culture": "otaku culture", "Performing Arts": "the performing arts", "Visual Arts": "the visual arts",
    "Combat Sports": "combat sports", "Love Status Quo": "a romance that never moves on",
    "Magical Sex Shift": "a magical gender swap", "Urban Fantasy": "urban fantasy", "Gag Humor": "gag humor",
    "School": "school life", "Music": "music", "Vampire": "vampires", "Pets": "pets", "Samurai": "samurai",
    "Delinquents": "delinquents", "Villainess": "a villainess", "Detective": "detectives",
    "Anthropomorphic": "anthropomorphic animals", "Isekai": "being transported to another world",
    "Mecha": "giant robots", "Military": "the military", "Space": "outer space", "Historical": "a historical setting",
    "Harem": "a harem", "Reverse Harem": "a reverse harem", "Workplace": "the workplace",
    "Psychological": "mind games and psychological tension", "Medical": "medicine", "Educational": "learning",
    "Showbiz": "show business", "Survival": "survival", "Childcare": "raising children", "Racing": "racing",
}
# Words a synopsis uses for a genre: a non-relevant anime using them is a confusable hard negative.
GENRE_WORDS = {
    "Romance": ["romance", "love", "lover", "girlfriend", "boyfriend", "dating", "crush"],
    "Sports": ["sport", "sports", "team", "match", "tournament", "championship"],
    "Comedy": ["comedy", "funny", "hilarious", "gag"],
    "Horror": ["horror", "terrifying", "monster", "haunted", "curse"],
    "Mystery": ["mystery", "mysterious", "detective", "case", "murder"],
    "Sci-Fi": ["future", "space", "robot", "technology", "science"],
    "Drama": ["tragedy", "tears", "drama"],
    "Gourmet": ["food", "cooking", "chef", "restaurant", "dish"],
    "Supernatural": ["spirit", "ghost", "supernatural", "demon", "yokai"],
    "Slice of Life": ["everyday", "daily life", "slice of life"],
}

FACET_TEMPLATES = {
    "demographic+genre": ["{d} {g} anime", "{g} anime for {audience}", "a {g} series aimed at {audience}",
                          "{d} anime in the {g} genre"],
    "genre+theme": ["{g} anime about {t}", "{g} series featuring {t}", "anime mixing {g} and {t}",
                    "a {g} story with {t}"],
    "demographic+genre+theme": ["{d} {g} anime about {t}", "{g} anime about {t} for {audience}",
                                "a {d} {g} series featuring {t}"],
    "genre+genre": ["{g} {g2} anime", "anime that is both {g} and {g2}", "a {g} series with {g2} elements"],
}


def query_id(category: str, text: str) -> str:
    return f"{category}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:10]}"


def make_query(category: str, text: str, group: str, qrels: dict[str, int], vectors: list[str],
               **extra: Any) -> GoldQuery:
    return GoldQuery(query_id(category, text), text, category, group, dict(sorted(qrels.items())), vectors, **extra)


def _phrase(label: str) -> str:
    return THEME_PHRASES.get(label, label.lower())


def facet_queries(entries: list[AnimeEntry], min_relevant: int, max_relevant: int, phrasings: int,
                  hard_negatives: int, rng_seed: int) -> list[GoldQuery]:
    """Genre/theme/demographic combinations in natural language.

    Grade 2: the anime has every facet of the combination. Grade 1: it has the main facet (the
    first genre) but not all the others. Kept: combinations with ``min_relevant``..``max_relevant``
    grade-2 anime. Hard negatives: anime without the main genre whose synopsis uses its words
    (``GENRE_WORDS``). Anime with the main genre are never negatives: they are grade 1 at least.
    """
    labels = {e.id: (set(e.demographics), set(e.genres), set(e.theme_names)) for e in entries}
    counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for demographics, genres, themes in labels.values():
        for g in genres:
            counts.update(("demographic+genre", (d, g)) for d in demographics)
            counts.update(("genre+theme", (g, t)) for t in themes)
            counts.update(("demographic+genre+theme", (d, g, t)) for d in demographics for t in themes)
        counts.update(("genre+genre", pair) for pair in combinations(sorted(genres), 2))
    queries = []
    negatives_for: dict[str, list[str]] = {}
    for (kind, facets), grade_2_count in sorted(counts.items()):
        if not min_relevant <= grade_2_count <= max_relevant:
            continue
        parts = dict(zip(kind.split("+"), facets))
        if kind == "genre+genre":
            parts = {"genre": facets[0], "genre2": facets[1]}
        main = parts["genre"]
        needed_demographics = {parts["demographic"]} if "demographic" in parts else set()
        needed_genres = {parts["genre"], parts.get("genre2", main)}
        needed_themes = {parts["theme"]} if "theme" in parts else set()
        qrels = {}
        for anime_id, (demographics, genres, themes) in labels.items():
            if needed_demographics <= demographics and needed_genres <= genres and needed_themes <= themes:
                qrels[anime_id] = 2
            elif main in genres:
                qrels[anime_id] = 1
        # Candidates depend on the main genre only; relevance differs per combination.
        if main not in negatives_for:
            negatives_for[main] = facet_hard_negatives(entries, main, rng_seed)
        negatives = [anime for anime in negatives_for[main] if anime not in qrels][:hard_negatives]
        group = f"{kind}:{'|'.join(facets)}"
        values = {"d": parts.get("demographic", "").lower(), "audience": AUDIENCE.get(parts.get("demographic", ""), ""),
                  "g": main.lower(), "g2": parts.get("genre2", "").lower(), "t": _phrase(parts.get("theme", ""))}
        templates = FACET_TEMPLATES[kind]
        start = int(hashlib.sha1(f"{rng_seed}:{group}".encode()).hexdigest(), 16) % len(templates)
        filters = {"genres_all": sorted(needed_genres)} | (
            {"themes_all": sorted(needed_themes)} if needed_themes else {}) | (
            {"demographics_any": sorted(needed_demographics)} if needed_demographics else {})
        for offset in range(min(phrasings, len(templates))):
            text = templates[(start + offset) % len(templates)].format(**values)
            queries.append(make_query("facet", text, group, qrels, ["genre_vector"], filters=filters,
                                      hard_negatives=negatives))
    return queries


def facet_hard_negatives(entries: list[AnimeEntry], main_genre: str, seed: int) -> list[str]:
    """Confusable anime for a main genre: without it, but with its words in the synopsis, in a seeded order."""
    words = GENRE_WORDS.get(main_genre, [main_genre.lower()])
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    candidates = [e.id for e in entries if main_genre not in e.genres and pattern.search(e.synopsis or "")]
    return sorted(candidates, key=lambda i: hashlib.sha1(f"{seed}:{main_genre}:{i}".encode()).hexdigest())


def studio_queries(entries: list[AnimeEntry], min_relevant: int, max_relevant: int) -> list[GoldQuery]:
    """Grade 2: the anime lists the studio (or producer) by that exact name. No grade 1."""
    queries = []
    for field_name, templates in (
        ("studios", ["anime animated by {n}", "{n} anime", "shows made by the studio {n}"]),
        ("producers", ["anime produced by {n}", "series with {n} as a producer"]),
    ):
        members: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            for name in getattr(entry, field_name):
                members[name].append(entry.id)
        for name, ids in sorted(members.items()):
            if min_relevant <= len(ids) <= max_relevant:
                qrels = dict.fromkeys(ids, 2)
                for template in templates:
                    queries.append(make_query("studio", template.format(n=name), f"{field_name}:{name}", qrels,
                                              ["staff_vector"], filters={f"{field_name}_any": [name]}))
    return queries


DECADE_PARTS = {"early": (0, 3), "mid": (4, 6), "late": (7, 9)}


def temporal_queries(entries: list[AnimeEntry], min_relevant: int) -> list[GoldQuery]:
    """Season+year: grade 2 that season of that year, grade 1 another season of the same year.
    Year: grade 2 that year, grade 1 the year before or after. Part of a decade ("late 2000s":
    early = years 0-3, mid = 4-6, late = 7-9): grade 2 inside, grade 1 one year outside."""
    by_year: dict[int, list[AnimeEntry]] = defaultdict(list)
    for entry in entries:
        if entry.year:
            by_year[entry.year].append(entry)
    queries = []

    def add(texts: list[str], group: str, qrels: dict[str, int], filters: dict[str, Any]) -> None:
        if sum(grade == 2 for grade in qrels.values()) >= min_relevant:
            queries.extend(make_query("temporal", text, group, qrels, ["temporal_vector"], filters=filters)
                           for text in texts)

    for year, members in sorted(by_year.items()):
        for season in ("winter", "spring", "summer", "fall"):
            qrels = {e.id: 2 if e.season == season else 1 for e in members}
            add([f"anime that aired in {season} {year}", f"{season} {year} anime season"],
                f"season:{season}-{year}", qrels, {"season_any": [season], "year_gte": year, "year_lte": year})
        qrels = {e.id: 1 for y in (year - 1, year + 1) for e in by_year.get(y, [])} | {e.id: 2 for e in members}
        add([f"anime from {year}", f"shows released in {year}"], f"year:{year}", qrels,
            {"year_gte": year, "year_lte": year})
    decades = sorted({year // 10 * 10 for year in by_year})
    for decade in decades:
        for part, (first, last) in DECADE_PARTS.items():
            low, high = decade + first, decade + last
            qrels = {e.id: 1 for y in (low - 1, high + 1) for e in by_year.get(y, [])}
            qrels |= {e.id: 2 for y in range(low, high + 1) for e in by_year.get(y, [])}
            add([f"anime from the {part} {decade}s", f"{part}-{decade}s anime"], f"decade:{part}-{decade}",
                qrels, {"year_gte": low, "year_lte": high})
    return queries


def known_item_queries(entries: list[AnimeEntry]) -> list[GoldQuery]:
    """The English title, first synonym or Japanese title as the query. Grade 2: the anime;
    grade 1: the rest of its franchise. Texts naming more than one anime are skipped."""
    mates = franchises(entries)
    owners: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        for text in (entry.title, entry.title_english, entry.title_japanese, *entry.synonyms):
            if text:
                owners[text.strip().casefold()].add(entry.id)
    queries = []
    for entry in entries:
        variants = [entry.title_english, next(iter(entry.synonyms), None), entry.title_japanese]
        seen = {entry.title.casefold()}
        for variant in variants:
            if not variant or variant.strip().casefold() in seen or len(owners[variant.strip().casefold()]) > 1:
                continue
            seen.add(variant.strip().casefold())
            qrels = dict.fromkeys(mates[entry.id], 1) | {entry.id: 2}
            queries.append(make_query("known_item", variant.strip(), f"anime:{entry.id}", qrels, ["title_vector"]))
    return queries


def cross_lingual_queries(entries: list[AnimeEntry], bangumi: list[BangumiEntry],
                          min_synopsis_chars: int) -> list[GoldQuery]:
    """A bangumi Chinese synopsis as the query. Grade 2: the MyAnimeList anime whose
    title_japanese equals the bangumi record's, when exactly one anime on each side has it;
    grade 1: the rest of that anime's franchise."""
    mates = franchises(entries)
    mal_by_title: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        if entry.title_japanese:
            mal_by_title[entry.title_japanese].append(entry.id)
    bangumi_by_title: Counter[str] = Counter(b.title_japanese for b in bangumi if b.title_japanese)
    queries = []
    seen: set[str] = set()
    for record in bangumi:
        title = record.title_japanese
        synopsis = " ".join((record.synopsis or "").split())
        if (not title or len(mal_by_title.get(title, [])) != 1 or bangumi_by_title[title] != 1
                or len(synopsis) < min_synopsis_chars or synopsis in seen):
            continue
        seen.add(synopsis)
        (anime_id,) = mal_by_title[title]
        qrels = dict.fromkeys(mates[anime_id], 1) | {anime_id: 2}
        queries.append(make_query("cross_lingual", synopsis, f"anime:{anime_id}", qrels, ["title_vector"]))
    return queries


def similar_queries(entries: list[AnimeEntry], min_jaccard: float) -> list[GoldQuery]:
    """"anime like <title>", the source anime excluded from results. Grade 2: the rest of its
    franchise; grade 1: anime whose genre+theme+demographic set has Jaccard similarity
    >= ``min_jaccard`` with the source's (at least 3 labels each)."""
    mates = franchises(entries)
    labels = {e.id: set(e.genres) | set(e.theme_names) | set(e.demographics) for e in entries}
    titles: Counter[str] = Counter(e.title.casefold() for e in entries)
    queries = []
    for entry in entries:
        if not mates[entry.id] or titles[entry.title.casefold()] > 1:
            continue
        source = labels[entry.id]
        qrels = {}
        if len(source) >= 3:
            for other, other_labels in labels.items():
                if other != entry.id and len(other_labels) >= 3:
                    if len(source & other_labels) / len(source | other_labels) >= min_jaccard:
                        qrels[other] = 1
        qrels |= dict.fromkeys(mates[entry.id], 2)
        queries.append(make_query("similar", f"anime like {entry.title}", f"franchise:{base_title(entry.title)}",
                                  qrels, ["title_vector", "genre_vector", "related_vector"], exclude=[entry.id]))
    return queries


def hand_queries(entries: list[AnimeEntry], hand: list[CuratedQuery], judgements: list[Judgement],
                 max_relevant: int) -> list[GoldQuery]:
    """Hand-written queries (curated, paraphrase); relevance from each query's own predicates and listed ids
    (an id graded 0 is a judged non-relevant anime, kept with the hard negatives), then the relevant anime the
    pooled judgements found among those neither graded. A pooled anime judged 0 is no hard negative: it was
    drawn from the compared rows' own results, so counting it as an intrusion would penalise exactly the pooled
    rows. A query matching more than ``max_relevant`` anime names no specific need."""
    judged: dict[str, dict[str, int]] = defaultdict(dict)
    for judgement in judgements:
        judged[judgement.query][judgement.anime] = judgement.grade
    present = {entry.id for entry in entries}
    queries, problems = [], []
    for query in hand:
        grades = query.grades(entries)
        overlap = sorted(set(grades) & set(judged[query.id]))
        if overlap:
            problems.append(f"{query.id}: judged anime {overlap[:3]} are already graded by its predicates or ids")
        found = {anime: grade for anime, grade in judged[query.id].items() if anime in present and grade > 0}
        relevant = {anime: grade for anime, grade in (grades | found).items() if grade > 0}
        if sum(grade == 2 for grade in relevant.values()) > max_relevant:
            problems.append(f"{query.id}: grade_2 matches {sum(g == 2 for g in relevant.values())} anime, "
                            f"more than gold.max_relevant {max_relevant}")
        judged_not = sorted(anime for anime, grade in grades.items() if grade == 0)
        made = make_query(query.category, query.text, query.group_name, relevant, query.vectors,
                          hard_negatives=judged_not)
        queries.append(replace(made, id=query.id))
    if problems:
        raise LabError("hand-written queries:\n  " + "\n  ".join(problems[:20]))
    return queries
