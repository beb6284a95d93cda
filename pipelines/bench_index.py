"""Benchmark of index configurations: build time, disk, memory as paid, latency, QPS under concurrent clients,
and recall@10 vs exact.

Two data sets: the real corpus embeddings (single-vector and all-text-vector fused queries) and
a synthetic set of real title embeddings resampled with noise, at several sizes (default 50,000 to
200,000 points: the cost curves), where HNSW and quantization effects show beyond 4k points. Queries
are held-out resampled vectors; one query vector serves every named vector of a fused query, as a
text query does. Not a DVC stage: run on demand, alone on the machine; writes reports/bench_index.json,
reports/bench_index.md and reports/bench_index_curves.html.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from scipy import stats

from animelab.evaluation.timing import (concurrent_latency, in_fresh_process, index_memory, latency_summary,
                                        machine, timed_search)
from animelab.corpus.readers import read_corpus
from animelab.embeddings import VectorEmbeddings, load_vector
from animelab.errors import LabError
from animelab.stages import run_stage
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
    curve: bool = False  # drawn in the cost-against-size curves


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


def quantized(params: IndexParams, setting: QuantizationParams, on_disk: bool) -> IndexParams:
    return params.model_copy(update={
        "priorities": {name: p.model_copy(update={"quantization": setting, "on_disk": on_disk})
                       for name, p in params.priorities.items()}
    })


def result_ids(index: EdgeIndex, requests: list[SearchRequest]) -> tuple[list[list[str]], list[float]]:
    found, seconds, _ = timed_search(index, requests)
    return [[hit.anime_id for hit in hits] for hits in found], seconds


# Bytes one vector of d dimensions needs in RAM, by quantization: what memory as paid is compared to.
def theoretical_bytes(setting: QuantizationParams, dims: int, on_disk: bool) -> float:
    if setting.kind == "scalar":
        return dims
    if setting.kind == "binary":
        return dims / 8
    if setting.kind == "product":
        return 4 * dims / setting.compression
    return 0 if on_disk else 4 * dims


def file_components(files: dict[str, int]) -> dict[str, int]:
    """Index file bytes grouped by what they hold (originals, quantized vectors, HNSW graph, the rest)."""
    totals: dict[str, int] = {}
    for name, size in files.items():
        parts = name.split("/")
        if any(part.startswith("vector_index-") for part in parts):
            kind = "graph"
        elif any("quantized" in part for part in parts):
            kind = "quantized"
        elif any(part.startswith("vector_storage-") for part in parts):
            kind = "originals"
        else:
            kind = "other"
        totals[kind] = totals.get(kind, 0) + size
    return totals


def index_files(path: Path) -> dict[str, int]:
    return {str(file.relative_to(path)): file.stat().st_size for file in sorted(path.rglob("*")) if file.is_file()}


def run_config_group(name: str, config: BenchConfig, quantization: str, params: IndexParams, dims: dict,
                     counts: dict[str, int], points: Iterator[IndexPoint],
                     workloads: dict[str, tuple[list[SearchRequest], list[list[str]]]], hnsw_ef: int,
                     workdir: Path, on_disk: bool, clients: list[int]) -> list[dict]:
    """Build one index, then run every search configuration that shares its quantization: latency and recall,
    throughput under ``clients`` concurrent clients (the first configuration), then, each in a fresh process,
    the resident memory its searches leave."""
    setting = config.quantizations[quantization]
    spec = collection_spec(quantized(params, setting, on_disk), dims)
    path = workdir / f"{quantization}{'-on-disk' if on_disk else ''}"
    report = EdgeIndex.build(path, spec, points, params.batch_size, params.indexing_threads, params.segments)
    theoretical = sum(counts[vector] * theoretical_bytes(setting, size, on_disk) for vector, size in dims.items())
    rows = []
    index = EdgeIndex(path)
    for label, options in [(row.name, row.search) for row in config.rows if row.quantization == quantization]:
        tuning = Tuning(hnsw_ef=hnsw_ef, **options)
        row = {"dataset": name, "config": label, "originals": "disk (mmap)" if on_disk else "RAM",
               "build_seconds": round(report.seconds, 2), "disk_mib": round(report.disk_bytes / 2**20, 1),
               "vectors": sum(counts.values()), "theoretical_ram_bytes": theoretical, "tuning": tuning}
        for workload, (requests, exact) in workloads.items():
            tuned = [replace(r, tuning=tuning) for r in requests]
            timed_search(index, tuned)  # warm-up pass: page in what the searches touch
            found, seconds = result_ids(index, tuned)
            row[workload] = latency_summary(seconds) | {"recall_at_10": round(recall_at_k(found, exact, 10), 4)}
            if not rows and clients:
                row[workload]["concurrency"] = [concurrent_latency(index.search, tuned * 2, n) for n in clients]
        rows.append(row)
    index.close()
    first_workload = next(iter(workloads.values()))[0]
    files = index_files(path)
    for row in rows:
        tuning = row.pop("tuning")
        memory = in_fresh_process(index_memory, path, [replace(r, tuning=tuning) for r in first_workload])
        row["memory"] = memory | {"components": file_components(files),
                                  "resident_components": file_components(memory.pop("files"))}
    logging.info("%s / %s: %s", name, quantization, rows)
    return rows


def fused_reference(index_dir: Path, requests: list[SearchRequest]) -> list[list[str]]:
    """Exact fused results: the engine's exact scan of each vector, fused the same way."""
    index = EdgeIndex(index_dir)
    found, _ = result_ids(index, [exact_twin(r) for r in requests])
    index.close()
    return found


