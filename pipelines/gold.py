"""DVC stage `gold`: corpus + bangumi + hand-written queries and judgements -> graded, split, validated gold set."""

from __future__ import annotations

import logging

from animelab.corpus.readers import read_corpus
from animelab.corpus.schema import BangumiEntry
from animelab.stages import run_stage, stage_args
from animelab.gold.build import anime_split, build_gold, file_sha256, hole_rates, load_hand_written, manifest
from animelab.gold.splits import write_gold
from animelab.gold.report import write_gold_report
from animelab.io import read_jsonl
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "bangumi", "out", "report")

    params = load_params(args.params)
    entries = read_corpus(args.corpus)
    bangumi = [BangumiEntry.model_validate(row) for row in read_jsonl(args.bangumi)]
    hand = load_hand_written(params.gold)
    gold = build_gold(entries, bangumi, hand, params.gold, params.seed)
    inputs = (args.corpus, args.bangumi, params.gold.curated, params.gold.paraphrase, params.gold.judgements,
              params.gold.pool)
    hashes = {str(path): file_sha256(path) for path in inputs if path.exists()}
    pooled = list(read_jsonl(params.gold.pool)) if params.gold.pool.exists() else []
    pool = {"rows": sorted({row for item in pooled for row in item["rows"]}), "holes": hole_rates(pooled, hand)}
    gold_manifest = manifest(gold, params.gold, params.seed, hashes, pool)
    write_gold(args.out, gold.queries, gold_manifest, anime_split(entries, params.gold.split, params.seed))
    write_gold_report(args.report, gold.queries, entries)
    logging.info("gold set: %s; shortfalls: %s", gold_manifest["totals"], gold_manifest["shortfalls"] or "none")


if __name__ == "__main__":
    run_stage(main)
