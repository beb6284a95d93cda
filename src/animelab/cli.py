"""Command line for people: ``python -m animelab <command> --help``."""

from __future__ import annotations

import argparse
from pathlib import Path

from animelab.corpus.readers import read_corpus
from animelab.errors import LabError, run_stage
from animelab.fields import VECTORS, vector_inputs


def show_vectors(_: argparse.Namespace) -> None:
    print(f"{'vector':24} {'modality':8} {'priority':8} {'long text':10} source fields")
    for spec in VECTORS:
        long_text = spec.long_text if spec.modality == "text" else "-"
        print(f"{spec.name:24} {spec.modality:8} {spec.priority:8} {long_text:10} {', '.join(spec.sources)}")


def show_fields(args: argparse.Namespace) -> None:
    entries = {entry.id: entry for entry in read_corpus(args.corpus)}
    if args.anime_id not in entries:
        raise LabError(f"{args.anime_id!r} is not in {args.corpus} (ids look like 'mal:1535')")
    entry = entries[args.anime_id]
    for spec in VECTORS:
        inputs = vector_inputs(entry, spec)
        print(f"== {spec.name} ({'absent' if not inputs else f'{len(inputs)} segments'})")
        for segment in inputs:
            print(f"   {segment}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m animelab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    vectors = commands.add_parser("vectors", help="the 14 named vectors and their source fields")
    vectors.set_defaults(handler=show_vectors)
    fields = commands.add_parser("fields", help="the text each vector embeds for one anime")
    fields.add_argument("anime_id", help="corpus id, e.g. mal:1535")
    fields.add_argument("--corpus", type=Path, default=Path("data/corpus/anime.jsonl"))
    fields.set_defaults(handler=show_fields)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_stage(lambda: args.handler(args))
