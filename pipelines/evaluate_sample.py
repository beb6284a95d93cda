"""DVC stage `evaluate_sample`: the evaluate stage's baseline and exact rows on stratified corpus samples
-> verdict agreement with the full run, reports/sample_evaluation.md, metrics."""

from __future__ import annotations

import json
import logging

from animelab.corpus.readers import read_corpus
from animelab.stages import run_stage, stage_args
from animelab.evaluation.experiments import load_experiments
from animelab.evaluation.sampled import evaluate_samples, sample_markdown
from animelab.gold.splits import gold_split, read_gold
from animelab.io import write_json, write_text
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "embeddings", "gold", "routes", "cache", "sparse", "results",
                      "metrics", "report", cache="the evaluate stage's built variant indexes",
                      sparse="the sparse stage's vector sets", routes="the route stage's routes.json",
                      results="the evaluate stage's results.json (its baseline and verdicts)")

    params = load_params(args.params)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    gold = read_gold(args.gold)
    split = gold_split(gold, params.evaluate.split)
    report = evaluate_samples(params, load_experiments(params.evaluate.experiments), results, split,
                              read_corpus(args.corpus), args.embeddings, args.cache, args.sparse,
                              gold_split(gold, params.evaluate.query_bank),
                              json.loads(args.routes.read_text(encoding="utf-8")))
    write_json(args.metrics, {"by_fraction": report["by_fraction"],
                              "samples": [{k: v for k, v in s.items() if k != "verdicts"} for s in report["samples"]]})
    write_text(args.report, sample_markdown(report))
    logging.info("verdict agreement per fraction: %s", report["by_fraction"])


if __name__ == "__main__":
    run_stage(main)
