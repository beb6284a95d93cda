"""DVC stage `sparse`: corpus (+ train gold queries) -> feature (static, IDF, learned) and BM25 sparse sets."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from animelab.corpus.readers import read_corpus
from animelab.errors import run_stage
from animelab.evaluation.runs import gold_split, read_gold
from animelab.io import atomic_path, write_json, write_text
from animelab.params import load_params
from animelab.sparse.bm25 import bm25_documents
from animelab.sparse.build import feature_report, feature_sets, manifest_entry, report_markdown
from animelab.sparse.vectors import BM25, MANIFEST, VOCABULARY, save_sparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/anime.jsonl"))
    parser.add_argument("--gold", type=Path, default=Path("gold"))
    parser.add_argument("--out", type=Path, default=Path("data/sparse"))
    parser.add_argument("--report", type=Path, default=Path("reports/sparse.md"))
    parser.add_argument("--metrics", type=Path, default=Path("reports/metrics/sparse.json"))
    args = parser.parse_args(argv)

    params = load_params(args.params)
    entries = read_corpus(args.corpus)
    # Weights are fitted on train queries only; test is read for the report, never for fitting.
    gold = read_gold(args.gold)
    splits = {name: gold_split(gold, name) for name in ("train", "test")}
    model = feature_sets(entries, params.sparse, splits["train"], params.seed)
    text, avg_len = bm25_documents(entries, params.sparse.bm25)
    with atomic_path(args.out) as staging:
        staging.mkdir()
        sets = {name: manifest_entry(name, save_sparse(staging, vectors), kind="feature")
                for name, vectors in model.sets.items()}
        sets[BM25] = manifest_entry(BM25, save_sparse(staging, text), kind="bm25", avg_len=avg_len,
                                    params=params.sparse.bm25.model_dump(mode="json"))
        write_json(staging / VOCABULARY, model.space.keys)
        write_json(staging / MANIFEST, {"sets": sets, "learned_weights": model.learned_weights, "anime": len(entries)})
    report = feature_report(model, splits, params.sparse, params.evaluate.limit)
    write_text(args.report, report_markdown(report, avg_len))
    write_json(args.metrics, {name: scores for name, scores in report["exact_scores"].items()}
               | {"learned_weights": model.learned_weights})
    logging.info("sparse sets %s; learned weights %s", sorted(sets), model.learned_weights)


if __name__ == "__main__":
    run_stage(main)
