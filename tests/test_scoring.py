"""Scoring: ranx agrees with trec_eval; our bookkeeping around it (categories, tests, fidelity)."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
from ranx import Qrels, Run

from animelab.evaluation import scoring
from animelab.evaluation.report import mark, pareto_front
from animelab.gold.splits import GoldQuery


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


def design_of(categories: list[str], groups: list[str], excluded: tuple[str, ...] = ()) -> scoring.Design:
    queries = {f"q{i}": GoldQuery(f"q{i}", "", c, g, {}, []) for i, (c, g) in enumerate(zip(categories, groups))}
    return scoring.Design.of(list(queries), queries, list(excluded))


def test_category_and_macro_means():
    values = {"ndcg@10": np.array([1.0, 0.0, 0.5, 0.25, 0.9])}
    categories = ["x", "y", "x", "y", "filter"]
    design = design_of(categories, ["g1", "g2", "g3", "g4", "g5"], excluded=("filter",))
    means = scoring.means(values, design)
    assert means["x"]["ndcg@10"] == 0.75 and means["y"]["ndcg@10"] == 0.125
    # The macro average leaves out the filter category and weighs categories, not queries, equally.
    assert means["macro"]["ndcg@10"] == pytest.approx((0.75 + 0.125) / 2)
    assert means["all"]["ndcg@10"] == pytest.approx(np.mean(values["ndcg@10"]))
    assert design.ranking_ids([f"q{i}" for i in range(5)]) == ["q0", "q1", "q2", "q3"]


def test_script_subgroups_are_scored_beside_their_category_and_left_out_of_the_macro():
    texts = ["進撃の巨人", "Attack on Titan", "Shingeki no Kyojin", "魔法少女", "a romance anime"]
    categories = ["known_item", "known_item", "known_item", "cross_lingual", "facet"]
    queries = {f"q{i}": GoldQuery(f"q{i}", text, category, f"g{i}", {}, [])
               for i, (text, category) in enumerate(zip(texts, categories))}
    assert [q.script for q in queries.values()] == ["cjk", "latin", "latin", "cjk", "latin"]
    design = scoring.Design.of(list(queries), queries, [], ["known_item", "cross_lingual"])
    assert list(design.subgroups) == ["known_item/cjk", "known_item/latin", "cross_lingual/cjk"]
    values = {"ndcg@10": np.array([0.2, 1.0, 0.6, 0.4, 0.5])}
    means = scoring.means(values, design)
    assert means["known_item/cjk"]["ndcg@10"] == pytest.approx(0.2)
    assert means["known_item/latin"]["ndcg@10"] == pytest.approx(0.8)
    assert means["macro"]["ndcg@10"] == pytest.approx((0.6 + 0.4 + 0.5) / 3)


def phrased(values: np.ndarray, phrasings: int) -> np.ndarray:
    return np.repeat(values, phrasings)


def test_statistics_resample_and_pair_query_groups_not_phrasings():
    rng = np.random.default_rng(5)
    groups, phrasings = 60, 3
    categories = ["a"] * 30 + ["b"] * 30
    base = rng.random(groups)
    treated = np.clip(base + rng.normal(0.03, 0.2, groups), 0, 1)
    single = design_of(categories, [f"g{i}" for i in range(groups)])
    repeated = design_of(list(phrased(np.array(categories), phrasings)),
                         [f"g{i}" for i in range(groups) for _ in range(phrasings)])
    # Three identical phrasings per group carry one group's evidence: the same CI and the same p-value.
    assert repeated.bootstrap(phrased(base, phrasings), "macro", 500, seed=1) == pytest.approx(
        single.bootstrap(base, "macro", 500, seed=1))
    low, high = single.bootstrap(base, "macro", 500, seed=1)
    assert low < single.score(base, "macro") < high
    as_groups = scoring.compare({"m": phrased(base, 3)}, {"m": phrased(treated, 3)}, repeated, "macro", "m", "student", 1)
    as_queries = scoring.paired_test(phrased(base, 3), phrased(treated, 3), "student", 1)
    assert as_groups["groups"] == groups
    assert as_groups["p_value"] == pytest.approx(
        scoring.compare({"m": base}, {"m": treated}, single, "macro", "m", "student", 1)["p_value"])
    assert as_queries < as_groups["p_value"]  # treating phrasings as queries overstates the evidence
    assert as_groups["delta"] == pytest.approx(single.score(treated, "macro") - single.score(base, "macro"))


def test_a_category_of_one_query_group_is_a_constant_of_the_bootstrap():
    design = design_of(["a", "a", "a", "b"], ["g1", "g1", "g2", "h"])
    values = np.array([1.0, 0.5, 0.2, 0.4])
    assert design.bootstrap(values, "b", 200, seed=1) == (0.4, 0.4)
    low, high = design.bootstrap(values, "macro", 200, seed=1)
    # Category a's two groups score 0.75 and 0.2 (weighted 2:1); b adds 0.4 / 2 to every resample.
    assert low == pytest.approx(0.2 / 2 + 0.2) and high == pytest.approx(0.75 / 2 + 0.2)
    assert low < design.score(values, "macro") < high


def test_weighted_group_values_average_to_the_macro_score():
    rng = np.random.default_rng(2)
    categories = ["a"] * 10 + ["b"] * 4
    design = design_of(categories, ["g1", "g1", "g2", "g3", "g3", "g3", "g4", "g5", "g6", "g7", "h1", "h1", "h2", "h3"])
    values = rng.random(14)
    assert design.weighted_groups(values, "macro").mean() == pytest.approx(design.score(values, "macro"))
    assert design.weighted_groups(values, "b").mean() == pytest.approx(values[10:].mean())


def test_significance_finds_real_differences_only():
    rng = np.random.default_rng(3)
    base = {"ndcg@10": rng.random(200)}
    same = {"ndcg@10": base["ndcg@10"].copy()}
    better = {"ndcg@10": np.clip(base["ndcg@10"] + 0.2 + rng.normal(0, 0.05, 200), 0, 1)}
    noisy = {"ndcg@10": np.clip(base["ndcg@10"] + rng.normal(0, 0.05, 200), 0, 1)}
    design = design_of(["c"] * 200, [f"g{i // 2}" for i in range(200)])
    for stat_test in ("student", "fisher"):
        result = scoring.significance(base, {"same": same, "better": better, "noisy": noisy}, design, ["macro"],
                                      stat_test, alpha=0.05, correction="holm", seed=1)
        assert result["same"]["macro"]["ndcg@10"]["p_value"] == 1.0
        assert not result["same"]["macro"]["ndcg@10"]["significant"]
        assert result["better"]["macro"]["ndcg@10"]["significant"]
        assert result["better"]["macro"]["ndcg@10"]["delta"] > 0.15 and result["better"]["macro"]["ndcg@10"]["groups"] == 100
        assert result["better"]["macro"]["ndcg@10"]["effect_size"] > 1
        for name in ("same", "better", "noisy"):
            entry = result[name]["macro"]["ndcg@10"]
            assert entry["p_adjusted"] >= entry["p_value"]
    assert mark(result["better"]["macro"]["ndcg@10"]) == "▲" and mark(result["same"]["macro"]["ndcg@10"]) == "="
    pairs = scoring.pairwise({"base": base, "better": better, "noisy": noisy}, design, "ndcg@10", "student", 0.05,
                             "holm", 1)
    assert [(t["a"], t["b"]) for t in pairs] == [("base", "better"), ("base", "noisy"), ("better", "noisy")]
    assert pairs[0]["significant"] and pairs[2]["significant"] and pairs[2]["delta"] < 0


def test_hub_rate_is_the_share_of_lists_holding_the_commonest_anime():
    run = Run({"q1": {"hub": 3.0, "a": 2.0}, "q2": {"hub": 1.0, "b": 2.0}, "q3": {"c": 1.0}, "q4": {"hub": 0.5}})
    ranked = scoring.rankings(run)
    assert ranked["q2"] == ["b", "hub"]
    assert scoring.hub_rate(ranked, ["q1", "q2", "q3", "q4"]) == pytest.approx(3 / 4)
    assert scoring.hub_rate(ranked, ["q1", "q2", "q3", "q4"], k=1) == pytest.approx(2 / 4)


def test_intrusion_and_fidelity():
    run = Run({"q1": {"a": 3.0, "neg": 2.0, "b": 1.0}, "q2": {"c": 1.0}})
    ranked = scoring.rankings(run)
    assert scoring.intrusion_rate(ranked, {"q1": {"neg", "other"}, "q2": {"x"}}, k=10) == pytest.approx(0.05)
    exact = Run({"q1": {"a": 3.0, "b": 2.0, "z": 1.0}, "q2": {"c": 1.0}})
    assert scoring.fidelity(ranked, scoring.rankings(exact), ["q1", "q2"], k=3) == pytest.approx((2 / 3 + 1) / 2)


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


def test_result_bias_compares_the_top_with_the_relevant_anime_per_category():
    qrels = Qrels({"q0": {"a": 2, "b": 1, "z": 0}, "q1": {"c": 2}, "q2": {"a": 1}})
    run = Run({"q0": {"c": 2.0, "d": 1.0}, "q1": {"a": 1.0}, "q2": {"unknown": 1.0}})
    years = {"a": 2000.0, "b": 2010.0, "c": 2020.0, "d": 2024.0, "z": 1990.0}
    design = design_of(["facet", "facet", "similar"], ["g0", "g1", "g2"])
    bias = scoring.result_bias(scoring.rankings(run), qrels.to_dict(), years, design, [scoring.MACRO, "facet"],
                               resamples=200, seed=0)
    # q0: top (2020 + 2024) / 2 = 2022 vs relevant (2000 + 2010) / 2 = 2005 (grade 0 is not relevant): +17;
    # q1: 2000 vs 2020: -20. q2's top has no known year: left out, so `similar` has no query and no macro.
    assert bias["facet"]["top"] == 2011.0 and bias["facet"]["relevant"] == 2012.5
    assert bias["facet"]["difference"] == pytest.approx(-1.5)
    low, high = bias["facet"]["ci"]
    assert -20 <= low <= -1.5 <= high <= 17
    assert scoring.MACRO not in bias


def test_a_run_keeps_its_order_and_is_written_as_ranx_writes_it(tmp_path):
    from animelab.evaluation.runs import Executed
    from animelab.gold.splits import GoldSplit, read_trec_rankings, write_trec_run

    queries = [GoldQuery("q1", "q1", "similar", "q1", {}, ["title_vector"], exclude=["s"]),
               GoldQuery("q2", "q2", "facet", "q2", {}, ["genre_vector"])]
    split = GoldSplit(queries, Qrels({"q1": {"a": 2}, "q2": {"b": 1}}))
    # q1's own source s is dropped before the cut at 2; q2 found nothing.
    ranked = split.kept([["s", "b", "a", "c"], []], limit=2)
    assert ranked == {"q1": ["b", "a"], "q2": []}
    found = {"q1": ["b", "a", "c"], "q3": ["x"]}
    executed = Executed(found, [0.1, 0.2], "rrf", found)
    assert scoring.rankings(executed.run) == executed.ranked
    ours, theirs = tmp_path / "ours.trec", tmp_path / "ranx.trec"
    write_trec_run(ours, executed.ranked, executed.name)
    Run(executed.run.to_dict(), name="rrf").save(str(theirs), kind="trec")
    assert ours.read_bytes() == theirs.read_bytes()
    assert Run.from_file(str(ours), kind="trec").to_dict() == executed.run.to_dict()
    assert read_trec_rankings(ours) == scoring.rankings(Run.from_file(str(ours), kind="trec")) == executed.ranked
