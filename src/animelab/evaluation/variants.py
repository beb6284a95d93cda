"""Evaluate every variant on the gold split: build or reuse its index, run, score, compare."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from animelab.bench import latency_summary, measure
from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import embed_corpus, load_manifest
from animelab.encoders.text import TextEncoder
from animelab.evaluation import scoring
from animelab.evaluation.runs import GoldSplit, build_requests, exact_twin, execute, write_trec_run
from animelab.experiments import Experiments, Variant
from animelab.index.backend import BuildReport
from animelab.index.build import SHARD, build_index, embedding_dims
from animelab.index.edge import EdgeIndex
from animelab.index.spec import collection_spec
from animelab.io import atomic_path, write_json
from animelab.params import Params, TextModelParams

log = logging.getLogger(__name__)


@dataclass
class ModelContext:
    """A text model with its corpus embeddings and the gold queries encoded by it."""

    name: str
    embeddings_dir: Path
    manifest_hash: str
    dims: dict[str, int | None]
    query_vectors: dict[str, list[float]]


def model_params(params: Params, variant: Variant) -> TextModelParams | None:
    """The text model a variant uses, or None when it is not configured here."""
    if variant.model == "default":
        return params.embed.text_model
    if params.evaluate.bge_m3_path is None:
        return None
    return params.embed.text_model.model_copy(update={"kind": "bge-m3", "path": params.evaluate.bge_m3_path})


def prepare_model(params: Params, model: TextModelParams, default_embeddings: Path, entries: list[AnimeEntry],
                  split: GoldSplit, cache_dir: Path) -> ModelContext:
    """Embeddings for the model (the embed stage's for the default one) and the encoded queries."""
    if model == params.embed.text_model:
        embeddings_dir = default_embeddings
    else:
        key = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:12]
        embeddings_dir = cache_dir / f"embeddings-{model.kind}-{key}"
        if not embeddings_dir.exists():
            vectors = [name for name in params.index.vectors if name in params.embed.vectors]
            embed_corpus(entries, params.embed.model_copy(update={"text_model": model, "vectors": vectors}),
                         embeddings_dir)
    manifest = load_manifest(embeddings_dir)
    encoder = TextEncoder(model)
    encoded = encoder.encode_queries([q["text"] for q in split.queries]).dense
    return ModelContext(
        name=manifest["text_model"]["name"],
        embeddings_dir=embeddings_dir,
        manifest_hash=hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12],
        dims=embedding_dims(manifest),
        query_vectors={q["id"]: row.tolist() for q, row in zip(split.queries, encoded, strict=True)},
    )


def variant_index(params: Params, variant: Variant, model: ModelContext, entries: list[AnimeEntry],
                  cache_dir: Path) -> tuple[Path, BuildReport, list[str]]:
    """Build the variant's collection, or reuse the one built from the same spec and embeddings.

    Variants are always built on the embedded engine (Qdrant Edge): one shard per spec, cached
    side by side, where a server would need one collection and alias per variant.
    """
    index_params = variant.index.apply(params.index).model_copy(update={"backend": "edge"})
    spec = collection_spec(index_params, model.dims)
    key = hashlib.sha256(f"{spec.key()}:{model.manifest_hash}".encode()).hexdigest()[:16]
    directory = cache_dir / "indexes" / key
    if not (directory / "build.json").is_file():
        with atomic_path(directory) as staging:
            report = build_index(index_params, spec, entries, model.embeddings_dir, staging)
            write_json(staging / "build.json", dataclasses.asdict(report))
    report = BuildReport(**json.loads((directory / "build.json").read_text(encoding="utf-8")))
    return directory / SHARD, report, spec.dense_names


def evaluate_variant(params: Params, variant: Variant, model: ModelContext, split: GoldSplit,
                     entries: list[AnimeEntry], cache_dir: Path) -> tuple[dict[str, Any], Any, scoring.PerQuery]:
    """Run one variant; returns its result record, its ranx Run and its per-query metric values."""
    settings = params.evaluate
    shard, build, indexed = variant_index(params, variant, model, entries, cache_dir)
    requests = build_requests(variant.search, split, model.query_vectors, indexed, settings.limit)
    with measure() as resources:
        index = EdgeIndex(shard)
        for request in requests[:50]:  # warm-up: page the index in before timing
            index.search(request)
        run, seconds = execute(index, split, requests, settings.limit, variant.name)
        exact_run = None
        if not variant.search.exact:
            exact_run, _ = execute(index, split, [exact_twin(r) for r in requests], settings.limit, "exact")
        index.close()
    query_ids = [q["id"] for q in split.queries]
    values = scoring.per_query(split.qrels, run, settings.metrics)
    record = {
        "name": variant.name,
        "axis": variant.axis,
        "description": variant.description,
        "model": model.name,
        "settings": variant.model_dump(mode="json"),
        "scores": scoring.means(values, scoring.group_positions(list(split.qrels.keys()), split.categories)),
        "hard_negative_intrusion_at_10": scoring.intrusion_rate(run, split.hard_negatives),
        "recall_vs_exact_at_10": scoring.fidelity(run, exact_run, query_ids) if exact_run else 1.0,
        "latency": latency_summary(seconds),
        "build_seconds": round(build.seconds, 2),
        "disk_mib": round(build.disk_bytes / 2**20, 1),
        "ram_mib": round(resources.peak_rss_mib - resources.start_rss_mib, 1),
        "indexed_vectors": indexed,
        "queries": len(query_ids),
    }
    return record, run, values


def evaluate_all(params: Params, experiments: Experiments, split: GoldSplit, entries: list[AnimeEntry],
                 embeddings_dir: Path, cache_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Every variant, then significance of each against the baseline. Writes runs and per-query CSVs."""
    models: dict[str, ModelContext] = {}
    records, values = {}, {}
    skipped = {}
    query_ids = list(split.qrels.keys())
    for variant in tqdm(experiments.all(), desc="variants", unit="variant"):
        model = model_params(params, variant)
        if model is None:
            skipped[variant.name] = "evaluate.bge_m3_path is not set: no local BGE-M3 model to load"
            continue
        key = model.model_dump_json()
        if key not in models:
            models[key] = prepare_model(params, model, embeddings_dir, entries, split, cache_dir)
        record, run, values[variant.name] = evaluate_variant(params, variant, models[key], split, entries, cache_dir)
        records[variant.name] = record
        write_trec_run(out_dir / "runs" / f"{variant.name}.trec", run, variant.name)
        write_per_query_csv(out_dir / "per_query" / f"{variant.name}.csv", query_ids, values[variant.name],
                            split.categories)
        log.info("%s: %s", variant.name, record["scores"]["all"])
    baseline = values.pop(experiments.baseline.name)
    tests = scoring.significance(baseline, values, scoring.group_positions(query_ids, split.categories),
                                 params.evaluate.stat_test, params.evaluate.alpha, params.evaluate.correction,
                                 params.seed)
    for name, comparison in tests.items():
        records[name]["vs_baseline"] = comparison
    return {"split": params.evaluate.split, "baseline": experiments.baseline.name, "variants": records,
            "skipped": skipped, "stat_test": params.evaluate.stat_test, "alpha": params.evaluate.alpha,
            "correction": params.evaluate.correction}


def write_per_query_csv(path: Path, query_ids: list[str], values: scoring.PerQuery,
                        categories: dict[str, str]) -> None:
    metrics = list(values)
    with atomic_path(path) as staging, staging.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["query_id", "category", *metrics])
        for position, query_id in enumerate(query_ids):
            writer.writerow([query_id, categories[query_id], *(f"{values[m][position]:.6f}" for m in metrics)])
