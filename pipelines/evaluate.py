"""DVC stage `evaluate`: every variant on the gold split -> runs, scores, significance, MLflow."""

from __future__ import annotations

import logging

from animelab.corpus.readers import read_corpus
from animelab.errors import run_stage, stage_args
from animelab.evaluation.tracking import log_evaluation
from animelab.evaluation.runner import evaluate_all
from animelab.evaluation.experiments import load_experiments
from animelab.gold.splits import load_gold
from animelab.io import atomic_path, write_json
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "embeddings", "gold", "cache", "sparse", "out", "metrics",
                      cache="built variant indexes and other-model embeddings, reused across runs",
                      sparse="the sparse stage's vector sets")

    params = load_params(args.params)
    experiments = load_experiments(params.evaluate.experiments)
    split = load_gold(args.gold, params.evaluate.split)
    with atomic_path(args.out) as staging:
        results = evaluate_all(params, experiments, split, read_corpus(args.corpus), args.embeddings, args.cache,
                               staging, args.sparse)
        write_json(staging / "results.json", results)
    write_json(args.metrics, {
        name: {metric: round(record["scores"]["all"][metric], 4) for metric in params.evaluate.headline}
        | {"recall_vs_exact@10": round(record["recall_vs_exact_at_10"], 4),
           "p95_ms": record["latency"]["p95_ms"]}
        for name, record in results["variants"].items()
    })
    artifacts = {name: [args.out / "runs" / f"{name}.trec", args.out / "per_query" / f"{name}.csv"]
                 for name in results["variants"]}
    run_id = log_evaluation(params.tracking, results,
                            {"evaluate": params.evaluate.model_dump(mode="json"), "seed": params.seed,
                             "queries": len(split.queries)}, artifacts)
    logging.info("evaluated %d variants on %d %s queries; MLflow run %s", len(results["variants"]),
                 len(split.queries), params.evaluate.split, run_id)


if __name__ == "__main__":
    run_stage(main)
