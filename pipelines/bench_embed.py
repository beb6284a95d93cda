"""Benchmark of ingest + embed on the full corpus, for every configured text model on the same texts:
texts/s per vector, model load time, peak memory, wall time. Then a side-by-side run on one set of texts
(a seeded sample of the title vector's, the longest): sentence-transformers on the default model, and the
lab's encoder in float32 and under bfloat16 autocast, with the same max_length, batch size and threads;
texts/s, the ratio to sentence-transformers and each row's cosine to its embeddings.

Not a DVC stage (timings depend on the machine): run it on demand, with nothing else running; it writes
reports/bench_embed.json and reports/bench_embed.md. Each model runs in a fresh process, so one model's
peak RSS does not include another's weights.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from animelab.corpus.ingest import anime_sources, ingest
from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import embed_text_vector
from animelab.encoders.registry import resolve_model_path, text_encoder
from animelab.encoders.text import native_bf16
from animelab.stages import run_stage
from animelab.evaluation.timing import machine, measure
from animelab.fields import TEXT_VECTOR_NAMES, VECTORS_BY_NAME, vector_inputs
from animelab.io import write_json, write_text
from animelab.params import EmbedParams, load_params

DEFAULT_SET = "default"


def model_lines(name: str, report: dict) -> list[str]:
    lines = [
        f"## {name}: `{report['model']}`",
        "",
        f"max_length {report['max_length']}, batch size {report['batch_size']}, text_model.threads "
        f"{report['threads']} (a numpy model's BLAS threads; torch models run on the machine's torch_threads).",
        "",
        "| vector | texts | chunks | truncated | seconds | texts/s | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for vector, row in report["vectors"].items():
        lines.append(f"| {vector} | {row['texts']} | {row['chunks']} | {row['truncated']} | {row['seconds']:.1f} | "
                     f"{row['texts_per_second']:.1f} | {row['peak_rss_mib']:.0f} |")
    return lines + [""]


def markdown(report: dict) -> str:
    lines = [
        "# Embedding benchmark",
        "",
        f"Machine: {', '.join(f'{k} {v}' for k, v in report['machine'].items())}. Ingest: "
        f"{report['ingest_seconds']:.1f} s for {report['records_read']} records. Every model embeds the same "
        "texts (each set's text vectors), in its own process.",
        "",
        "| set | model | texts | embed seconds | texts/s | model load s | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, model in report["models"].items():
        totals = model["totals"]
        lines.append(f"| {name} | `{model['model']}` | {totals['texts']} | {totals['embed_seconds']:.1f} | "
                     f"{totals['texts_per_second']:.1f} | {totals['model_load_seconds']:.1f} | "
                     f"{totals['peak_rss_mib']:.0f} |")
    lines.append("")
    lines += side_by_side_lines(report["side_by_side"])
    for name, model in report["models"].items():
        lines += model_lines(name, model)
    return "\n".join(lines)


def side_by_side_lines(report: dict) -> list[str]:
    lines = [
        "## Side by side: the default model against sentence-transformers",
        "",
        f"{report['texts']} `{report['vector']}` texts (seeded sample), max_length {report['max_length']}, batch size "
        f"{report['batch_size']}, {report['threads']} torch threads, each encoder in its own process after one "
        f"warm-up batch. CPU bfloat16 support: {', '.join(report['bf16_hardware']) or 'none'}.",
        "",
        "| encoder | seconds | texts/s | x sentence-transformers | cosine min | cosine mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["encoders"].items():
        lines.append(f"| {name} | {row['seconds']:.1f} | {row['texts_per_second']:.1f} | {row['speedup']:.2f} | "
                     f"{row['cosine_min']:.6f} | {row['cosine_mean']:.6f} |")
    return lines + [""]


def sentence_transformers_rows(embed: EmbedParams, texts: list[str]) -> tuple[np.ndarray, float]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_path(embed.text_model)), device="cpu")
    model.max_seq_length = embed.text_model.max_length
    model.encode(texts[:embed.text_model.batch_size], batch_size=embed.text_model.batch_size)
    with measure() as elapsed:
        rows = model.encode(texts, batch_size=embed.text_model.batch_size, normalize_embeddings=True)
    return np.asarray(rows, dtype=np.float32), elapsed.seconds


def lab_rows(embed: EmbedParams, texts: list[str]) -> tuple[np.ndarray, float]:
    encoder = text_encoder(embed.text_model)
    documents = [[text] for text in texts]
    encoder.encode_documents(documents[:embed.text_model.batch_size], "truncate")
    with measure() as elapsed:
        rows = encoder.encode_documents(documents, "truncate").dense
    return rows, elapsed.seconds


def side_by_side(embed: EmbedParams, entries: list[AnimeEntry], vector: str, count: int, seed: int) -> dict:
    spec = VECTORS_BY_NAME[vector]
    texts = ["\n".join(parts) for entry in entries if (parts := vector_inputs(entry, spec))]
    texts = [texts[i] for i in sorted(np.random.default_rng(seed).choice(len(texts), min(count, len(texts)),
                                                                         replace=False))]
    fp32 = embed.text_model.model_copy(update={"bf16_autocast": False})
    runs = {
        "sentence-transformers (float32)": (sentence_transformers_rows, fp32),
        "lab encoder, float32": (lab_rows, fp32),
        "lab encoder, bfloat16 autocast": (lab_rows, fp32.model_copy(update={"bf16_autocast": True})),
    }
    encoders, reference, reference_seconds = {}, None, None
    for name, (run, text_model) in runs.items():
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows, seconds = pool.submit(run, embed.model_copy(update={"text_model": text_model}), texts).result()
        if reference is None:
            reference, reference_seconds = rows, seconds
        cosine = (rows * reference).sum(axis=1)
        encoders[name] = {"seconds": round(seconds, 2), "texts_per_second": round(len(texts) / seconds, 2),
                          "speedup": round(reference_seconds / seconds, 3),
                          "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean())}
    return {"vector": vector, "texts": len(texts), "max_length": embed.text_model.max_length,
            "batch_size": embed.text_model.batch_size, "threads": machine()["torch_threads"],
            "bf16_hardware": native_bf16(), "encoders": encoders}


def bench_model(embed: EmbedParams, entries: list[AnimeEntry], text_vectors: list[str]) -> dict:
    """One model's run (in a fresh process): load, embed each of ``text_vectors``."""
    with measure() as whole:
        with measure() as load_time:
            encoder = text_encoder(embed.text_model)
        vectors = {}
        for name in text_vectors:
            with measure() as vector_time:
                _, stats = embed_text_vector(entries, name, encoder)
            texts = stats["count"]
            vectors[name] = {
                "texts": texts,
                "chunks": stats.get("chunks", 0),
                "truncated": stats.get("truncated", 0),
                "seconds": round(vector_time.seconds, 3),
                "texts_per_second": round(texts / vector_time.seconds, 2) if texts else 0.0,
                "peak_rss_mib": round(vector_time.peak_rss_mib, 1),
            }
    texts = sum(row["texts"] for row in vectors.values())
    seconds = sum(row["seconds"] for row in vectors.values())
    return {
        "model": encoder.name,
        "max_length": embed.text_model.max_length,
        "batch_size": embed.text_model.batch_size,
        "threads": embed.text_model.threads,
        "vectors": vectors,
        "totals": {"texts": texts, "embed_seconds": round(seconds, 2),
                   "texts_per_second": round(texts / seconds, 2) if seconds else 0.0,
                   "model_load_seconds": round(load_time.seconds, 2), "wall_seconds": round(whole.seconds, 2),
                   "peak_rss_mib": round(whole.peak_rss_mib, 1)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/bench_embed"))
    parser.add_argument("--side-by-side-vector", default="title_vector")
    parser.add_argument("--side-by-side-texts", type=int, default=1000)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    with measure() as ingest_time:
        result = ingest(anime_sources(params.data.path("enriched"), params.data.path("mal_seasons")))
    # The text vectors every configured model embeds: the same texts for each.
    text_vectors = [name for name in params.embed.vectors if name in TEXT_VECTOR_NAMES
                    and all(name in chosen.vectors for chosen in params.embed.sets.values())]
    models = {}
    for name in [DEFAULT_SET, *params.embed.sets]:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            embed = params.embed if name == DEFAULT_SET else params.embed.of_set(name)
            models[name] = pool.submit(bench_model, embed, result.entries, text_vectors).result()
    report = {"machine": machine(), "records_read": result.read, "ingest_seconds": round(ingest_time.seconds, 2),
              "models": models, "side_by_side": side_by_side(params.embed, result.entries, args.side_by_side_vector,
                                                             args.side_by_side_texts, params.seed)}
    write_json(args.out.with_suffix(".json"), report)
    write_text(args.out.with_suffix(".md"), markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    run_stage(main)