def corpus_benchmark(params, config: BenchConfig, embeddings_dir: Path, corpus_path: Path, queries: int,
                     hnsw_ef: int, workdir: Path, clients: list[int]) -> list[dict]:
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
    counts = {name: len(vectors.ids) for name, vectors in dense.items()}
    rows = []
    for quantization, on_disk in builds(list(config.quantizations)):
        rows += run_config_group("corpus", config, quantization, index_params, dims, counts,
                                 index_points(entries, dense), workloads, hnsw_ef, workdir, on_disk, clients)
    return rows


def builds(quantizations: list[str]) -> list[tuple[str, bool]]:
    """Each quantization with the originals memory-mapped from disk (quantized vectors in RAM): the layout in
    which quantization saves memory; and no quantization with the originals in RAM, the reference."""
    return [("none", False)] * ("none" in quantizations) + [(name, True) for name in quantizations]


def synthetic_benchmark(params, config: BenchConfig, embeddings_dir: Path, sizes: list[int], queries: int,
                        hnsw_ef: int, workdir: Path, quantizations: list[str],
                        clients: list[int]) -> Iterator[tuple[int, list[dict], float]]:
    """Every size's builds on the first ``size`` points of one resample (each size holds the smaller ones), so the
    cost curves follow one collection as it grows. Yields each size's rows and wall seconds as it finishes."""
    base = load_vector(embeddings_dir, "title_vector").dense
    vectors = resample_with_noise(base, max(sizes), noise=0.5, seed=params.seed)
    query_vectors = resample_with_noise(base, queries, noise=0.5, seed=params.seed + 1)
    ids = [f"s{i}" for i in range(max(sizes))]
    requests = [SearchRequest((VectorQuery("title_vector", q.tolist()),), limit=10) for q in query_vectors]
    index_params = params.index.model_copy(update={"vectors": ["title_vector"], "payload_indexes": {},
                                                   "indexing_threads": 0, "batch_size": 1000})
    # No quantization with the originals on disk is measured on the corpus; here it would double the costliest build.
    grown = [build for build in builds(quantizations) if build != ("none", True)]
    for size in sorted(sizes):
        start = time.perf_counter()
        exact = ExactIndex({"title_vector": VectorEmbeddings("title_vector", ids[:size], vectors[:size])},
                           params.index.distance)
        workloads = {"single": (requests, exact.top_k("title_vector", query_vectors, 10))}

        def points(size: int = size) -> Iterator[IndexPoint]:
            for anime_id, row in zip(ids[:size], vectors[:size], strict=True):
                yield IndexPoint(anime_id, {"title_vector": row.tolist()}, {"anime_id": anime_id})

        rows = []
        for quantization, on_disk in grown:
            rows += run_config_group(f"synthetic {size:,}", config, quantization, index_params,
                                     {"title_vector": base.shape[1]}, {"title_vector": size},
                                     points(), workloads, hnsw_ef, workdir / str(size), on_disk, clients)
        shutil.rmtree(workdir / str(size))  # 1M points take gigabytes per build
        seconds = round(time.perf_counter() - start, 1)
        logging.info("synthetic %d points: %.0f s", size, seconds)
        yield size, rows, seconds


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
CURVE_METRICS = {"build_seconds": "build s", "anonymous_bytes": "anonymous resident bytes",
                 "p50_ms": "p50 ms", "p95_ms": "p95 ms", "recall_at_10": "recall@10"}


