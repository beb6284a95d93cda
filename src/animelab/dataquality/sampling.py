"""Stratified samples of the corpus: the plan's path to catalogues too large to evaluate whole.

An anime's stratum is its primary genre, year bucket, popularity (members) quantile bucket and studio (the
``top_studios`` most frequent, else ``other``). Representativeness compares
each stratum variable's distribution in the sample with the corpus's (chi-square, total variation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import chisquare

from animelab.corpus.schema import AnimeEntry
from animelab.params import StrataParams

VARIABLES = ("genre", "year", "popularity", "studio")
UNKNOWN = "unknown"


def strata(entries: Sequence[AnimeEntry], settings: StrataParams) -> dict[str, list[str]]:
    """Per stratum variable, each anime's value (in ``entries`` order)."""
    studios = Counter(entry.studios[0] for entry in entries if entry.studios)
    top = {name for name, _ in studios.most_common(settings.top_studios)}
    members = np.array([entry.members for entry in entries if entry.members is not None], dtype=float)
    edges = np.quantile(members, np.linspace(0, 1, settings.popularity_buckets + 1)[1:-1]) if len(members) else []

    def year_bucket(entry: AnimeEntry) -> str:
        year = entry.start_year
        if year is None:
            return UNKNOWN
        start = year // settings.year_bucket * settings.year_bucket
        return f"{start}-{start + settings.year_bucket - 1}"

    return {
        "genre": [sorted(entry.genres)[0] if entry.genres else UNKNOWN for entry in entries],
        "year": [year_bucket(entry) for entry in entries],
        "popularity": [f"q{int(np.searchsorted(edges, entry.members, side='right')) + 1}"
                       if entry.members is not None else UNKNOWN for entry in entries],
        "studio": [(entry.studios[0] if entry.studios[0] in top else "other") if entry.studios else UNKNOWN
                   for entry in entries],
    }


def stratified_sample(entries: Sequence[AnimeEntry], fraction: float, settings: StrataParams, seed: int) -> list[str]:
    """The ids of a proportional stratified sample of ``fraction`` of ``entries``.

    The joint strata are mostly single anime, so rounding each one's quota would leave the sample random.
    Instead, implicit stratification: anime sorted by stratum (genre, then year, popularity, studio; seeded
    order within one), then every 1/fraction-th from a seeded start. Each genre gets its share within one
    anime, each year bucket within a genre likewise, and so on down the order."""
    values = strata(entries, settings)
    rng = np.random.default_rng(seed)
    tie_break = rng.random(len(entries))
    order = sorted(range(len(entries)), key=lambda i: (*(values[v][i] for v in VARIABLES), tie_break[i]))
    size = int(round(fraction * len(entries)))
    step = len(entries) / size if size else 0.0
    start = rng.random() * step
    return sorted(entries[order[int(start + k * step)]].id for k in range(size))


def representativeness(entries: Sequence[AnimeEntry], sample_ids: Sequence[str], settings: StrataParams
                       ) -> dict[str, dict[str, float]]:
    """Per stratum variable: total variation distance between the sample's and the corpus's distribution,
    and the chi-square goodness-of-fit of the sample's counts to the corpus's shares."""
    values = strata(entries, settings)
    sampled = set(sample_ids)
    in_sample = [entry.id in sampled for entry in entries]
    result = {}
    for variable in VARIABLES:
        corpus = Counter(values[variable])
        sample = Counter(value for value, kept in zip(values[variable], in_sample) if kept)
        levels = sorted(corpus)
        expected = np.array([corpus[level] for level in levels], dtype=float) / len(entries) * sum(in_sample)
        observed = np.array([sample[level] for level in levels], dtype=float)
        test = chisquare(observed, expected)
        result[variable] = {"levels": len(levels),
                            "total_variation": float(0.5 * np.abs(observed / observed.sum()
                                                                  - expected / expected.sum()).sum()),
                            "chi2": float(test.statistic), "p_value": float(test.pvalue)}
    return result


def sampling_report(entries: Sequence[AnimeEntry], fractions: Sequence[float], settings: StrataParams,
                    seed: int) -> dict[str, Any]:
    """For each fraction, a stratified sample's representativeness beside a simple random sample's of the
    same size (the baseline stratification must beat)."""
    rng = np.random.default_rng(seed)
    report = {}
    for fraction in fractions:
        stratified = stratified_sample(entries, fraction, settings, seed)
        simple = rng.choice([entry.id for entry in entries], size=len(stratified), replace=False).tolist()
        report[str(fraction)] = {"anime": len(stratified),
                                 "stratified": representativeness(entries, stratified, settings),
                                 "simple_random": representativeness(entries, simple, settings)}
    return report
