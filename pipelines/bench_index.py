"""Benchmark of index configurations: build time, disk, RAM, latency, QPS and recall@10 vs exact.

Two data sets: the real corpus embeddings (single-vector and all-text-vector fused queries) and
a synthetic set of real title embeddings resampled with noise (default 200,000 points), where
HNSW and quantization effects show beyond 4k points. Queries are held-out resampled vectors;
one query vector serves every named vector of a fused query, as a text query does.
Not a DVC stage: run on demand; writes reports/bench_index.json and reports/bench_index.md.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from animelab.evaluation.timing import latency_summary, machine, measure, timed_search
from animelab.corpus.readers import read_corpus
from animelab.embeddings import VectorEmbeddings, load_vector
from animelab.errors import LabError, run_stage
from animelab.index.build import spec_for
from animelab.index.edge import EdgeIndex
from animelab.index.exact import ExactIndex, recall_at_k
from animelab.index.points import IndexPoint, index_points
from animelab.index.query import SearchRequest, Tuning, VectorQuery, exact_twin
from animelab.index.spec import collection_spec
from animelab.index.synthetic import resample_with_noise
from animelab.io import read_yaml, write_json, write_text
from animelab.params import IndexParams, QuantizationParams, load_params

class BenchRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    quantization: str
    search: dict[str, bool | float] = {}


class BenchConfig(BaseModel):
    """experiments/bench_index.yaml: the quantizations built and the rows run on each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantizations: dict[str, QuantizationParams]
    rows: list[BenchRow]

    @model_validator(mode="after")
    def rows_name_built_quantizations(self) -> "BenchConfig":
        unknown = sorted({row.quantization for row in self.rows} - set(self.quantizations))
        if unknown:
            raise ValueError(f"rows name quantizations {unknown} that are not defined")
        return self


def load_bench_config(path: Path) -> BenchConfig:
    try:
        return BenchConfig.model_validate(read_yaml(path))
    except (OSError, ValidationError) as error:
        raise LabError(f"{path}: {error}") from error


def quantized(params: IndexParams, setting: QuantizationParams) -> IndexParams:
    return params.model_copy(update={
        "priorities": {name: p.model_copy(update={"quantization": setting}) for name, p in params.priorities.items()}
    })


def result_ids(index: EdgeIndex, requests: list[SearchRequest]) -> tuple[list[list[str]], list[float]]:
    found, seconds = timed_search(index, requests)
    return [[hit.anime_id for hit in hits] for hits in found], seconds


def run_config_group(name: str, config: BenchConfig, quantization: str, params: IndexParams, dims: dict,
                     points: Iterator[IndexPoint],
                     workloads: dict[str, tuple[list[SearchRequest], list[list[str]]]], hnsw_ef: int,
                     workdir: Path) -> list[dict]:
    """Build one index, then run every search configuration that shares its quantization."""
    spec = collection_spec(quantized(params, config.quantizations[quantization]), dims)
    path = workdir / quantization
    report = EdgeIndex.build(path, spec, points, params.batch_size, params.indexing_threads, params.segments)
    rows = []
    with measure() as opened:
        index = EdgeIndex(path)
        for label, options in [(row.name, row.search) for row in config.rows if row.quantization == quantization]:
            tuning = Tuning(hnsw_ef=hnsw_ef, **options)
            row = {"dataset": name, "config": label, "build_seconds": round(report.seconds, 2),
                   "disk_mib": round(report.disk_bytes / 2**20, 1)}
            for workload, (requests, exact) in workloads.items():
                tuned = [replace(r, tuning=tuning) for r in requests]
                timed_search(index, tuned)  # warm-up pass: page in what the searches touch
                found, seconds = result_ids(index, tuned)
                row[workload] = latency_summary(seconds) | {"recall_at_10": round(recall_at_k(found, exact, 10), 4)}
            rows.append(row)
        index.close()
    for row in rows:
        row["ram_mib"] = round(opened.peak_rss_mib - opened.start_rss_mib, 1)
    logging.info("%s / %s: %s", name, quantization, rows)
    return rows


def fused_reference(index_dir: Path, requests: list[SearchRequest]) -> list[list[str]]:
    """Exact fused results: the engine's exact scan of each vector, fused the same way."""
    index = EdgeIndex(index_dir)
    found, _ = result_ids(index, [exact_twin(r) for r in requests])
    index.close()
    return found


def corpus_benchmark(params, config: BenchConfig, embeddings_dir: Path, corpus_path: Path, queries: int,
                     hnsw_ef: int, workdir: Path) -> list[dict]:
    index_params = params.index
    spec = spec_for(index_params, embeddings_dir)
    dense = {name: load_vector(embeddings_dir, name) for name in spec.dense_names}
    dims = {name: vectors.dense.shape[1] for name, vectors in dense.items()}
    entries = read_corpus(corpus_path)
    query_vectors = resample_with_noise(dense["title_vector"].dense, queries, noise=0.5, seed=params.seed)
    single = [SearchRequest((VectorQuery("title_vector", q.tolist()),), limit=10) for q in query_vectors]
    fused = [SearchRequest(tuple(VectorQuery(name, q.tolist(), 100) for name in spec.dense_names), limit=10)
             for q in query_vectors]
    exact_single = ExactIndex(dense, index_params.distance).top_k("title_vector", query_vectors, 10)
    reference = workdir / "reference"
    EdgeIndex.build(reference, spec, index_points(entries, dense), index_params.batch_size)
    workloads = {"single": (single, exact_single), f"fused_{len(spec.dense_names)}": (fused, fused_reference(reference, fused))}
    rows = []
    for quantization in config.quantizations:
        rows += run_config_group("corpus", config, quantization, index_params, dims, index_points(entries, dense),
                                 workloads, hnsw_ef, workdir)
    return rows


