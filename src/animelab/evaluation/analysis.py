"""Readers for the analysis notebooks: what the evaluate stage wrote, as pandas DataFrames.

Variant tables come from MLflow (the latest evaluation's parent run and its nested variant runs);
per-query scores, runs and judgements come from the files next to them (``data/evaluate/``,
``gold/``), so a notebook shows a failing query with its top results and what it should have found.
Nothing here computes a metric: the values are those ranx produced in the evaluate stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ranx import Run

from animelab.corpus.readers import read_corpus
from animelab.errors import LabError
from animelab.gold.splits import GoldSplit, read_qrels
from animelab.evaluation.scoring import MACRO, OVERALL, rankings, top_ids
from animelab.tracking import FINISHED, metric_key
from animelab.io import read_jsonl
from animelab.params import TrackingParams

SQLITE = "sqlite:///"
VARIANT_TAGS = ("axis", "class", "model", "description")


def resolve_tracking_uri(uri: str, project_dir: Path) -> str:
    """A relative sqlite path is relative to the project directory, where DVC ran the evaluate stage."""
    if uri.startswith(SQLITE) and not Path(uri[len(SQLITE):]).is_absolute():
        return SQLITE + str((Path(project_dir) / uri[len(SQLITE):]).resolve())
    return uri


@dataclass
class TrackedEvaluation:
    """One evaluation as MLflow holds it: the parent run and one row per variant (in logging order).

    ``variants`` columns: the variant tags (axis, model, description), every metric as logged
    (``ndcg_at_10.all``, ``p_adjusted.ndcg_at_10.facet``, ``latency.p95_ms``, ...) and the
    variant settings as ``params.<key>``.
    """

    run_id: str
    params: dict[str, str]
    tags: dict[str, str]
    variants: pd.DataFrame
    experiment_tags: dict[str, str]

    @property
    def alpha(self) -> float:
        return float(self.params["evaluate.alpha"])


def latest_evaluation(tracking: TrackingParams, project_dir: Path) -> TrackedEvaluation:
    """The most recent evaluation logged to ``tracking.experiment``, read back from MLflow."""
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking.uri, project_dir)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tracking.experiment)
    if experiment is None:
        raise LabError(f"tracking.experiment: no MLflow experiment {tracking.experiment!r} at {uri} "
                       "(run the evaluate stage first)")
    # Only FINISHED evaluations: a killed one stays RUNNING (or FAILED once a rerun marks it).
    parents = client.search_runs([experiment.experiment_id],
                                 filter_string=f"tags.mlflow.runName LIKE 'evaluate-%' AND {FINISHED}",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not parents:
        raise LabError(f"no evaluation run in MLflow experiment {tracking.experiment!r} at {uri}")
    parent = parents[0]
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                  order_by=["attributes.start_time ASC"], max_results=10_000)
    rows = {child.info.run_name: {tag: child.data.tags.get(tag) for tag in VARIANT_TAGS}
            | child.data.metrics | {f"params.{key}": value for key, value in child.data.params.items()}
            for child in children}
    variants = pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")
    return TrackedEvaluation(parent.info.run_id, dict(parent.data.params), dict(parent.data.tags), variants,
                             dict(experiment.tags))


def metric_table(variants: pd.DataFrame, metrics: list[str], group: str = MACRO) -> pd.DataFrame:
    """variants x metrics (named as in params.yaml, e.g. ``ndcg@10``) for one query group."""
    return pd.DataFrame({metric: variants[metric_key(metric, group)] for metric in metrics})


def by_category(variants: pd.DataFrame, metric: str, prefix: str | None = None) -> pd.DataFrame:
    """variants x query groups (``macro`` and ``all`` first) of one metric, or of its ``delta`` / ``p_adjusted`` against
    the baseline (NaN for the baseline itself, which is not compared with itself)."""
    head = metric_key(*([prefix] if prefix else []), metric) + "."
    columns = [column for column in variants.columns if column.startswith(head)]
    if not columns:
        raise LabError(f"no logged metric {head}* (is {metric!r} in evaluate.metrics?)")
    table = variants[columns].rename(columns=lambda column: column[len(head):])
    first = [group for group in (MACRO, OVERALL) if group in table.columns]
    return table[[*first, *(group for group in table.columns if group not in first)]]


def read_per_query(evaluate_dir: Path, variants: list[str]) -> pd.DataFrame:
    """Long table of per-query scores: one row per (variant, query), from ``per_query/<variant>.csv``."""
    frames = []
    for variant in variants:
        path = Path(evaluate_dir) / "per_query" / f"{variant}.csv"
        if not path.exists():
            raise LabError(f"{path}: no per-query scores for variant {variant!r}")
        frames.append(pd.read_csv(path).assign(variant=variant))
    return pd.concat(frames, ignore_index=True)


def read_run(evaluate_dir: Path, variant: str) -> Run:
    path = Path(evaluate_dir) / "runs" / f"{variant}.trec"
    if not path.exists():
        raise LabError(f"{path}: no TREC run for variant {variant!r}")
    return Run.from_file(str(path), kind="trec")


def gold_queries(gold_dir: Path) -> pd.DataFrame:
    """Every gold query (all splits) with its judgement counts: ``grade_2`` relevant, ``grade_1`` partly
    relevant, ``grade_0`` judged non-relevant, ``hard_negatives`` confusable anime, ``text_chars`` and
    ``n_vectors`` (the query's vector hint)."""
    gold_dir = Path(gold_dir)
    queries = pd.DataFrame(list(read_jsonl(gold_dir / "queries.jsonl"))).set_index("id")
    judged = read_qrels(gold_dir / "qrels.trec")
    negatives = {row["query_id"]: len(row["anime_ids"]) for row in read_jsonl(gold_dir / "hard_negatives.jsonl")}
    counts = {f"grade_{grade}": [sum(g == grade for g in judged.get(query_id, {}).values())
                                 for query_id in queries.index] for grade in (2, 1, 0)}
    return queries.assign(**counts, hard_negatives=[negatives.get(query_id, 0) for query_id in queries.index],
                          text_chars=queries["text"].str.len(), n_vectors=queries["vectors"].str.len())


def corpus_titles(corpus_path: Path) -> dict[str, str]:
    return {entry.id: entry.title for entry in read_corpus(corpus_path)}


def worst_queries(per_query: pd.DataFrame, metric: str, n: int) -> pd.DataFrame:
    """The ``n`` lowest-scoring queries of each category (ties broken by query id), worst first."""
    ordered = per_query.sort_values([metric, "query_id"], kind="stable")
    return ordered.groupby("category", sort=True).head(n).sort_values(["category", metric, "query_id"])


def top_results(run: Run, split: GoldSplit, titles: dict[str, str], query_ids: list[str], k: int) -> pd.DataFrame:
    """Long table of each query's top ``k`` results: rank, anime, title, judged grade (<NA> if unjudged)
    and whether it is one of the query's hard negatives."""
    judged = split.qrels.to_dict()
    rows = [{"query_id": query_id, "rank": rank, "anime_id": anime_id, "title": titles.get(anime_id, anime_id),
             "grade": judged.get(query_id, {}).get(anime_id),
             "hard_negative": anime_id in split.hard_negatives.get(query_id, set())}
            for query_id, ranked in zip(query_ids, top_ids(rankings(run), query_ids, k), strict=True)
            for rank, anime_id in enumerate(ranked, 1)]
    return pd.DataFrame(rows, columns=["query_id", "rank", "anime_id", "title", "grade", "hard_negative"]).astype(
        {"grade": "Int64"})


def failure_table(failing: pd.DataFrame, split: GoldSplit, results: pd.DataFrame, titles: dict[str, str],
                  metric: str, show: int = 5) -> pd.DataFrame:
    """One readable row per failing query: its text, score, the top results (``[grade]`` when judged,
    ``[hard negative]`` when confusable) and up to ``show`` relevant anime it should have found (grade 2
    first, then by id)."""
    text = {query.id: query.text for query in split.queries}
    judged = split.qrels.to_dict()

    def shown(row: Any) -> str:
        mark = "hard negative" if row.hard_negative else ("" if pd.isna(row.grade) else f"grade {row.grade}")
        return f"{row.rank}. {row.title}" + (f" [{mark}]" if mark else "")

    listed = results.groupby("query_id")[["rank", "title", "grade", "hard_negative"]].apply(
        lambda ranked: " | ".join(shown(row) for row in ranked.itertuples()))

    def relevant(query_id: str) -> str:
        ranked = sorted(judged.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))
        return " | ".join(titles.get(anime, anime) for anime, grade in ranked[:show] if grade > 0)

    return pd.DataFrame({"query_id": failing["query_id"], "category": failing["category"], metric: failing[metric],
                         "text": failing["query_id"].map(text), "top results": failing["query_id"].map(listed),
                         "relevant": failing["query_id"].map(relevant)}).reset_index(drop=True)
