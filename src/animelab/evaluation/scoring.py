"""Scores from ranx: per-query metric values, their means (overall, per category, and the macro
average over the ranking categories), group-bootstrap intervals, and ranx's paired tests on query-group
values.

Only the bookkeeping is ours: grouping queries by category and query group, the resampling, the
hard-negative intrusion and hub rates, ANN fidelity, effect sizes and the multiple-comparison
correction (statsmodels).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ranx import Qrels, Run, evaluate
from scipy import stats
from ranx.statistical_tests import fisher_randomization_test, paired_student_t_test
from statsmodels.stats.multitest import multipletests

from animelab.errors import LabError
from animelab.index.exact import recall_at_k

if TYPE_CHECKING:
    from animelab.gold.splits import GoldSplit
    from animelab.params import EvaluateParams

OVERALL = "all"
MACRO = "macro"  # the mean over the ranking categories of each one's query mean
PerQuery = dict[str, np.ndarray]
# Each query's anime ids, best first. Read out of a ranx Run once: its numba dicts are slow to read from Python.
Rankings = dict[str, list[str]]


def per_query(qrels: Qrels, run: Run, metrics: list[str]) -> PerQuery:
    """{metric: values}, one value per query in ``qrels.keys()`` order (a query with no results scores 0)."""
    values = evaluate(qrels, run, metrics, return_mean=False, make_comparable=True)
    return {metric: np.asarray(values[metric] if len(metrics) > 1 else values, dtype=float) for metric in metrics}


def means(scores: PerQuery, design: "Design") -> dict[str, dict[str, float]]:
    """{score group: {metric: mean}}: ``macro``, ``all`` (every query), each category's query mean, then
    each script subgroup's (``known_item/cjk``)."""
    groups = [MACRO, OVERALL, *dict.fromkeys(design.categories.tolist()), *design.subgroups]
    return {group: {metric: design.score(values, group) for metric, values in scores.items()} for group in groups}


def rankings(run: Run) -> Rankings:
    return {query: [anime for anime, _ in sorted(scores.items(), key=lambda item: -item[1])]
            for query, scores in run.to_dict().items()}


def intrusion_rate(ranked: Rankings, hard_negatives: dict[str, set[str]], k: int = 10) -> float:
    """Mean share of the top k that are judged-confusable non-relevant anime (queries with any)."""
    tops = top_ids(ranked, list(hard_negatives), k)
    shares = [sum(anime in negatives for anime in top) / k for top, negatives in zip(tops, hard_negatives.values())]
    return float(np.mean(shares)) if shares else float("nan")


def top_ids(ranked: Rankings, query_ids: list[str], k: int) -> list[list[str]]:
    return [ranked.get(q, [])[:k] for q in query_ids]


def fidelity(approximate: Rankings, exact: Rankings, query_ids: list[str], k: int = 10) -> float:
    """ANN fidelity: recall@k of the variant's results against the same search done exactly."""
    return recall_at_k(top_ids(approximate, query_ids, k), top_ids(exact, query_ids, k), k)


def hub_rate(ranked: Rankings, query_ids: list[str], k: int = 10) -> float:
    """The share of top-k lists holding the anime found in most of them: near 1 when a few anime
    (say, the only ones with a rare vector) fill every query's list."""
    tops = [set(top) for top in top_ids(ranked, query_ids, k) if top]
    if not tops:
        return float("nan")
    counts = Counter(anime for top in tops for anime in top)
    return counts.most_common(1)[0][1] / len(tops)


def mean_attribute(rankings: list[list[str]], attribute: dict[str, float]) -> np.ndarray:
    """Per list, the mean ``attribute`` of the anime that have it; NaN where none has."""
    known = [[attribute[a] for a in ranking if a in attribute] for ranking in rankings]
    return np.array([np.mean(values) if values else np.nan for values in known])


def result_bias(ranked: Rankings, judged: dict[str, dict[str, int]], attribute: dict[str, float], design: Design,
                groups: list[str], resamples: int, seed: int, k: int = 10) -> dict[str, dict[str, Any]]:
    """Recency or popularity bias: per score group, the mean ``attribute`` (year, members) of the top ``k``
    and of the relevant anime (grade > 0), and their difference with a group-bootstrap 95% CI, over the
    queries where both are known (``judged``: the qrels as a dict, in the design's query order). Positive:
    the results are newer (more popular) than what is relevant."""
    query_ids = list(judged)
    top = mean_attribute(top_ids(ranked, query_ids, k), attribute)
    relevant = mean_attribute([[a for a, grade in judged[q].items() if grade > 0] for q in query_ids], attribute)
    known = ~np.isnan(top) & ~np.isnan(relevant)
    design = design.subset(known)
    top, relevant = top[known], relevant[known]
    result = {}
    for group in groups:
        if not all(np.any(design.categories == category) for category in design.members(group)):
            continue
        difference = top - relevant
        result[group] = {"top": design.score(top, group), "relevant": design.score(relevant, group),
                         "difference": design.score(difference, group),
                         "ci": list(design.bootstrap(difference, group, resamples, seed))}
    return result


