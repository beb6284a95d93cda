"""DVC stage `sparse`: corpus (+ train gold queries) -> every sparse method's sets (sparse/registry.py),
their manifest, reports/sparse.md and the sparse metrics."""

from __future__ import annotations

import logging

from animelab.corpus.readers import read_corpus
from animelab.stages import run_stage, stage_args
from animelab.gold.splits import gold_split, read_gold
from animelab.io import atomic_path, write_json, write_text
from animelab.params import load_params
from animelab.sparse.registry import MODIFIERS, SPARSE_METHODS
from animelab.sparse.store import MANIFEST, save_sparse


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "gold", "out", "report", "metrics")

    params = load_params(args.params)
    entries = read_corpus(args.corpus)
    # Anything fitted sees train queries only; test is read for the report, never for fitting.
    gold = read_gold(args.gold)
    splits = {name: gold_split(gold, name) for name in ("train", "test")}
    built = {method: output for method in SPARSE_METHODS
             if (output := method.build(entries, params.sparse, splits["train"], params.seed)) is not None}
    manifest = {"sets": {}, "anime": len(entries)}
    with atomic_path(args.out) as staging:
        staging.mkdir()
        for output in built.values():
            for name, vectors in output.sets.items():
                manifest["sets"][name] = {"modifier": MODIFIERS[name], "sha256": save_sparse(staging, vectors),
                                          **output.details[name]}
            for file_name, content in output.files.items():
                write_json(staging / file_name, content)
            manifest |= output.manifest
        write_json(staging / MANIFEST, manifest)
    lines, metrics = [], {}
    for method, output in built.items():
        method_lines, method_metrics = method.report(output, splits, params.sparse, params.evaluate.limit)
        lines += method_lines
        metrics |= method_metrics
    write_text(args.report, "\n".join(lines))
    write_json(args.metrics, metrics)
    logging.info("sparse sets %s", sorted(manifest["sets"]))


if __name__ == "__main__":
    run_stage(main)
