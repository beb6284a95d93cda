"""DVC stages `embed` and `embed_set@NAME`: corpus -> one embedding file per named vector + manifest
(``--set NAME``: embedding set ``embed.sets.NAME``, another text model's)."""

from __future__ import annotations

from animelab.corpus.readers import read_corpus
from animelab.embeddings import embed_corpus
from animelab.stages import run_stage, stage_args
from animelab.io import write_json
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "out", "metrics", names=("set",),
                      set="an embedding set of embed.sets (default: embed.text_model and embed.vectors)")

    params = load_params(args.params)
    embed = params.embed if args.set is None else params.embed.of_set(args.set)
    manifest = embed_corpus(read_corpus(args.corpus), embed, args.out)
    write_json(args.metrics, {name: stats["count"] for name, stats in manifest["vectors"].items()})


if __name__ == "__main__":
    run_stage(main)
