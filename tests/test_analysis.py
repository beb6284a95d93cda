"""The notebooks' readers, on evaluations logged and files written by the evaluate stage's own writers."""

from __future__ import annotations

import json

import pytest

from animelab.errors import LabError
from animelab.evaluation import analysis, scoring
from animelab.evaluation.runs import Executed
from animelab.gold.splits import write_trec_run
from animelab.gold.splits import load_gold
from animelab.evaluation.tracking import log_evaluation
from animelab.evaluation.runner import write_per_query_csv
from animelab.params import TrackingParams

METRICS = ["ndcg@10", "recall@10"]


def variant_record(name: str, axis: str, ndcg: dict[str, float], compared: bool) -> dict:
    ndcg = {"macro": sum(ndcg.values()) / len(ndcg)} | ndcg
    record = {"axis": axis, "class": "deployable", "model": "minilm", "description": f"{name} variant",
              "settings": {"search": {"fusion": axis}},
              "scores": {group: {"ndcg@10": value, "recall@10": value / 2} for group, value in ndcg.items()},
              "primary_ci": [ndcg["macro"] - 0.1, ndcg["macro"] + 0.1], "hub_rate_at_10": 0.05,
              "fidelity": {"fused": {"@10": 0.9, "@100": 0.95}}, "hard_negative_intrusion_at_10": 0.1, "recall_vs_exact_at_10": 0.9, "build_seconds": 1.0,
              "disk_mib": 2.0, "ram_mib": 3.0, "latency": {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "qps": 500.0}}
    if compared:
        record["vs_baseline"] = {group: {"ndcg@10": {"p_adjusted": 0.01 if group == "all" else 0.5,
                                                     "delta": value - 0.5}} for group, value in ndcg.items()}
    return record


def log(tracking: TrackingParams, variants: dict[str, dict]) -> str:
    results = {"split": "test", "baseline": "baseline", "skipped": {}, "variants": variants, "primary": "ndcg@10",
               "ranking_categories": ["facet"]}
    return log_evaluation(tracking, results, {"evaluate": {"alpha": 0.05, "split": "test"}, "queries": 4}, {})


def test_latest_evaluation_reads_back_the_last_logged_evaluation(tmp_path):
    tracking = TrackingParams(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="lab")
    log(tracking, {"baseline": variant_record("baseline", "baseline", {"all": 0.1}, compared=False)})
    logged = {"baseline": variant_record("baseline", "baseline", {"all": 0.5, "facet": 0.4, "studio": 0.6}, False),
              "rrf": variant_record("rrf", "fusion", {"all": 0.7, "facet": 0.2, "studio": 0.9}, True),
              "dbsf": variant_record("dbsf", "fusion", {"all": 0.3, "facet": 0.3, "studio": 0.3}, True)}
    run_id = log(tracking, logged)

    # The store's path relative to the project, as params.yaml names it.
    evaluation = analysis.latest_evaluation(TrackingParams(uri="sqlite:///mlflow.db", experiment="lab"), tmp_path)
    assert evaluation.run_id == run_id and evaluation.alpha == 0.05 and evaluation.tags["baseline"] == "baseline"
    variants = evaluation.variants
    assert list(variants.index) == ["baseline", "rrf", "dbsf"]
    assert variants.loc["rrf", "axis"] == "fusion" and variants.loc["rrf", "params.search.fusion"] == "fusion"
    table = analysis.metric_table(variants, METRICS, group="facet")
    expected = {name: [record["scores"]["facet"][m] for m in METRICS] for name, record in logged.items()}
    assert table.to_dict("index") == {name: dict(zip(METRICS, values)) for name, values in expected.items()}

    assert variants.loc["rrf", "class"] == "deployable"
    # The primary metric and its CI sort first in the MLflow runs table; the experiment opens on that table.
    primary = sorted(column for column in variants.columns if not column.startswith("params."))[:3]
    assert primary == ["0_primary.macro_ndcg_at_10", "0_primary.macro_ndcg_at_10.ci_high",
                       "0_primary.macro_ndcg_at_10.ci_low"]
    assert variants.loc["rrf", "0_primary.macro_ndcg_at_10"] == pytest.approx((0.7 + 0.2 + 0.9) / 3)
    assert evaluation.experiment_tags["mlflow.experimentKind"] == "custom_model_development"
    per_category = analysis.by_category(variants, "ndcg@10")
    assert list(per_category.columns) == ["macro", "all", "facet", "studio"]
    assert per_category.loc["dbsf"].tolist() == [0.3, 0.3, 0.3, 0.3]
    deltas = analysis.by_category(variants, "ndcg@10", "delta")
    assert deltas.loc["rrf"].tolist() == pytest.approx([0.1, 0.2, -0.3, 0.4])
    assert deltas.loc["baseline"].isna().all()
    assert (analysis.by_category(variants, "ndcg@10", "p_adjusted").loc["rrf"] < evaluation.alpha).tolist() == [
        False, True, False, False]
    with pytest.raises(LabError, match="no logged metric map_at_100"):
        analysis.by_category(variants, "map@100")


def test_a_missing_experiment_is_named(tmp_path):
    tracking = TrackingParams(uri="sqlite:///mlflow.db", experiment="never-logged")
    with pytest.raises(LabError, match="no MLflow experiment 'never-logged'"):
        analysis.latest_evaluation(tracking, tmp_path)