def cost_curves(rows: list[dict], config: BenchConfig) -> dict[str, dict[str, Any]]:
    """For each curve row of the config: each metric against N over the synthetic sizes, with the exponent b of
    the least-squares fit metric ~ a * N^b on log-log axes."""
    curves = {}
    for bench_row in [row for row in config.rows if row.curve]:
        name = bench_row.name
        # One build per size, as users would deploy it: unquantized vectors in RAM, quantized ones with the
        # originals on disk.
        held = "RAM" if config.quantizations[bench_row.quantization].kind == "none" else "disk (mmap)"
        points = sorted(((row["vectors"], row) for row in rows if row["config"] == name
                         and row["dataset"].startswith("synthetic") and row["originals"] == held),
                        key=lambda point: point[0])
        if not points:
            continue
        sizes = [size for size, _ in points]
        values = {"build_seconds": [row["build_seconds"] for _, row in points],
                  "anonymous_bytes": [row["memory"]["anonymous"] for _, row in points],
                  **{key: [row["single"][key] for _, row in points] for key in ("p50_ms", "p95_ms", "recall_at_10")}}
        # What one more vector costs: the slope of a straight-line fit, free of the engine's fixed buffers.
        marginal = {kind: (round(float(np.polyfit(sizes, [row["memory"][kind] for _, row in points], 1)[0]), 1)
                           if len(sizes) > 1 else None) for kind in ("anonymous", "file")}
        curves[name] = {"sizes": sizes, "values": values, "marginal_bytes_per_vector": marginal,
                        "exponents": {key: (round(float(stats.linregress(np.log(sizes), np.log(series)).slope), 3)
                                            if len(sizes) > 2 and min(series) > 0 else None)
                                      for key, series in values.items()}}
    return curves


