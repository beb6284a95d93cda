"""DVC stage `gold`: corpus + bangumi + curated queries -> graded, split, validated gold set."""

from __future__ import annotations

import logging

from animelab.corpus.readers import read_corpus
from animelab.corpus.schema import BangumiEntry
from animelab.stages import run_stage, stage_args
from animelab.gold.build import anime_split, build_gold, file_sha256, manifest
from animelab.gold.splits import write_gold
from animelab.gold.predicates import load_curated
from animelab.gold.report import write_gold_report
from animelab.io import read_jsonl
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "bangumi", "out", "report")

    params = load_params(args.params)
    entries = read_corpus(args.corpus)
    bangumi = [BangumiEntry.model_validate(row) for row in read_jsonl(args.bangumi)]
    gold = build_gold(entries, bangumi, load_curated(params.gold.curated), params.gold, params.seed)
    hashes = {str(path): file_sha256(path) for path in (args.corpus, args.bangumi, params.gold.curated)}
    gold_manifest = manifest(gold, params.gold, params.seed, hashes)
    write_gold(args.out, gold.queries, gold_manifest, anime_split(entries, params.gold.split, params.seed))
    write_gold_report(args.report, gold.queries, entries)
    logging.info("gold set: %s; shortfalls: %s", gold_manifest["totals"], gold_manifest["shortfalls"] or "none")


if __name__ == "__main__":
    run_stage(main)
