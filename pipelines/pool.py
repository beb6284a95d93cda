"""By hand, before judging (not a DVC stage: people read its output): the top 10s of the evaluate run's best
rows on the paraphrase test queries -> gold/paraphrase_pool.jsonl, the anime to judge into gold.judgements.

    python pipelines/pool.py --params params.yaml --corpus data/corpus/anime.jsonl --embeddings data/embeddings \
        --gold gold --routes data/routing/routes.json --cache data/variant_cache --sparse data/sparse \
        --results data/evaluate/results.json --out gold/paraphrase_pool.jsonl [--also routed-on-baseline]
"""

from __future__ import annotations

import argparse
import json
import logging

from animelab.corpus.readers import read_corpus
from animelab.evaluation.experiments import load_experiments
from animelab.evaluation.pooling import pool, pool_rows
from animelab.evaluation.runner import Evaluation
from animelab.gold.splits import gold_split, read_gold
from animelab.io import write_jsonl
from animelab.params import load_params
from animelab.stages import run_stage, stage_args

DEPTH, DEPLOYABLE = 10, 5


def main(argv: list[str] | None = None) -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--also", nargs="*", default=[], help="rows pooled besides the run's best (new rows)")
    known, rest = extra.parse_known_args(argv)
    args = stage_args(__doc__, rest, "params", "corpus", "embeddings", "gold", "routes", "cache", "sparse", "results",
                      "out")

    params = load_params(args.params)
    gold = read_gold(args.gold)
    evaluated = gold_split(gold, params.evaluate.split)
    split = gold_split(gold, params.evaluate.split, ("paraphrase",))
    rows = pool_rows(load_experiments(params.evaluate.experiments), json.loads(args.results.read_text()), DEPLOYABLE,
                     known.also)
    evaluation = Evaluation(params, read_corpus(args.corpus), args.embeddings, args.cache, args.sparse,
                            gold_split(gold, params.evaluate.query_bank), json.loads(args.routes.read_text()))
    pooled = pool(evaluation, rows, evaluated, split, DEPTH)
    write_jsonl(args.out, pooled)
    unjudged = sum(item["grade"] is None for item in pooled)
    logging.info("pooled %d anime over %d queries from %s; %d unjudged", len(pooled), len(split.queries),
                 [row.name for row in rows], unjudged)


if __name__ == "__main__":
    run_stage(main)
