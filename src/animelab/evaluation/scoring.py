"""Scores from ranx: per-query metric values, their means overall and per category, and ranx's
paired significance tests of each variant against the baseline.

Only the bookkeeping is ours: grouping queries by category, the hard-negative intrusion rate,
ANN fidelity, effect sizes and the multiple-comparison correction (statsmodels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ranx import Qrels, Run, evaluate
from ranx.statistical_tests import fisher_randomization_test, paired_student_t_test
from statsmodels.stats.multitest import multipletests

from animelab.index.exact import recall_at_k

OVERALL = "all"
PerQuery = dict[str, np.ndarray]


def per_query(qrels: Qrels, run: Run, metrics: list[str]) -> PerQuery:
    """{metric: values}, one value per query in ``qrels.keys()`` order (a query with no results scores 0)."""
    values = evaluate(qrels, run, metrics, return_mean=False, make_comparable=True)
    return {metric: np.asarray(values[metric] if len(metrics) > 1 else values, dtype=float) for metric in metrics}


def group_positions(query_ids: list[str], categories: dict[str, str]) -> dict[str, np.ndarray]:
    """``all`` plus, per category, the positions of its queries in ``query_ids``."""
    groups: dict[str, list[int]] = {OVERALL: list(range(len(query_ids)))}
    for position, query_id in enumerate(query_ids):
        groups.setdefault(categories[query_id], []).append(position)
    return {group: np.asarray(positions) for group, positions in groups.items()}


def means(scores: PerQuery, groups: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {group: {metric: float(values[positions].mean()) for metric, values in scores.items()}
            for group, positions in groups.items()}


def intrusion_rate(run: Run, hard_negatives: dict[str, set[str]], k: int = 10) -> float:
    """Mean share of the top k that are judged-confusable non-relevant anime (queries with any)."""
    tops = top_ids(run, list(hard_negatives), k)
    shares = [sum(anime in negatives for anime in top) / k for top, negatives in zip(tops, hard_negatives.values())]
    return float(np.mean(shares)) if shares else float("nan")


def top_ids(run: Run, query_ids: list[str], k: int) -> list[list[str]]:
    results = run.to_dict()
    return [[a for a, _ in sorted(results.get(q, {}).items(), key=lambda item: -item[1])[:k]] for q in query_ids]


def fidelity(approximate: Run, exact: Run, query_ids: list[str], k: int = 10) -> float:
    """ANN fidelity: recall@k of the variant's results against the same search done exactly."""
    return recall_at_k(top_ids(approximate, query_ids, k), top_ids(exact, query_ids, k), k)


def paired_test(control: np.ndarray, treatment: np.ndarray, stat_test: str, seed: int) -> float:
    if np.array_equal(control, treatment):
        return 1.0
    if stat_test == "fisher":
        p_value, _ = fisher_randomization_test(control, treatment, n_permutations=1000, max_p=1.0, random_seed=seed)
    else:
        p_value, _ = paired_student_t_test(control, treatment, max_p=1.0)
    return float(p_value)


def significance(baseline: PerQuery, variants: dict[str, PerQuery], groups: dict[str, np.ndarray],
                 stat_test: str, alpha: float, correction: str, seed: int) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{variant: {group: {metric: {p_value, p_adjusted, significant, delta, effect_size}}}}.

    Two-sided paired tests (ranx's Student t or Fisher randomisation) on the same queries;
    p-values are adjusted over the variants within each (group, metric) family.
    """
    result: dict[str, dict[str, dict[str, dict[str, Any]]]] = {name: {} for name in variants}
    for group, positions in groups.items():
        for metric, base_values in baseline.items():
            control = base_values[positions]
            p_values = []
            for name, scores in variants.items():
                treatment = scores[metric][positions]
                diffs = treatment - control
                spread = diffs.std(ddof=1) if len(diffs) > 1 else 0.0
                p_values.append(paired_test(control, treatment, stat_test, seed))
                result[name].setdefault(group, {})[metric] = {
                    "p_value": p_values[-1],
                    "delta": float(diffs.mean()),
                    # Cohen's d for paired samples: the mean difference over the spread of the differences.
                    "effect_size": float(diffs.mean() / spread) if spread > 0 else 0.0,
                }
            reject, adjusted, _, _ = multipletests(np.nan_to_num(p_values, nan=1.0), alpha=alpha, method=correction)
            for name, significant, p_adjusted in zip(variants, reject, adjusted, strict=True):
                entry = result[name][group][metric]
                entry |= {"p_adjusted": float(p_adjusted), "significant": bool(significant) and entry["delta"] != 0}
    return result