def top_deployable(records: dict[str, Any], primary: str, count: int) -> list[str]:
    """The ``count`` best deployable search configurations on all test anime, by primary score (then name).
    The baseline's own search on other indexes (``on_baseline`` rows) is not another configuration: it is
    measured against exact search instead."""
    rows = [(name, r) for name, r in records.items()
            if r["class"] == "deployable" and not r["holdout"] and not r["settings"]["on_baseline"]]
    rows.sort(key=lambda item: (-item[1]["scores"][MACRO][primary], item[0]))
    return [name for name, _ in rows[:count]]


@dataclass(frozen=True)
class Design:
    """How the split's queries are grouped: per query (``qrels.keys()`` order) its category and its query
    group (phrasings of one need share qrels). The primary metric averages the ``ranking`` categories'
    query means; statistics resample and pair whole groups, never single phrasings."""

    categories: np.ndarray
    groups: np.ndarray
    ranking: tuple[str, ...]
    # Reported beside the categories, never averaged into the macro: "<category>/<script>" -> its queries.
    subgroups: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, query_ids: list[str], queries: dict[str, Any], excluded: list[str],
           by_script: list[str] = ()) -> "Design":
        """``by_script``: the categories also scored per query script (latin, cjk)."""
        categories = np.asarray([queries[q].category for q in query_ids])
        groups = np.asarray([f"{queries[q].category}/{queries[q].group}" for q in query_ids])
        scripts = np.asarray([queries[q].script for q in query_ids])
        ranking = tuple(sorted(set(categories.tolist()) - set(excluded)))
        if not ranking:
            raise LabError(f"no query of a ranking category to score ({len(query_ids)} queries, all in {list(excluded)} "
                           "or none): the gold split is empty or evaluate.query_understanding holds every category")
        subgroups = {f"{category}/{script}": (categories == category) & (scripts == script)
                     for category in by_script for script in sorted(set(scripts[categories == category].tolist()))}
        return cls(categories, groups, ranking, subgroups)

    @classmethod
    def of_split(cls, split: GoldSplit, settings: EvaluateParams) -> "Design":
        """A gold split's design, in its qrels' query order, with the evaluate settings' categories."""
        return cls.of(list(split.qrels.keys()), {q.id: q for q in split.queries}, settings.query_understanding,
                      settings.by_script)

    def subset(self, mask: np.ndarray) -> "Design":
        """The design of the masked queries only (script subgroups dropped)."""
        return Design(self.categories[mask], self.groups[mask], self.ranking)

    def ranking_ids(self, query_ids: list[str]) -> list[str]:
        """The ids (in ``qrels.keys()`` order) of the queries of the ranking categories."""
        return [q for q, category in zip(query_ids, self.categories, strict=True) if category in self.ranking]

    def members(self, group: str) -> list[str]:
        """The categories a score group averages: ``macro`` the ranking ones, a category itself."""
        return list(self.ranking) if group == MACRO else [group]

    def mask(self, group: str) -> np.ndarray:
        if group in self.subgroups:
            return self.subgroups[group]
        return np.ones(len(self.categories), bool) if group == OVERALL else self.categories == group

    def group_sums(self, values: np.ndarray, category: str) -> tuple[np.ndarray, np.ndarray]:
        """Per query group of ``category``: the sum of its phrasings' values and their number."""
        mask = self.categories == category
        names, inverse = np.unique(self.groups[mask], return_inverse=True)
        return np.bincount(inverse, weights=values[mask], minlength=len(names)), np.bincount(inverse)

    def score(self, values: np.ndarray, group: str) -> float:
        """``macro``: the mean over the ranking categories of each one's query mean; ``all`` or a category:
        the mean over its queries."""
        return float(np.mean([values[self.mask(category)].mean() for category in self.members(group)]))

    def weighted_groups(self, values: np.ndarray, group: str) -> np.ndarray:
        """One value per query group, scaled so that their plain mean is ``score(values, group)``: the
        paired test's unit. A group of n phrasings in a category of N queries, one of C categories,
        weighs n / (N C); scaled by the number of groups G, its value is G n / (N C) x its phrasings' mean."""
        parts = []
        members = self.members(group)
        for category in members:
            sums, counts = self.group_sums(values, category)
            parts.append(sums / counts.sum() / len(members))  # (n / N / C) x mean = sum / N / C
        weighted = np.concatenate(parts)
        return weighted * len(weighted)

    def bootstrap(self, values: np.ndarray, group: str, resamples: int, seed: int,
                  level: float = 0.95) -> tuple[float, float]:
        """Percentile CI of ``score(values, group)`` (scipy's bootstrap) resampling query groups with
        replacement within each category: one sample per category, rows (phrasing sum, phrasing count)
        per group, so every resample keeps the categories the macro average needs."""
        members = self.members(group)
        samples = [np.vstack(self.group_sums(values, category)) for category in members]
        # A category of one group resamples to itself: a constant term (scipy needs two observations).
        fixed = float(sum(s[0].sum() / s[1].sum() for s in samples if s.shape[1] < 2) / len(members))
        varying = [s for s in samples if s.shape[1] >= 2]
        if not varying:
            return fixed, fixed

        def macro(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
            return fixed + np.sum([s[0].sum(axis=axis) / s[1].sum(axis=axis) for s in resampled], axis=0) / len(members)

        result = stats.bootstrap(varying, macro, n_resamples=resamples, axis=-1, vectorized=True, paired=False,
                                 confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
        return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_test(control: np.ndarray, treatment: np.ndarray, stat_test: str, seed: int) -> float:
    if np.array_equal(control, treatment):
        return 1.0
    if stat_test == "fisher":
        permutations = 10_000
        p_value, _ = fisher_randomization_test(control, treatment, n_permutations=permutations, max_p=1.0,
                                               random_seed=seed)
        # ranx counts the permutations at least as extreme; the observed split is one of them too.
        return float((p_value * permutations + 1) / (permutations + 1))
    p_value, _ = paired_student_t_test(control, treatment, max_p=1.0)
    return float(p_value)


def compare(control: PerQuery, treatment: PerQuery, design: Design, score_group: str, metric: str,
            stat_test: str, seed: int) -> dict[str, Any]:
    """One paired test at query-group level: each group's phrasings averaged first, weighted as the score."""
    before = design.weighted_groups(control[metric], score_group)
    after = design.weighted_groups(treatment[metric], score_group)
    diffs = after - before
    spread = diffs.std(ddof=1) if len(diffs) > 1 else 0.0
    return {
        "p_value": paired_test(before, after, stat_test, seed),
        "delta": float(diffs.mean()),
        # Cohen's d for paired samples: the mean difference over the spread of the differences.
        "effect_size": float(diffs.mean() / spread) if spread > 0 else 0.0,
        "groups": len(diffs),
    }


def adjust(tests: list[dict[str, Any]], alpha: float, correction: str) -> None:
    """Adds ``p_adjusted`` and ``significant`` to each test of one family, in place."""
    if not tests:
        return
    reject, adjusted, _, _ = multipletests(np.nan_to_num([t["p_value"] for t in tests], nan=1.0), alpha=alpha,
                                           method=correction)
    for test, significant, p_adjusted in zip(tests, reject, adjusted, strict=True):
        test |= {"p_adjusted": float(p_adjusted), "significant": bool(significant) and test["delta"] != 0}


def significance(baseline: PerQuery, variants: dict[str, PerQuery], design: Design, score_groups: list[str],
                 stat_test: str, alpha: float, correction: str, seed: int) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{variant: {score group: {metric: {p_value, p_adjusted, significant, delta, effect_size, groups}}}}.

    Two-sided paired tests (ranx's Student t or Fisher randomisation) on query-group values; p-values
    are adjusted over the variants within each (score group, metric) family.
    """
    result: dict[str, dict[str, dict[str, dict[str, Any]]]] = {name: {} for name in variants}
    for group in score_groups:
        for metric in baseline:
            family = [compare(baseline, scores, design, group, metric, stat_test, seed) for scores in variants.values()]
            adjust(family, alpha, correction)
            for name, test in zip(variants, family, strict=True):
                result[name].setdefault(group, {})[metric] = test
    return result


def pairwise(values: dict[str, PerQuery], design: Design, metric: str, stat_test: str, alpha: float,
             correction: str, seed: int) -> list[dict[str, Any]]:
    """Every pair of the given rows on the primary (macro) score, adjusted as one family."""
    names = list(values)
    tests = [{"a": a, "b": b} | compare(values[a], values[b], design, MACRO, metric, stat_test, seed)
             for position, a in enumerate(names) for b in names[position + 1:]]
    adjust(tests, alpha, correction)
    return tests