def curves_html(curves: dict[str, dict[str, Any]], path: Path) -> None:
    figure = make_subplots(rows=1, cols=len(CURVE_METRICS), subplot_titles=list(CURVE_METRICS.values()))
    for position, name in enumerate(curves):
        curve = curves[name]
        for column, key in enumerate(CURVE_METRICS, start=1):
            exponent = curve["exponents"][key]
            figure.add_trace(go.Scatter(
                x=curve["sizes"], y=curve["values"][key], mode="lines+markers", name=name, legendgroup=name,
                showlegend=column == 1, line={"color": COLORS[position % len(COLORS)]},
                hovertemplate=f"{name}<br>N=%{{x:,}}<br>%{{y}}" + (f"<br>fitted N^{exponent}" if exponent else "")
                              + "<extra></extra>"), row=1, col=column)
            figure.update_xaxes(type="log", title_text="points", row=1, col=column)
            if key != "recall_at_10":
                figure.update_yaxes(type="log", row=1, col=column)
    figure.update_layout(title="Index cost against collection size (synthetic resample of title_vector)",
                         height=450, width=1800)
    write_text(path, figure.to_html(include_plotlyjs=True, full_html=True))  # opens offline


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
             f"sequential query; QPS = 1 / mean latency. Every quantization is built with the original vectors "
             f"memory-mapped from disk and the quantized ones in RAM (the layout in which quantization saves "
             f"memory); no quantization is also built with the originals in RAM (at the synthetic sizes only so). "
             f"Memory is measured as paid: in a fresh process, after opening the index and running the {report['queries']} queries once, the growth "
             f"of anonymous resident memory (what RAM must hold) and of file-backed resident memory (mapped index "
             f"pages: page cache the kernel can drop and read again). Nothing else ran on the machine. "
             f"Machine: {', '.join(f'{k} {v}' for k, v in report['machine'].items())}.", ""]
    for dataset in dict.fromkeys(row["dataset"] for row in report["rows"]):
        rows = [row for row in report["rows"] if row["dataset"] == dataset]
        workloads = [key for key in rows[0] if isinstance(rows[0][key], dict) and "p50_ms" in rows[0][key]]
        lines += [f"## {dataset}", "",
                  "| config | originals | build s | disk MiB | anonymous MiB | file-backed MiB | " + " | ".join(
                      f"{w} p50 ms | {w} p95 ms | {w} p99 ms | {w} QPS | {w} recall@10" for w in workloads) + " |",
                  "|---|---|" + "---:|" * (4 + 5 * len(workloads))]
        for row in rows:
            memory = row["memory"]
            cells = [row["config"], row["originals"], f"{row['build_seconds']:.1f}", f"{row['disk_mib']:.0f}",
                     f"{memory['anonymous'] / 2**20:.1f}", f"{memory['file'] / 2**20:.1f}"]
            for w in workloads:
                m = row[w]
                cells += [f"{m['p50_ms']:.2f}", f"{m['p95_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['qps']:.0f}",
                          f"{m['recall_at_10']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"### Memory as paid ({dataset}: {rows[0]['vectors']:,} vectors)", "",
                  "Bytes per stored vector. Theoretical: what the vectors searched in RAM need (float32 4d, int8 d, "
                  "binary d/8, product 4d/x; 0 for originals left on disk). Index files: the on-disk size of each "
                  "part; resident: how much of it the searches paged in.", "",
                  "| config | originals | theoretical in RAM | anonymous | anonymous / theoretical | file-backed | "
                  "files: originals | files: quantized | files: graph | resident: originals | resident: quantized | "
                  "resident: graph |", "|---|---|" + "---:|" * 10]
        for row in rows:
            memory, count = row["memory"], row["vectors"]
            files, resident = memory["components"], memory["resident_components"]
            theoretical = row["theoretical_ram_bytes"] / count
            ratio = f"{memory['anonymous'] / row['theoretical_ram_bytes']:.2f}" if theoretical else "-"
            lines.append("| " + " | ".join([
                row["config"], row["originals"], f"{theoretical:.0f}", f"{memory['anonymous'] / count:.0f}", ratio,
                f"{memory['file'] / count:.0f}",
                *(f"{files.get(part, 0) / count:.0f}" for part in ("originals", "quantized", "graph")),
                *(f"{resident.get(part, 0) / count:.0f}" for part in ("originals", "quantized", "graph"))]) + " |")
        concurrent = [(row, w) for row in rows for w in workloads if "concurrency" in row[w]]
        if concurrent:
            lines += ["", f"### Concurrent clients ({dataset})", "",
                      "Threads sharing one open shard, each sending its share of the queries (each query twice) "
                      "one after another; QPS = queries / wall seconds.", "",
                      "| config | originals | workload | clients | QPS | p50 ms | p95 ms |", "|---|---|---|---:|---:|---:|---:|"]
            for row, w in concurrent:
                for level in row[w]["concurrency"]:
                    lines.append(f"| {row['config']} | {row['originals']} | {w} | {level['clients']} | "
                                 f"{level['qps']:.0f} | {level['p50_ms']:.2f} | {level['p95_ms']:.2f} |")
        lines.append("")
    if report["curves"]:
        ran = ", ".join(f"{int(size):,} points ({seconds / 60:.1f} min)" for size, seconds in report["synthetic_seconds"].items())
        done = {str(size) for size in report["synthetic_seconds"]}
        missing = [size for size in report["sizes_planned"] if str(size) not in done]
        not_run = (f" Not run (the run was stopped first): {', '.join(f'{size:,}' for size in missing)}; "
                   f"{projected_builds(report['curves'], missing)}." if missing else "")
        lines += ["## Cost against collection size", "",
                  f"Synthetic sizes run: {ran}.{not_run} Each size is the first N points of one resample, built anew "
                  f"for each configuration. Exponent b: the least-squares fit of metric ~ a * N^b over the sizes "
                  f"(1: linear). Chart: `reports/bench_index_curves.html`.", "",
                  "| config | metric | " + " | ".join(f"{size:,}" for size in next(iter(report["curves"].values()))["sizes"])
                  + " | exponent b |", "|---|---|" + "---:|" * (len(next(iter(report["curves"].values()))["sizes"]) + 1)]
        for name, curve in report["curves"].items():
            for key, label in CURVE_METRICS.items():
                exponent = curve["exponents"][key]
                lines.append(f"| {name} | {label} | " + " | ".join(f"{value:,.4g}" for value in curve["values"][key])
                             + f" | {exponent if exponent is not None else '-'} |")
        lines += ["", "Memory per added vector (slope of resident bytes against N over the sizes; the intercept is the "
                  "engine's fixed cost, such as its write-ahead log's preallocated 32 MiB segments):", "",
                  "| config | theoretical in RAM | anonymous | file-backed |", "|---|---:|---:|---:|"]
        for name, curve in report["curves"].items():
            marginal = curve["marginal_bytes_per_vector"]
            theoretical = next(row["theoretical_ram_bytes"] / row["vectors"] for row in report["rows"]
                               if row["config"] == name and row["dataset"].startswith("synthetic"))
            lines.append(f"| {name} | {theoretical:.0f} | {marginal['anonymous']} | {marginal['file']} |")
        lines.append("")
    anisotropy_stats = report["title_vector_anisotropy"]
    lines += [f"title_vector embeddings: mean cosine of random pairs {anisotropy_stats['mean_cosine_of_random_pairs']}, "
              f"mean share of equal sign bits {anisotropy_stats['mean_sign_agreement_of_random_pairs']} (0.5 for centred data).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/anime.jsonl"))
    parser.add_argument("--embeddings", type=Path, default=Path("data/embeddings"))
    parser.add_argument("--synthetic-sizes", default="50000,100000,200000,500000,1000000",
                        help="comma-separated collection sizes of the synthetic set (the cost curves; empty: none); "
                             "the report is rewritten after each size")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-ef", type=int, default=128)
    parser.add_argument("--configs", type=Path, default=Path("experiments/bench_index.yaml"),
                        help="the quantizations built and the search rows run on each")
    parser.add_argument("--synthetic-quantizations", default="none,scalar-int8,binary",
                        help="comma-separated names of --configs quantizations (product-x16 takes ~12 min to build at 200k)")
    parser.add_argument("--clients", default="1,2,4,8",
                        help="comma-separated numbers of concurrent clients for the throughput table")
    parser.add_argument("--out", type=Path, default=Path("reports/bench_index"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = load_bench_config(args.configs)
    unknown = sorted(set(args.synthetic_quantizations.split(",")) - set(config.quantizations))
    if unknown:
        raise LabError(f"--synthetic-quantizations: {unknown} are not in {args.configs}")
    sizes = [int(n) for n in args.synthetic_sizes.split(",") if n]
    clients = [int(n) for n in args.clients.split(",") if n]
    report: dict[str, Any] = {"hnsw_ef": args.hnsw_ef, "queries": args.queries, "machine": machine(), "rows": [],
                              "synthetic_seconds": {}, "sizes_planned": sizes,
                              "title_vector_anisotropy": anisotropy(load_vector(args.embeddings, "title_vector").dense)}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as workdir:
        report["rows"] += corpus_benchmark(params, config, args.embeddings, args.corpus, args.queries, args.hnsw_ef,
                                           Path(workdir) / "corpus", clients)
        write_report(report, config, args.out)
        if sizes:
            for size, rows, seconds in synthetic_benchmark(params, config, args.embeddings, sizes, args.queries,
                                                           args.hnsw_ef, Path(workdir) / "synthetic",
                                                           args.synthetic_quantizations.split(","), clients):
                report["rows"] += rows
                report["synthetic_seconds"][size] = seconds
                write_report(report, config, args.out)  # an interrupted run keeps the sizes it finished
    print(markdown(report))


def projected_builds(curves: dict[str, dict[str, Any]], sizes: list[int]) -> str:
    """Each curve's build seconds at ``sizes``, extrapolated from its largest size by the fitted exponent."""
    parts = []
    for size in sizes:
        builds_at, measured = {}, set()
        for name, curve in curves.items():
            exponent, last = curve["exponents"]["build_seconds"], curve["values"]["build_seconds"][-1]
            if exponent is not None and last not in measured:  # rows sharing one build count once
                measured.add(last)
                builds_at[name] = last * (size / curve["sizes"][-1]) ** exponent
        parts.append(f"builds at {size:,} projected by the exponents: "
                     + ", ".join(f"{name} {seconds / 60:.0f} min" for name, seconds in builds_at.items()))
    return "; ".join(parts)


def write_report(report: dict[str, Any], config: BenchConfig, out: Path) -> None:
    report["curves"] = cost_curves(report["rows"], config)
    if report["curves"]:
        curves_html(report["curves"], out.with_name(f"{out.name}_curves.html"))
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), markdown(report))


if __name__ == "__main__":
    run_stage(main)
