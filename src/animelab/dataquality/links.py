"""Cross-source links and duplicates: MAL <-> bangumi by Japanese title, enriched <-> MAL by source URL,
and likely duplicates within one source.

MAL and bangumi describe the same seasons with no shared id. A pair is linked when its normalised Japanese
titles are equal and unique on both sides (or, where a title repeats, when one pair of them is within the
year window), else by title similarity (rapidfuzz) among the anime that started airing within
``max_start_gap_days`` of it (the year window where a start date is missing), at a threshold chosen on
hand-labelled candidate pairs (``data_quality.links.labelled``): sequels share most of a title, not a start.
"""

from __future__ import annotations

import csv
import datetime as dt
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process
from sklearn.metrics import precision_recall_curve

from animelab.corpus.readers import platform_ids
from animelab.corpus.schema import AnimeEntry, BangumiEntry
from animelab.dataquality.consistency import NotApplicable, date_of
from animelab.errors import LabError
from animelab.params import LinkParams

def normalise_title(title: str | None) -> str:
    """NFKC, case-folded, letters and digits only: ``ＳＨＩＲＯＢＡＫＯ 第2期！`` and ``shirobako第2期`` agree."""
    text = unicodedata.normalize("NFKC", title or "").casefold()
    return "".join(char for char in text if unicodedata.category(char)[0] in "LN")


def start_of(value: str | None) -> dt.date | None:
    try:
        return date_of(value) if value else None
    except NotApplicable:
        return None


def bangumi_year(entry: BangumiEntry) -> int | None:
    start = start_of(entry.aired_from)
    return entry.year or (start.year if start else None)


