"""Scoring: ranx agrees with trec_eval; our bookkeeping around it (categories, tests, fidelity)."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
from ranx import Qrels, Run

from animelab.evaluation import scoring
from animelab.evaluation.report import mark, pareto_front


def graded_collection(seed: int = 11, queries: int = 40, docs: int = 300):
    """Graded qrels (0/1/2, some queries with many relevant) and a noisy run ranking 150 docs each."""
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(queries):
        judged = rng.choice(docs, size=rng.integers(5, 120), replace=False)
        qrels[f"q{q}"] = {f"d{d}": int(rng.choice([0, 1, 2], p=[0.3, 0.4, 0.3])) for d in judged}
        if not any(qrels[f"q{q}"].values()):
            qrels[f"q{q}"][f"d{judged[0]}"] = 2
        retrieved = rng.choice(docs, size=150, replace=False)
        run[f"q{q}"] = {f"d{d}": float(150 - rank) + float(rng.random()) * 0.5 for rank, d in enumerate(retrieved)}
    return qrels, run


# ranx metric -> trec_eval measure (mrr@10 is trec_eval's recip_rank on the run cut at 10).
PAIRS = {"precision@5": "P_5", "precision@10": "P_10", "recall@10": "recall_10", "recall@100": "recall_100",
         "ndcg@10": "ndcg_cut_10", "map@100": "map_cut_100", "mrr@10": "recip_rank"}


def test_ranx_agrees_with_trec_eval_on_every_reported_metric():
    qrels, run = graded_collection()
    top10 = {q: dict(sorted(docs.items(), key=lambda item: -item[1])[:10]) for q, docs in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"P", "recall", "ndcg_cut", "map_cut"})
    reference = evaluator.evaluate(run)
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    ours = scoring.per_query(Qrels(qrels), Run(run), list(PAIRS))
    query_ids = list(Qrels(qrels).keys())
    for metric, measure in PAIRS.items():
        source = reciprocal if metric == "mrr@10" else reference
        expected = np.array([source[q][measure] for q in query_ids])
        assert ours[metric] == pytest.approx(expected, abs=1e-6), metric


def test_per_query_values_follow_the_qrels_order():
    qrels, run = graded_collection(queries=12)
    values = scoring.per_query(Qrels(qrels), Run(run), ["ndcg@10"])["ndcg@10"]
    for position, query_id in enumerate(Qrels(qrels).keys()):
        alone = scoring.per_query(Qrels({query_id: qrels[query_id]}), Run({query_id: run[query_id]}), ["ndcg@10"])
        assert alone["ndcg@10"][0] == pytest.approx(values[position])


def test_category_means_are_means_of_their_queries():
    values = {"ndcg@10": np.array([1.0, 0.0, 0.5, 0.25])}
    groups = scoring.group_positions(["a", "b", "c", "d"], {"a": "x", "b": "y", "c": "x", "d": "y"})
    assert scoring.means(values, groups) == {"all": {"ndcg@10": 0.4375}, "x": {"ndcg@10": 0.75},
                                             "y": {"ndcg@10": 0.125}}


def test_significance_finds_real_differences_only():
    rng = np.random.default_rng(3)
    base = {"ndcg@10": rng.random(200)}
    same = {"ndcg@10": base["ndcg@10"].copy()}
    better = {"ndcg@10": np.clip(base["ndcg@10"] + 0.2 + rng.normal(0, 0.05, 200), 0, 1)}
    noisy = {"ndcg@10": np.clip(base["ndcg@10"] + rng.normal(0, 0.05, 200), 0, 1)}
    groups = scoring.group_positions([f"q{i}" for i in range(200)], {f"q{i}": "c" for i in range(200)})
    for stat_test in ("student", "fisher"):
        result = scoring.significance(base, {"same": same, "better": better, "noisy": noisy}, groups,
                                      stat_test, alpha=0.05, correction="holm", seed=1)
        assert result["same"]["all"]["ndcg@10"]["p_value"] == 1.0
        assert not result["same"]["all"]["ndcg@10"]["significant"]
        assert result["better"]["all"]["ndcg@10"]["significant"] and result["better"]["all"]["ndcg@10"]["delta"] > 0.15
        assert result["better"]["all"]["ndcg@10"]["effect_size"] > 1
        for name in ("same", "better", "noisy"):
            entry = result[name]["all"]["ndcg@10"]
            assert entry["p_adjusted"] >= entry["p_value"]
    assert mark(result["better"]["all"]["ndcg@10"]) == "▲" and mark(result["same"]["all"]["ndcg@10"]) == "="


def test_intrusion_and_fidelity():
    run = Run({"q1": {"a": 3.0, "neg": 2.0, "b": 1.0}, "q2": {"c": 1.0}})
    assert scoring.intrusion_rate(run, {"q1": {"neg", "other"}, "q2": {"x"}}, k=10) == pytest.approx(0.05)
    exact = Run({"q1": {"a": 3.0, "b": 2.0, "z": 1.0}, "q2": {"c": 1.0}})
    assert scoring.fidelity(run, exact, ["q1", "q2"], k=3) == pytest.approx((2 / 3 + 1) / 2)


def test_pareto_front_keeps_only_undominated_variants():
    points = [(1.0, 0.90, "fast"), (2.0, 0.95, "mid"), (2.5, 0.93, "dominated"), (5.0, 1.0, "exact")]
    assert [name for _, _, name in pareto_front(points)] == ["fast", "mid", "exact"]


def test_the_held_out_view_judges_and_searches_test_anime_only():
    from animelab.evaluation.requests import build_requests
    from animelab.gold.splits import GoldQuery, GoldSplit
    from animelab.evaluation.experiments import SearchSettings

    queries = [GoldQuery(q, q, "facet", q, {}, ["genre_vector"]) for q in ("q1", "q2")]
    qrels = Qrels({"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"b": 2, "c": 1}})
    split = GoldSplit(queries, qrels, {"q1": {"c"}}, {"a": "test", "b": "train", "c": "test"})
    held_out = split.held_out("test")
    # q2 keeps its grade-1 test anime c; b (train) is gone from both queries.
    assert held_out.qrels.to_dict() == {"q1": {"a": 2, "c": 0}, "q2": {"c": 1}}
    assert held_out.restricted_to == {"a", "c"} and held_out.hard_negatives == {"q1": {"c"}}
    encoded = {"genre_vector": {"q1": [1.0, 0.0], "q2": [0.0, 1.0]}}
    request = build_requests(SearchSettings(vectors="hint"), held_out, encoded, ["genre_vector"], 10)[0]
    assert request.filter.anime_id_any == ["a", "c"]
    assert build_requests(SearchSettings(vectors="hint"), split, encoded, ["genre_vector"], 10)[0].filter is None
    split.anime_splits["c"] = "train"
    assert list(split.held_out("test").qrels.keys()) == ["q1"]