def synthetic_benchmark(params, config: BenchConfig, embeddings_dir: Path, size: int, queries: int, hnsw_ef: int,
                        workdir: Path, quantizations: list[str]) -> list[dict]:
    base = load_vector(embeddings_dir, "title_vector").dense
    vectors = resample_with_noise(base, size, noise=0.5, seed=params.seed)
    query_vectors = resample_with_noise(base, queries, noise=0.5, seed=params.seed + 1)
    ids = [f"s{i}" for i in range(size)]
    exact = ExactIndex({"title_vector": VectorEmbeddings("title_vector", ids, vectors)}, params.index.distance)
    requests = [SearchRequest((VectorQuery("title_vector", q.tolist()),), limit=10) for q in query_vectors]
    workloads = {"single": (requests, exact.top_k("title_vector", query_vectors, 10))}
    index_params = params.index.model_copy(update={"vectors": ["title_vector"], "payload_indexes": {},
                                                   "indexing_threads": 0, "batch_size": 1000})

    def points() -> Iterator[IndexPoint]:
        for anime_id, row in zip(ids, vectors, strict=True):
            yield IndexPoint(anime_id, {"title_vector": row.tolist()}, {"anime_id": anime_id})

    rows = []
    for quantization in quantizations:
        rows += run_config_group(f"synthetic {size:,}", config, quantization, index_params,
                                 {"title_vector": base.shape[1]},
                                 points(), workloads, hnsw_ef, workdir)
    return rows


def anisotropy(vectors: np.ndarray) -> dict[str, float]:
    """How far embeddings sit from zero-centred: what one-bit (sign) quantization depends on."""
    half = len(vectors) // 2
    signs = vectors > 0
    return {
        "mean_cosine_of_random_pairs": round(float(np.mean(np.sum(vectors[:half] * vectors[half:2 * half], axis=1))), 4),
        "mean_sign_agreement_of_random_pairs": round(float(np.mean(signs[:half] == signs[half:2 * half])), 4),
    }


def markdown(report: dict) -> str:
    lines = ["# Index benchmark", "",
             f"Qdrant Edge, HNSW per priority from params.yaml (title_vector: high), hnsw_ef={report['hnsw_ef']}, "
             f"{report['queries']} held-out queries, top 10; recall@10 against exact search; latency of one "
             f"sequential query; QPS = 1 / mean latency; RAM = RSS growth while the index is open and searched. "
             f"Machine: {', '.join(f'{k} {v}' for k, v in report['machine'].items())}.", ""]
    for dataset in dict.fromkeys(row["dataset"] for row in report["rows"]):
        rows = [row for row in report["rows"] if row["dataset"] == dataset]
        workloads = [key for key in rows[0] if isinstance(rows[0][key], dict)]
        lines += [f"## {dataset}", "",
                  "| config | build s | disk MiB | RAM MiB | " + " | ".join(
                      f"{w} p50 ms | {w} p95 ms | {w} p99 ms | {w} QPS | {w} recall@10" for w in workloads) + " |",
                  "|---|" + "---:|" * (3 + 5 * len(workloads))]
        for row in rows:
            cells = [row["config"], f"{row['build_seconds']:.1f}", f"{row['disk_mib']:.0f}", f"{row['ram_mib']:.0f}"]
            for w in workloads:
                m = row[w]
                cells += [f"{m['p50_ms']:.2f}", f"{m['p95_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['qps']:.0f}",
                          f"{m['recall_at_10']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    stats = report["title_vector_anisotropy"]
    lines += [f"title_vector embeddings: mean cosine of random pairs {stats['mean_cosine_of_random_pairs']}, "
              f"mean share of equal sign bits {stats['mean_sign_agreement_of_random_pairs']} (0.5 for centred data).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/anime.jsonl"))
    parser.add_argument("--embeddings", type=Path, default=Path("data/embeddings"))
    parser.add_argument("--synthetic-size", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-ef", type=int, default=128)
    parser.add_argument("--configs", type=Path, default=Path("experiments/bench_index.yaml"),
                        help="the quantizations built and the search rows run on each")
    parser.add_argument("--synthetic-quantizations", default="none,scalar-int8,binary,product-x16",
                        help="comma-separated names of --configs quantizations (product-x32 takes ~10 min at 200k)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench_index"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = load_bench_config(args.configs)
    unknown = sorted(set(args.synthetic_quantizations.split(",")) - set(config.quantizations))
    if unknown:
        raise LabError(f"--synthetic-quantizations: {unknown} are not in {args.configs}")
    with tempfile.TemporaryDirectory(prefix="bench-index-") as workdir:
        rows = corpus_benchmark(params, config, args.embeddings, args.corpus, args.queries, args.hnsw_ef,
                                Path(workdir) / "corpus")
        if args.synthetic_size:
            rows += synthetic_benchmark(params, config, args.embeddings, args.synthetic_size, args.queries, args.hnsw_ef,
                                        Path(workdir) / "synthetic", args.synthetic_quantizations.split(","))
    report = {"hnsw_ef": args.hnsw_ef, "queries": args.queries, "machine": machine(), "rows": rows,
              "title_vector_anisotropy": anisotropy(load_vector(args.embeddings, "title_vector").dense)}
    write_json(args.out.with_suffix(".json"), report)
    write_text(args.out.with_suffix(".md"), markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    run_stage(main)
