"""DVC stage `index`: corpus + embeddings -> the baseline collection (Qdrant Edge shard or server)."""

from __future__ import annotations

import dataclasses
import logging

from animelab.corpus.readers import read_corpus
from animelab.encoders.registry import model_name
from animelab.stages import run_stage, stage_args
from animelab.index.build import SPEC_FILE, build_index, spec_for
from animelab.io import atomic_path, write_json
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "embeddings", "out", "metrics")

    params = load_params(args.params)
    text_model = model_name(params.embed.text_model)
    spec = spec_for(params.index, args.embeddings, text_model)
    with atomic_path(args.out) as staging:
        report = build_index(params.index, spec, read_corpus(args.corpus), args.embeddings, staging)
        # The model queries must be encoded with: the search CLI refuses another one.
        write_json(staging / SPEC_FILE, spec.as_dict() | {"key": spec.key(), "text_model": text_model})
    logging.info("built %s in %.1f s: %s", args.out, report.seconds, report)
    # Build time and disk size vary by machine: they belong to the benchmark, not to these metrics.
    write_json(args.metrics, {k: v for k, v in dataclasses.asdict(report).items() if k not in ("seconds", "disk_bytes")})


if __name__ == "__main__":
    run_stage(main)
