"""DVC stage `embed`: corpus -> one embedding file per named vector + manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from animelab.corpus.readers import read_corpus
from animelab.embeddings import embed_corpus
from animelab.errors import run_stage
from animelab.io import write_json
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    manifest = embed_corpus(read_corpus(args.corpus), params.embed, args.out)
    write_json(args.metrics, {name: stats["count"] for name, stats in manifest["vectors"].items()})


if __name__ == "__main__":
    run_stage(main)