@pytest.fixture
def evaluated(tmp_path):
    """A gold set of three test queries and one variant's run, scored by ranx and written by the stage's writers."""
    gold = tmp_path / "gold"
    gold.mkdir()
    queries = [{"id": "facet-1", "category": "facet", "split": "test", "text": "space opera"},
               {"id": "facet-2", "category": "facet", "split": "test", "text": "cats"},
               {"id": "studio-1", "category": "studio", "split": "test", "text": "by Bones"},
               {"id": "studio-2", "category": "studio", "split": "train", "text": "by Sunrise"}]
    vectors = {"facet-1": ["genre_vector"], "facet-2": ["genre_vector"], "studio-1": ["staff_vector"], "studio-2": []}
    (gold / "queries.jsonl").write_text(
        "".join(json.dumps(q | {"group": q["id"], "filters": {}, "exclude": [], "vectors": vectors[q["id"]]}) + "\n"
                for q in queries))
    qrels = [("facet-1", "a", 2), ("facet-1", "b", 1), ("facet-1", "x", 0), ("facet-2", "c", 2), ("facet-2", "d", 2),
             ("studio-1", "e", 1), ("studio-2", "a", 2)]
    (gold / "qrels.trec").write_text("".join(f"{q} 0 {a} {g}\n" for q, a, g in qrels))
    (gold / "hard_negatives.jsonl").write_text(json.dumps({"query_id": "facet-1", "anime_ids": ["x"]}) + "\n")
    (gold / "anime_split.json").write_text(json.dumps({"splits": {anime: "test" for anime in "abcdex"}}))
    split = load_gold(gold, "test")
    # facet-1 finds its relevant anime first; facet-2 finds nothing relevant (a hard negative of facet-1 leads);
    # studio-1 finds its partly relevant anime second.
    ranked = {"facet-1": ["a", "x", "b"], "facet-2": ["x", "a", "b"], "studio-1": ["x", "e", "a"]}
    executed = Executed(ranked, [], "rrf", ranked)
    run = executed.run
    evaluate_dir = tmp_path / "evaluate"
    write_trec_run(evaluate_dir / "runs" / "rrf.trec", executed.ranked, "rrf")
    query_ids = list(split.qrels.keys())
    write_per_query_csv(evaluate_dir / "per_query" / "rrf.csv", query_ids,
                        scoring.per_query(split.qrels, run, METRICS), split.categories)
    titles = {anime: f"Title {anime.upper()}" for anime in "abcdex"}
    return gold, split, evaluate_dir, titles


def test_gold_queries_count_judgements_per_query(evaluated):
    gold, *_ = evaluated
    queries = analysis.gold_queries(gold)
    assert list(queries.index) == ["facet-1", "facet-2", "studio-1", "studio-2"]
    counts = queries[["grade_2", "grade_1", "grade_0", "hard_negatives", "text_chars", "n_vectors"]]
    assert counts.loc["facet-1"].tolist() == [1, 1, 1, 1, len("space opera"), 1]
    assert counts.loc["facet-2"].tolist() == [2, 0, 0, 0, len("cats"), 1]
    assert counts.loc["studio-2"].tolist() == [1, 0, 0, 0, len("by Sunrise"), 0]


def test_worst_queries_with_their_top_results(evaluated):
    _, split, evaluate_dir, titles = evaluated
    per_query = analysis.read_per_query(evaluate_dir, ["rrf"])
    assert set(per_query["variant"]) == {"rrf"} and len(per_query) == 3
    scores = per_query.set_index("query_id")["ndcg@10"]
    assert scores["facet-1"] > scores["studio-1"] > scores["facet-2"] == 0

    worst = analysis.worst_queries(per_query, "ndcg@10", 1)
    assert worst["query_id"].tolist() == ["facet-2", "studio-1"]
    top = analysis.top_results(analysis.read_run(evaluate_dir, "rrf"), split, titles, ["facet-1", "facet-2"], 2)
    assert top[["query_id", "rank", "anime_id"]].values.tolist() == [
        ["facet-1", 1, "a"], ["facet-1", 2, "x"], ["facet-2", 1, "x"], ["facet-2", 2, "a"]]
    assert top["grade"].tolist()[:2] == [2, 0] and top["grade"].isna().tolist()[2:] == [True, True]
    assert top["hard_negative"].tolist() == [False, True, False, False]

    failing = worst[worst["query_id"] == "facet-2"]
    table = analysis.failure_table(failing, split, top, titles, "ndcg@10")
    row = table.iloc[0]
    assert (row["query_id"], row["text"], row["ndcg@10"]) == ("facet-2", "cats", 0)
    assert row["top results"] == "1. Title X | 2. Title A"
    assert row["relevant"] == "Title C | Title D"
    flagged = analysis.failure_table(per_query[per_query["query_id"] == "facet-1"], split, top, titles, "ndcg@10")
    assert flagged.iloc[0]["top results"] == "1. Title A [grade 2] | 2. Title X [hard negative]"
    assert flagged.iloc[0]["relevant"] == "Title A | Title B"


def test_missing_files_are_named(evaluated, tmp_path):
    _, _, evaluate_dir, _ = evaluated
    with pytest.raises(LabError, match="no per-query scores for variant 'dbsf'"):
        analysis.read_per_query(evaluate_dir, ["rrf", "dbsf"])
    with pytest.raises(LabError, match="no TREC run for variant 'dbsf'"):
        analysis.read_run(evaluate_dir, "dbsf")


def test_relative_sqlite_uris_resolve_against_the_project(tmp_path):
    assert analysis.resolve_tracking_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert analysis.resolve_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert analysis.resolve_tracking_uri("http://mlflow.team:5000", tmp_path) == "http://mlflow.team:5000"
