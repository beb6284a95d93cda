"""Simulated users on the evaluated rows' pages: expected online metrics per row and click model, and
interleaved comparisons of pairs of rows with their verdicts and sensitivity.

Per query, an impression's outcome (b's results clicked more, a tie, fewer) has chances that team
draft gives exactly (every equally likely draft, the click model's exact click-difference distribution)
and probabilistic interleaving by simulation (``impressions_per_group`` per query group, each on a
random phrasing). A pair's online score is the macro mean of the per-query expected outcome, tested like
the offline scores (paired t on weighted query-group values, Holm over the compared pairs).

Sensitivity: traffic draws a ranking category uniformly, then one of its queries, so an impression's
outcome chances are the weighted mean of the queries'; the impressions a test needs is the least size
of ``sensitivity.sizes`` at which a two-sided sign test (wins against losses) rejects with chance at
least 1/2, computed exactly: the median over infinitely many seeded streams, with no repeated looks.
"""

from __future__ import annotations

import itertools
import logging
import zlib
from typing import Any

import numpy as np
from scipy import stats

from animelab.evaluation import scoring
from animelab.online.clicks import CLICK_MODELS, ClickModel, click_model, err
from animelab.online.interleaving import Interleaver, interleavers, outcome, team_drafts
from animelab.params import OnlineParams
from animelab.processes import in_processes

MAX_GRADE = 2
log = logging.getLogger(__name__)


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator per (seed, names): the same pair, method and user draw the same numbers in any order."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


def page_grades(page: list[str], judged: dict[str, int]) -> np.ndarray:
    return np.clip(np.asarray([judged.get(result, 0) for result in page], dtype=int), 0, MAX_GRADE)


def online_metrics(pages: list[list[str]], qrels: list[dict[str, int]], model: ClickModel) -> scoring.PerQuery:
    """Per query, the exact expectations under ``model``: clicks on rank 1 and on the page, the chance of
    no click (abandonment) and the reciprocal rank of the first click (0 without one)."""
    names = ("ctr@1", "ctr@page", "abandonment", "rr_first_click", "clicks")
    values = {name: np.zeros(len(pages)) for name in names}
    for position, (page, judged) in enumerate(zip(pages, qrels, strict=True)):
        if not page:
            values["abandonment"][position] = 1.0
            continue
        grades = page_grades(page, judged)
        first = model.first_click(grades)
        values["ctr@1"][position] = first[0]
        values["ctr@page"][position] = first.sum()
        values["abandonment"][position] = 1.0 - first.sum()
        values["rr_first_click"][position] = float(np.sum(first / np.arange(1, len(page) + 1)))
        values["clicks"][position] = model.click_chances(grades).sum()
    return values


def err_at_page(pages: list[list[str]], qrels: list[dict[str, int]]) -> np.ndarray:
    return np.asarray([err(page_grades(page, judged), MAX_GRADE) if page else 0.0
                       for page, judged in zip(pages, qrels, strict=True)])


def deployable_rows(records: dict[str, Any]) -> list[str]:
    """The rows a deployed system could serve, scored on the whole split (held-out rows are not)."""
    return [name for name, record in records.items() if record["class"] == "deployable" and not record["holdout"]]


def compared_pairs(records: dict[str, Any], baseline: str, primary: str, top: int) -> list[tuple[str, str]]:
    """The ``top`` best deployable rows pairwise, then the baseline against every other deployable row the
    evaluate stage tested against it."""
    best = scoring.top_deployable(records, primary, top)
    pairs = list(itertools.combinations(best, 2))
    seen = {frozenset(pair) for pair in pairs}
    pairs += [(baseline, name) for name in deployable_rows(records)
              if records[name].get("compared_to") == baseline and frozenset((baseline, name)) not in seen]
    return pairs


