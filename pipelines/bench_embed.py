"""Benchmark of ingest + embed on the full corpus: texts/s per vector, peak memory, wall time.

Not a DVC stage (timings depend on the machine): run it on demand; it writes
reports/bench_embed.json and reports/bench_embed.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from animelab.evaluation.timing import machine, measure
from animelab.corpus.ingest import anime_sources, ingest
from animelab.embeddings import embed_text_vector
from animelab.encoders.registry import text_encoder
from animelab.errors import run_stage
from animelab.fields import TEXT_VECTOR_NAMES
from animelab.io import write_json, write_text
from animelab.params import load_params


def markdown(report: dict) -> str:
    lines = [
        "# Embedding benchmark",
        "",
        f"Model `{report['model']}`, max_length {report['max_length']}, batch size {report['batch_size']}; "
        f"machine: {', '.join(f'{k} {v}' for k, v in report['machine'].items())}.",
        "",
        "| vector | texts | chunks | truncated | seconds | texts/s | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["vectors"].items():
        lines.append(f"| {name} | {row['texts']} | {row['chunks']} | {row['truncated']} | {row['seconds']:.1f} | "
                     f"{row['texts_per_second']:.1f} | {row['peak_rss_mib']:.0f} |")
    totals = report["totals"]
    lines += [
        "",
        f"- ingest: {totals['ingest_seconds']:.1f} s for {totals['records_read']} records",
        f"- model load: {totals['model_load_seconds']:.1f} s",
        f"- embedding all text vectors: {totals['embed_seconds']:.1f} s",
        f"- ingest + embed wall time: {totals['wall_seconds']:.1f} s",
        f"- peak RSS of the whole run: {totals['peak_rss_mib']:.0f} MiB",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/bench_embed"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    text_params = params.embed.text_model

    with measure() as whole:
        with measure() as ingest_time:
            result = ingest(anime_sources(params.data.path("enriched"), params.data.path("mal_seasons")))
        with measure() as load_time:
            encoder = text_encoder(text_params)
        vectors = {}
        for name in TEXT_VECTOR_NAMES:
            with measure() as vector_time:
                _, stats = embed_text_vector(result.entries, name, encoder)
            texts = stats["count"]
            vectors[name] = {
                "texts": texts,
                "chunks": stats.get("chunks", 0),
                "truncated": stats.get("truncated", 0),
                "seconds": round(vector_time.seconds, 3),
                "texts_per_second": round(texts / vector_time.seconds, 2) if texts else 0.0,
                "peak_rss_mib": round(vector_time.peak_rss_mib, 1),
            }

    report = {
        "model": encoder.name,
        "max_length": text_params.max_length,
        "batch_size": text_params.batch_size,
        "machine": machine(),
        "vectors": vectors,
        "totals": {
            "records_read": result.read,
            "ingest_seconds": round(ingest_time.seconds, 2),
            "model_load_seconds": round(load_time.seconds, 2),
            "embed_seconds": round(sum(v["seconds"] for v in vectors.values()), 2),
            "wall_seconds": round(whole.seconds, 2),
            "peak_rss_mib": round(whole.peak_rss_mib, 1),
        },
    }
    write_json(args.out.with_suffix(".json"), report)
    write_text(args.out.with_suffix(".md"), markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    run_stage(main)
