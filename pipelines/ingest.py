"""DVC stage `ingest`: source files -> normalised corpus, bangumi records, quarantine, metrics."""

from __future__ import annotations

import logging

from animelab.corpus.ingest import anime_sources, check_ingested, check_quarantine, check_sources_exist, ingest
from animelab.stages import run_stage, stage_args
from animelab.io import write_json, write_jsonl
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "bangumi", "quarantine", "metrics")

    params = load_params(args.params)
    anime_files = anime_sources(params.data.path("enriched"), params.data.path("mal_seasons"))
    bangumi_files = [("bangumi", "bangumi", params.data.path("bangumi"))]
    check_sources_exist(anime_files + bangumi_files)  # every missing file in one run, before the long reads
    anime = ingest(anime_files)
    bangumi = ingest(bangumi_files)

    write_jsonl(args.quarantine, [q.as_json() for q in anime.quarantined + bangumi.quarantined])
    write_json(args.metrics, {"anime": anime.metrics(), "bangumi": bangumi.metrics()})
    check_quarantine(anime, params.ingest.max_quarantined_share, "anime corpus")
    check_quarantine(bangumi, params.ingest.max_quarantined_share, "bangumi records")
    check_ingested(anime, anime_files, "anime corpus")
    check_ingested(bangumi, bangumi_files, "bangumi records")
    write_jsonl(args.corpus, anime.entries)
    write_jsonl(args.bangumi, bangumi.entries)
    logging.info("ingested %d anime, %d bangumi records; quarantined %d",
                 len(anime.entries), len(bangumi.entries), len(anime.quarantined) + len(bangumi.quarantined))


if __name__ == "__main__":
    run_stage(main)