def offline_verdict(results: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """The evaluate stage's test of ``b`` against ``a`` on the primary macro score (delta = b - a): their
    pairwise test, else ``b``'s test against the baseline ``a`` (``compared_pairs`` puts the baseline first)."""
    for test in results["pairwise"]:
        if {test["a"], test["b"]} == {a, b}:
            sign = 1 if test["b"] == b else -1
            return {"delta": sign * test["delta"], "significant": test["significant"], "family": "pairwise"}
    test = results["variants"][b]["vs_baseline"][scoring.MACRO][results["primary"]]
    return {"delta": test["delta"], "significant": test["significant"], "family": "vs_baseline"}


def group_members(design: scoring.Design) -> list[np.ndarray]:
    """Per query group of the ranking categories, its queries' positions."""
    ranking = np.isin(design.categories, design.ranking)
    return [np.flatnonzero(ranking & (design.groups == group))
            for group in dict.fromkeys(design.groups[ranking].tolist())]


def team_draft_chances(page_a: list[str], page_b: list[str], judged: dict[str, int], models: list[ClickModel],
                       size: int) -> np.ndarray:
    """Per model, the exact (b wins, tie, a wins) of one team-draft impression: the mean over every
    equally likely draft (enumerated once for all models)."""
    drafts = team_drafts(page_a, page_b, size)
    if not drafts[0][0]:
        return np.tile([0.0, 1.0, 0.0], (len(models), 1))
    width = max(len(page) for page, _ in drafts)
    grades = np.zeros((len(drafts), width), dtype=int)
    credits = np.zeros((len(drafts), width), dtype=int)  # 0: a padding slot nobody clicks (grade 0, no credit)
    for row, (page, teams) in enumerate(drafts):
        grades[row, :len(page)] = page_grades(page, judged)
        credits[row, :len(page)] = np.where(teams == 1, 1, -1)
    return np.stack([model.outcome_chances(grades, credits).mean(axis=0) for model in models])


def outcome_shares(outcomes: np.ndarray) -> np.ndarray:
    return np.array([np.mean(outcomes == 1), np.mean(outcomes == 0), np.mean(outcomes == -1)])


def sampled_chances(pages_a: list[list[str]], pages_b: list[list[str]], qrels: list[dict[str, int]],
                    groups: list[np.ndarray], interleave: Interleaver, model: ClickModel, size: int, per_group: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Per query, the observed shares of (b wins, tie, a wins) over ``per_group`` simulated impressions
    per group, each on a random phrasing; a phrasing never drawn takes its group's shares."""
    chances = np.zeros((len(qrels), 3))
    for members in groups:
        drawn = members[rng.integers(len(members), size=per_group)]
        outcomes = np.zeros(per_group, dtype=int)
        for i, query in enumerate(drawn):
            page, credits = interleave(pages_a[query], pages_b[query], size, rng)
            outcomes[i] = outcome(credits, model.sample(page_grades(page, qrels[query]), rng))
        chances[members] = outcome_shares(outcomes)
        for query in np.unique(drawn):
            chances[query] = outcome_shares(outcomes[drawn == query])
    return chances


def impression_weights(design: scoring.Design) -> np.ndarray:
    """Each query's chance of being the next impression: a ranking category uniformly, then a query of it."""
    weights = np.zeros(len(design.categories))
    for category in design.ranking:
        mask = design.categories == category
        weights[mask] = 1.0 / mask.sum() / len(design.ranking)
    return weights


def rejection_chance(wins: float, losses: float, size: int, alpha: float) -> float:
    """The chance that ``size`` independent impressions, each won by b with chance ``wins`` and by a with
    chance ``losses``, make a two-sided sign test (ties dropped) reject at ``alpha``: exact, summed over
    the number of untied impressions."""
    decided = np.arange(size + 1)
    # The largest count of the rarer side that still rejects, per number of untied impressions.
    critical = stats.binom.ppf(alpha / 2, np.maximum(decided, 1), 0.5) - 1
    share = wins / (wins + losses) if wins + losses > 0 else 0.5
    reject = np.where(critical >= 0, stats.binom.cdf(critical, decided, share)
                      + stats.binom.sf(decided - critical - 1, decided, share), 0.0)
    return float(np.sum(stats.binom.pmf(decided, size, wins + losses) * reject))


def impressions_to_significance(wins: float, losses: float, sizes: list[int], alpha: float) -> int | None:
    """The least size at which a traffic stream rejects with chance >= 1/2 (the median stream over
    infinitely many seeds), or None within ``sizes``."""
    for size in sizes:
        if rejection_chance(wins, losses, size, alpha) >= 0.5:
            return size
    return None


def verdict_class(delta: float, significant: bool) -> int:
    return int(np.sign(delta)) if significant else 0


def pair_test(chances: np.ndarray, weights: np.ndarray, design: scoring.Design) -> dict[str, Any]:
    """The online verdict of one pair from its per-query outcome chances (rows: b wins, tie, a wins)."""
    credit = chances[:, 0] - chances[:, 2]
    weighted = design.weighted_groups(credit, scoring.MACRO)
    wins, ties, losses = weights @ chances
    return {"p_value": float(stats.ttest_1samp(weighted, 0.0).pvalue) if np.any(weighted) else 1.0,
            "delta": design.score(credit, scoring.MACRO),
            "wins_b": float(wins), "ties": float(ties), "wins_a": float(losses)}


def pair_chances(params: OnlineParams, method: str, a: str, b: str, pages_a: list[list[str]],
                 pages_b: list[list[str]], qrels: list[dict[str, int]], design: scoring.Design,
                 seed: int) -> dict[str, np.ndarray]:
    """Per user, each query's (b wins, tie, a wins) chances of one impression of rows ``a`` and ``b``
    interleaved by ``method``: exact for team draft, simulated otherwise."""
    settings = params.interleaving
    models = {user: click_model(settings.click_model, behaviour, params.pbm_eta)
              for user, behaviour in params.users.items()}
    if method == "team_draft":  # the drafts of a query are enumerated once for every user
        by_user = {user: np.zeros((len(qrels), 3)) for user in models}
        for q in np.flatnonzero(np.isin(design.categories, design.ranking)):
            exact = team_draft_chances(pages_a[q], pages_b[q], qrels[q], list(models.values()), params.page_size)
            for user, row in zip(models, exact, strict=True):
                by_user[user][q] = row
        return by_user
    interleave = interleavers(settings.tau)[method]
    return {user: sampled_chances(pages_a, pages_b, qrels, group_members(design), interleave, model,
                                  params.page_size, settings.impressions_per_group, rng_for(seed, method, user, a, b))
            for user, model in models.items()}


def compare_pairs(params: OnlineParams, results: dict[str, Any], pages: dict[str, list[list[str]]],
                  qrels: list[dict[str, int]], design: scoring.Design, seed: int, correction: str,
                  workers: int = 1) -> dict[str, Any]:
    """Every compared pair under every interleaving method and user: the per-query outcome chances, the
    verdict over query groups, the agreement with the offline verdicts and the impressions to significance."""
    settings = params.interleaving
    pairs = compared_pairs(results["variants"], results["baseline"], results["primary"], settings.top)
    weights = impression_weights(design)
    methods = [name for name in interleavers(settings.tau) if name in settings.methods]
    families: dict[tuple[str, str], list[dict[str, Any]]] = {(m, u): [] for m in methods for u in params.users}
    compared = [(method, a, b) for method in methods for a, b in pairs]
    log.info("interleaving: %d pairs x %d methods over %d worker(s)", len(pairs), len(methods), workers)
    # Every task draws from its own seeded stream (rng_for): the results do not depend on how tasks are split.
    chances_by_pair = in_processes(pair_chances, [(params, method, a, b, pages[a], pages[b], qrels, design, seed)
                                                  for method, a, b in compared], workers)
    for (method, a, b), by_user in zip(compared, chances_by_pair, strict=True):
        for user, chances in by_user.items():
            families[method, user].append({"a": a, "b": b, "method": method, "user": user}
                                          | pair_test(chances, weights, design)
                                          | {"offline": offline_verdict(results, a, b)})
    comparisons: list[dict[str, Any]] = []
    for (method, _), family in families.items():
        scoring.adjust(family, params.alpha, correction)
        for test in family:
            # Sampled chances of two equal rankings differ by chance: a size is only read off a real difference.
            test["resolved"] = method == "team_draft" or test["significant"]
            test["median_impressions"] = impressions_to_significance(
                test["wins_b"], test["wins_a"], params.sensitivity.sizes, params.alpha) if test["resolved"] else None
        comparisons.extend(family)
    return {"pairs": [list(pair) for pair in pairs], "comparisons": comparisons,
            "agreement": agreement(comparisons, list(methods), params.users)}


def agreement(comparisons: list[dict[str, Any]], methods: list[str], users: dict[str, Any]) -> list[dict[str, Any]]:
    """Per method and user: how often interleaving's verdict matches the offline one."""
    rows = []
    for method, user in itertools.product(methods, users):
        tests = [t for t in comparisons if t["method"] == method and t["user"] == user]
        decided = [t for t in tests if t["offline"]["significant"]]
        same_side = [t for t in decided if np.sign(t["delta"]) == np.sign(t["offline"]["delta"])]
        confirmed = [t for t in same_side if t["significant"]]
        same_class = [t for t in tests if verdict_class(t["delta"], t["significant"])
                      == verdict_class(t["offline"]["delta"], t["offline"]["significant"])]
        rows.append({"method": method, "user": user, "pairs": len(tests), "offline_significant": len(decided),
                     "direction_agreement": len(same_side) / len(decided) if decided else None,
                     "significant_agreement": len(confirmed) / len(decided) if decided else None,
                     "verdict_agreement": len(same_class) / len(tests) if tests else None})
    return rows


def row_scores(params: OnlineParams, row_pages: list[list[str]], qrels: list[dict[str, int]],
               design: scoring.Design) -> dict[str, Any]:
    """{click model: {user: {metric: macro mean}}, "err@page": macro mean} of one row's pages."""
    scores: dict[str, Any] = {"err@page": design.score(err_at_page(row_pages, qrels), scoring.MACRO)}
    for kind in CLICK_MODELS:
        scores[kind] = {user: {metric: design.score(values, scoring.MACRO) for metric, values in
                               online_metrics(row_pages, qrels, click_model(kind, behaviour, params.pbm_eta)).items()}
                        for user, behaviour in params.users.items()}
    return scores


def row_metrics(params: OnlineParams, pages: dict[str, list[list[str]]], qrels: list[dict[str, int]],
                design: scoring.Design, workers: int = 1) -> dict[str, Any]:
    """{row: its ``row_scores``}."""
    return dict(zip(pages, in_processes(row_scores, [(params, row_pages, qrels, design) for row_pages in pages.values()],
                                        workers), strict=True))


def evaluate_online(params: OnlineParams, results: dict[str, Any], rankings: dict[str, scoring.Rankings],
                    qrels: dict[str, dict[str, int]], design: scoring.Design, seed: int,
                    workers: int = 1) -> dict[str, Any]:
    """The deployable rows' pages (``rankings``: the evaluate stage's runs, ``qrels`` in the design's
    query order), their expected online metrics and the interleaved comparisons, over ``workers`` processes."""
    query_ids = list(qrels)
    judged = [qrels[q] for q in query_ids]
    pages = {name: scoring.top_ids(ranked, query_ids, params.page_size) for name, ranked in rankings.items()}
    return {"split": results["split"], "ranking_categories": results["ranking_categories"],
            "correction": results["correction"], "rows": row_metrics(params, pages, judged, design, workers)} \
        | compare_pairs(params, results, pages, judged, design, seed, results["correction"], workers)