def within(window: int, a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= window


def comparable(bangumi: BangumiEntry, anime: AnimeEntry, settings: LinkParams) -> bool:
    """Started within ``max_start_gap_days`` of each other, or, lacking a start date, within the year window."""
    starts = start_of(bangumi.aired_from), start_of(anime.aired_dates.start)
    if starts[0] is not None and starts[1] is not None:
        return abs((starts[0] - starts[1]).days) <= settings.max_start_gap_days
    return within(settings.year_window, bangumi_year(bangumi), anime.start_year)


def similarity(bangumi: BangumiEntry, anime: AnimeEntry, settings: LinkParams) -> float:
    """Indel similarity (0..1) of the two normalised Japanese titles; 0 for records not comparable in time."""
    if not comparable(bangumi, anime, settings):
        return 0.0
    return fuzz.ratio(normalise_title(bangumi.title_japanese), normalise_title(anime.title_japanese)) / 100


@dataclass(frozen=True)
class Candidate:
    """A bangumi record's most similar comparable unlinked MAL anime, and the runner-up's score."""

    bangumi_id: int
    anime_id: str
    similarity: float
    runner_up: float


@dataclass
class TitleLinks:
    exact: dict[int, str]
    by_year: dict[int, str]
    ambiguous: list[dict[str, Any]]
    candidates: list[Candidate]

    def linked(self) -> dict[int, str]:
        return self.exact | self.by_year


def title_links(anime: Sequence[AnimeEntry], bangumi: Sequence[BangumiEntry], settings: LinkParams) -> TitleLinks:
    """Exact links, repeated titles resolved by year, what stays ambiguous, and each still unlinked bangumi
    record's best fuzzy candidate (at least ``min_candidate_similarity``)."""
    anime_keys = {entry.id: normalise_title(entry.title_japanese) for entry in anime}  # once, not per candidate
    anime_by_title: dict[str, list[AnimeEntry]] = defaultdict(list)
    for entry in anime:
        if key := anime_keys[entry.id]:
            anime_by_title[key].append(entry)
    bangumi_by_title: dict[str, list[BangumiEntry]] = defaultdict(list)
    for entry in bangumi:
        if key := normalise_title(entry.title_japanese):
            bangumi_by_title[key].append(entry)
    exact, by_year, ambiguous = {}, {}, []
    for key, records in bangumi_by_title.items():
        matches = anime_by_title.get(key, [])
        if len(matches) == 1 and len(records) == 1:
            exact[records[0].bangumi_id] = matches[0].id
            continue
        for record in records:
            near = [m for m in matches if within(settings.year_window, bangumi_year(record), m.start_year)]
            if len(near) == 1 and sum(within(settings.year_window, bangumi_year(r), near[0].start_year)
                                      for r in records) == 1:
                by_year[record.bangumi_id] = near[0].id
        unresolved = [r.bangumi_id for r in records if r.bangumi_id not in by_year]
        if matches and unresolved:
            ambiguous.append({"title": key, "bangumi": unresolved,
                              "anime": [m.id for m in matches if m.id not in by_year.values()]})
    linked_anime = set(exact.values()) | set(by_year.values())
    pool_by_year: dict[int, list[AnimeEntry]] = defaultdict(list)
    for entry in anime:
        if entry.id not in linked_anime and anime_keys[entry.id] and entry.start_year is not None:
            pool_by_year[entry.start_year].append(entry)
    candidates = []
    for record in bangumi:
        key, year = normalise_title(record.title_japanese), bangumi_year(record)
        if not key or year is None or key in anime_by_title:  # an exact title is linked or ambiguous
            continue
        pool = [entry for y in range(year - settings.year_window, year + settings.year_window + 1)
                for entry in pool_by_year.get(y, []) if comparable(record, entry, settings)]
        best = process.extract(key, [anime_keys[entry.id] for entry in pool], scorer=fuzz.ratio, limit=2)
        if best and best[0][1] / 100 >= settings.min_candidate_similarity:
            runner_up = best[1][1] / 100 if len(best) > 1 else 0.0
            candidates.append(Candidate(record.bangumi_id, pool[best[0][2]].id, best[0][1] / 100, runner_up))
    return TitleLinks(exact, by_year, ambiguous, candidates)


def read_labels(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise LabError(f"data_quality.links.labelled: {path} does not exist")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    missing = [column for column in ("bangumi_id", "anime_id", "same") if column not in (reader.fieldnames or [])]
    if missing:
        raise LabError(f"data_quality.links.labelled: {path} lacks the columns {missing}")
    return rows


def similarity_bins(scores: np.ndarray, low: float, bins: int) -> np.ndarray:
    """Each score's bin among ``bins`` equal-width bins of [low, 1]; -1 below ``low``."""
    edges = np.linspace(low, 1.0, bins + 1)
    return np.where(scores >= low, np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1), -1)


def choose_threshold(labels: list[dict[str, str]], anime: dict[str, AnimeEntry], bangumi: dict[int, BangumiEntry],
                     candidates: Sequence[Candidate], settings: LinkParams) -> dict[str, Any]:
    """The lowest similarity at which the candidates scoring at least it reach ``min_precision``, estimated
    from the labelled pairs (similarities recomputed, not read from the file). Labelled pairs were drawn
    evenly over similarity bins, so each counts for the candidates of its bin (inverse inclusion weight):
    the estimate is the precision of the links the stage makes, not of the sample."""
    unknown = [row for row in labels if int(row["bangumi_id"]) not in bangumi or row["anime_id"] not in anime]
    if unknown:
        raise LabError(f"data_quality.links.labelled: {len(unknown)} labelled pairs name records no source holds, "
                       f"first {unknown[0]['bangumi_id']} / {unknown[0]['anime_id']}")
    if not labels:  # nothing labelled: no threshold, so no fuzzy link
        return {"pairs": 0, "same": 0, "min_precision": settings.min_precision, "curve": [], "threshold": None,
                "precision": None, "recall": None}
    truth = np.array([int(row["same"]) for row in labels])
    scores = np.array([similarity(bangumi[int(row["bangumi_id"])], anime[row["anime_id"]], settings)
                       for row in labels])
    low = settings.min_candidate_similarity
    labelled_bins = similarity_bins(scores, low, LABELLING_BINS)
    population = np.bincount(similarity_bins(np.array([c.similarity for c in candidates]), low, LABELLING_BINS),
                             minlength=LABELLING_BINS) if candidates else np.zeros(LABELLING_BINS)
    sampled = np.bincount(labelled_bins[labelled_bins >= 0], minlength=LABELLING_BINS)
    weights = np.array([population[b] / sampled[b] if b >= 0 else 1.0 for b in labelled_bins])
    precision, recall, thresholds = precision_recall_curve(truth, scores, sample_weight=weights)
    # A pair not comparable in time scores 0: never a link, whatever the threshold.
    reaching = [i for i in range(len(thresholds)) if precision[i] >= settings.min_precision and thresholds[i] >= low]
    result: dict[str, Any] = {"pairs": len(labels), "same": int(truth.sum()), "min_precision": settings.min_precision,
                              "labelled_per_bin": sampled.tolist(), "candidates_per_bin": population.tolist(),
                              "curve": [{"threshold": round(float(t), 4), "precision": round(float(p), 4),
                                         "recall": round(float(r), 4)}
                                        for t, p, r in zip(thresholds, precision, recall)]}
    if not reaching:
        return result | {"threshold": None, "precision": None, "recall": None}
    chosen = reaching[0]
    return result | {"threshold": float(thresholds[chosen]), "precision": float(precision[chosen]),
                     "recall": float(recall[chosen])}


def fuzzy_links(candidates: Sequence[Candidate], threshold: float | None) -> tuple[dict[int, str], int]:
    """Candidates at or above the threshold, one bangumi record per anime (the most similar wins); and how
    many lost their anime to a more similar record."""
    if threshold is None:
        return {}, 0
    links: dict[int, str] = {}
    taken: set[str] = set()
    conflicts = 0
    for candidate in sorted(candidates, key=lambda c: (-c.similarity, c.bangumi_id)):
        if candidate.similarity < threshold:
            break
        if candidate.anime_id in taken:
            conflicts += 1
            continue
        links[candidate.bangumi_id] = candidate.anime_id
        taken.add(candidate.anime_id)
    return links, conflicts


LABELLING_BINS = 5


def labelling_sample(candidates: Sequence[Candidate], size: int, low: float, seed: int) -> list[Candidate]:
    """Seeded candidate pairs for a person to label, spread evenly over similarity bins so the threshold
    region is not drowned by the many unrelated low-similarity pairs."""
    rng = np.random.default_rng(seed)
    bins = similarity_bins(np.array([c.similarity for c in candidates]), low, LABELLING_BINS)
    chosen: list[int] = []
    for b in range(LABELLING_BINS):
        members = np.flatnonzero(bins == b)
        share = (size - len(chosen)) // (LABELLING_BINS - b)
        chosen += rng.choice(members, size=min(share, len(members)), replace=False).tolist()
    return [candidates[i] for i in sorted(chosen, key=lambda i: (candidates[i].similarity, candidates[i].bangumi_id))]


def enriched_links(enriched: Sequence[AnimeEntry], mal: Sequence[AnimeEntry]) -> dict[str, Any]:
    """Enriched records whose source URLs name a MyAnimeList anime that the season file holds."""
    mal_ids = {entry.id for entry in mal}
    linked, unmatched, without_url = {}, [], []
    for entry in enriched:
        mal_id = platform_ids(entry.sources).get("mal")
        if mal_id is None:
            without_url.append(entry.id)
        elif f"mal:{mal_id}" in mal_ids:
            linked[entry.id] = f"mal:{mal_id}"
        else:
            unmatched.append(entry.id)
    return {"records": len(enriched), "linked": len(linked), "not_in_season_file": len(unmatched),
            "without_mal_url": len(without_url), "id_differs": sorted(e for e, m in linked.items() if e != m),
            "unmatched_examples": unmatched[:10]}


def duplicates(keyed: Sequence[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
    """Records of one source sharing a normalised title and a start date: ``(id, title, start)`` in."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record_id, title, start in keyed:
        key = normalise_title(title)
        if key and start:
            groups[key, str(start)[:10]].append(record_id)
    return [{"title": title, "start": start, "ids": ids} for (title, start), ids in sorted(groups.items())
            if len(ids) > 1]


def link_report(sources: dict[str, Sequence[Any]], settings: LinkParams, seed: int
                ) -> tuple[dict[str, Any], list[Candidate]]:
    """Every link figure of the stage, and the candidate pairs to label."""
    mal, bangumi, enriched = sources["mal_seasons"], sources["bangumi"], sources["enriched"]
    titles = title_links(mal, bangumi, settings)
    labels = read_labels(settings.labelled)
    threshold = choose_threshold(labels, {e.id: e for e in mal}, {b.bangumi_id: b for b in bangumi},
                                 titles.candidates, settings)
    fuzzy, conflicts = fuzzy_links(titles.candidates, threshold["threshold"])
    linked = titles.linked() | fuzzy
    report = {
        "mal_bangumi": {"mal": len(mal), "bangumi": len(bangumi),
                        "exact": len(titles.exact), "exact_resolved_by_year": len(titles.by_year),
                        "ambiguous_titles": len(titles.ambiguous), "ambiguous_examples": titles.ambiguous[:10],
                        "fuzzy_candidates": len(titles.candidates), "fuzzy": len(fuzzy),
                        "fuzzy_conflicts": conflicts, "linked": len(linked),
                        "linked_share_of_bangumi": len(linked) / len(bangumi) if bangumi else 0.0,
                        "threshold": threshold},
        "enriched_mal": enriched_links(enriched, mal),
        "duplicates": {
            "mal_seasons": duplicates([(e.id, e.title, e.aired_dates.start) for e in mal]),
            "enriched": duplicates([(e.id, e.title, e.aired_dates.start) for e in enriched]),
            "bangumi": duplicates([(str(b.bangumi_id), b.title_japanese or b.title, b.aired_from) for b in bangumi]),
        },
    }
    return report, labelling_sample(titles.candidates, settings.labelling_sample, settings.min_candidate_similarity,
                                    seed)
