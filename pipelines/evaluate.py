"""DVC stage `evaluate`: every variant on the gold split -> runs, scores, significance, MLflow."""

from __future__ import annotations

import json
import logging

from animelab.corpus.readers import read_corpus
from animelab.stages import run_stage, stage_args
from animelab.evaluation.tracking import log_evaluation
from animelab.evaluation.runner import evaluate_all
from animelab.evaluation.experiments import load_experiments
from animelab.evaluation.scoring import MACRO
from animelab.gold.splits import gold_split, read_gold
from animelab.io import atomic_path, write_json
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "embeddings", "gold", "routes", "cache", "sparse", "out",
                      "metrics", cache="built variant indexes and other-model embeddings, reused across runs",
                      sparse="the sparse stage's vector sets", routes="the route stage's routes.json")

    params = load_params(args.params)
    experiments = load_experiments(params.evaluate.experiments)
    gold = read_gold(args.gold)
    split = gold_split(gold, params.evaluate.split)
    tuning = gold_split(gold, experiments.choose_on) if experiments.choose_on else None
    bank = gold_split(gold, params.evaluate.query_bank)
    with atomic_path(args.out) as staging:
        results = evaluate_all(params, experiments, split, read_corpus(args.corpus), args.embeddings, args.cache,
                               staging, args.sparse, tuning, bank, json.loads(args.routes.read_text(encoding="utf-8")))
        write_json(staging / "results.json", results)
    primary = params.evaluate.primary
    write_json(args.metrics, {
        name: {f"macro_{primary}": round(record["scores"][MACRO][primary], 4),
               f"macro_{primary}_ci": [round(bound, 4) for bound in record["primary_ci"]]}
        | {metric: round(record["scores"][MACRO][metric], 4) for metric in params.evaluate.headline}
        | {"hub_rate@10": round(record["hub_rate_at_10"], 4),
           "recall_vs_exact@10": round(record["recall_vs_exact_at_10"], 4), "p95_ms": record["latency"]["p95_ms"]}
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
