"""DVC stage `finetune_genre`: LoRA-tune the text encoder for genres on the train split; write the adapter,
the re-embedded vectors (the drift stage compares them with the base ones), metrics and MLflow records."""

from __future__ import annotations

import logging

from animelab.corpus.readers import read_corpus
from animelab.embeddings import embed_corpus
from animelab.encoders.registry import TEXT_ENCODERS
from animelab.stages import run_stage, stage_args
from animelab.gold.splits import read_gold
from animelab.finetune.genre import finetune_genre, write_curve
from animelab.finetune.tracking import log_finetune
from animelab.io import atomic_path, write_json
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "gold", "out", "metrics", "curve")

    params = load_params(args.params)
    entries = read_corpus(args.corpus)
    gold = read_gold(args.gold)
    outcome = finetune_genre(params, entries, gold.queries, gold.judgements, gold.anime_splits)
    with atomic_path(args.out) as staging:
        staging.mkdir()
        outcome.model.save(staging / "adapter")
        tuned = params.embed.text_model.model_copy(update={"adapter": staging / "adapter"})
        manifest = embed_corpus(entries, params.embed.model_copy(update={"text_model": tuned,
                                                                         "vectors": params.finetune.vectors}),
                                staging / "embeddings")
    summary = outcome.summary | {"model": manifest["text_model"]["name"]}
    write_json(args.metrics, summary)
    write_curve(args.curve, outcome.training.history)
    run_id, version = log_finetune(
        params.tracking, params.finetune.registry_name,
        {"finetune": params.finetune.model_dump(mode="json"), "seed": params.seed},
        outcome.training.history, summary, args.out / "adapter",
        {"base_model": TEXT_ENCODERS[params.embed.text_model.kind].MODEL_NAME, "split_sha256": summary["split_sha256"],
         "embeddings_model": summary["model"]})
    logging.info("adapter: best epoch %d of %d; dev NDCG@10 %s; MLflow run %s, %s version %s",
                 summary["best_epoch"], summary["epochs_run"], summary["dev_ndcg_at_10"], run_id,
                 params.finetune.registry_name, version)


if __name__ == "__main__":
    run_stage(main)
