"""Evaluate every variant on the gold split: build or reuse its index, run, score, compare."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from tqdm import tqdm

from animelab.bench import latency_summary, measure
from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import MANIFEST, embed_corpus, load_manifest
from animelab.encoders.text import EncodedTexts, TextEncoder
from animelab.evaluation import scoring
from animelab.evaluation.runs import GoldSplit, build_requests, execute, write_trec_run
from animelab.experiments import Experiments, Variant
from animelab.index.backend import BuildReport
from animelab.index.build import SHARD, build_index, embedding_dims
from animelab.index.edge import EdgeIndex
from animelab.index.query import SparseQuery, exact_twin
from animelab.index.spec import collection_spec
from animelab.io import atomic_path, write_csv, write_json
from animelab.params import Params, TextModelParams
from animelab.sparse.build import encode_queries
from animelab.sparse.vectors import content_key

log = logging.getLogger(__name__)


@dataclass
class ModelContext:
    """A text model with its corpus embeddings and the gold queries encoded by it, per dense vector."""

    name: str
    embeddings_dir: Path
    manifest_hash: str
    dims: dict[str, int | None]
    query_vectors: dict[str, dict[str, list[float]]]
    query_lexical: sparse.csr_matrix | None  # BGE-M3's lexical weights of the queries, one row per query


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's vectors come from: ``model`` for every vector, or, for a tuned model, for
    ``tuned_vectors`` only (embedded by its stage into ``tuned_embeddings``; the rest stay the base model's)."""

    model: TextModelParams
    tuned_vectors: tuple[str, ...] = ()
    tuned_embeddings: Path | None = None


def model_source(params: Params, variant: Variant) -> ModelSource | str:
    """The variant's model, or why it cannot run here."""
    if variant.model == "default":
        return ModelSource(params.embed.text_model)
    if variant.model == "genre_ft":
        if params.evaluate.genre_ft is None:
            return "evaluate.genre_ft is not set: no fine-tuned adapter to load"
        tuned = params.embed.text_model.model_copy(update={"adapter": params.evaluate.genre_ft.adapter})
        return ModelSource(tuned, tuple(params.finetune.vectors), params.evaluate.genre_ft.embeddings)
    if params.evaluate.bge_m3_path is None:
        return "evaluate.bge_m3_path is not set: no local BGE-M3 model to load"
    return ModelSource(params.embed.text_model.model_copy(update={"kind": "bge-m3", "path": params.evaluate.bge_m3_path}))


def manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def composed_embeddings(base_dir: Path, tuned_dir: Path, cache_dir: Path) -> Path:
    """One embeddings directory holding the tuned model's vectors and the base model's others."""
    base, tuned = load_manifest(base_dir), load_manifest(tuned_dir)
    directory = cache_dir / f"embeddings-composed-{manifest_digest({'base': base, 'tuned': tuned})}"
    if not directory.exists():
        with atomic_path(directory) as staging:
            staging.mkdir()
            for name in base["vectors"]:
                source = tuned_dir if name in tuned["vectors"] else base_dir
                if (source / f"{name}.npz").is_file():
                    shutil.copyfile(source / f"{name}.npz", staging / f"{name}.npz")
            manifest = base | {"text_model": tuned["text_model"], "vectors": base["vectors"] | tuned["vectors"],
                               "composed": {"tuned": sorted(tuned["vectors"]), "base_model": base["text_model"]["name"]}}
            write_json(staging / MANIFEST, manifest)
    return directory


def encoded_queries(model: TextModelParams, split: GoldSplit, encoded: dict[TextModelParams, EncodedTexts]
                    ) -> EncodedTexts:
    """The split's queries encoded by ``model``: each model is loaded and run once per evaluation."""
    if model not in encoded:
        encoded[model] = TextEncoder(model).encode_queries([q["text"] for q in split.queries])
    return encoded[model]


def by_query(split: GoldSplit, rows: np.ndarray) -> dict[str, list[float]]:
    return {q["id"]: row.tolist() for q, row in zip(split.queries, rows, strict=True)}


def prepare_model(params: Params, source: ModelSource, default_embeddings: Path, entries: list[AnimeEntry],
                  split: GoldSplit, cache_dir: Path, encoded: dict[TextModelParams, EncodedTexts]) -> ModelContext:
    """Embeddings for the model (the embed stage's for the default one) and the encoded queries."""
    model = source.model
    if source.tuned_embeddings is not None:
        embeddings_dir = composed_embeddings(default_embeddings, source.tuned_embeddings, cache_dir)
    elif model == params.embed.text_model:
        embeddings_dir = default_embeddings
    else:
        key = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:12]
        embeddings_dir = cache_dir / f"embeddings-{model.kind}-{key}"
        if not embeddings_dir.exists():
            vectors = [name for name in params.index.vectors if name in params.embed.vectors]
            embed_corpus(entries, params.embed.model_copy(update={"text_model": model, "vectors": vectors}),
                         embeddings_dir)
    manifest = load_manifest(embeddings_dir)
    own = encoded_queries(model, split, encoded)
    base = by_query(split, encoded_queries(params.embed.text_model, split, encoded).dense)
    tuned = by_query(split, own.dense)
    return ModelContext(
        name=manifest["text_model"]["name"],
        embeddings_dir=embeddings_dir,
        manifest_hash=manifest_digest(manifest),
        dims=embedding_dims(manifest),
        query_vectors={name: tuned if not source.tuned_vectors or name in source.tuned_vectors else base
                       for name in params.index.vectors},
        query_lexical=own.sparse,
    )


def variant_index(params: Params, variant: Variant, model: ModelContext, entries: list[AnimeEntry],
                  cache_dir: Path, sparse_dir: Path | None = None) -> tuple[Path, BuildReport, list[str]]:
    """Build the variant's collection, or reuse the one built from the same spec and embeddings.

    Variants are always built on the embedded engine (Qdrant Edge): one shard per spec, cached
    side by side, where a server would need one collection and alias per variant.
    """
    index_params = variant.index_params(params.index).model_copy(update={"backend": "edge"})
    spec = collection_spec(index_params, model.dims)
    contents = f"{spec.key()}:{model.manifest_hash}"
    if spec.sparse:  # a re-run sparse stage changes the vectors, not the spec
        contents += f":{content_key([vector.name for vector in spec.sparse], sparse_dir)}"
    key = hashlib.sha256(contents.encode()).hexdigest()[:16]
    directory = cache_dir / "indexes" / key
    if not (directory / "build.json").is_file():
        with atomic_path(directory) as staging:
            report = build_index(index_params, spec, entries, model.embeddings_dir, staging, sparse_dir)
            write_json(staging / "build.json", dataclasses.asdict(report))
    report = BuildReport(**json.loads((directory / "build.json").read_text(encoding="utf-8")))
    return directory / SHARD, report, spec.dense_names


def evaluate_variant(params: Params, variant: Variant, model: ModelContext, split: GoldSplit,
                     entries: list[AnimeEntry], cache_dir: Path, sparse_dir: Path | None = None,
                     sparse_queries: dict[str, dict[str, SparseQuery]] | None = None,
                     ) -> tuple[dict[str, Any], Any, scoring.PerQuery]:
    """Run one variant; returns its result record, its ranx Run and its per-query metric values."""
    settings = params.evaluate
    shard, build, indexed = variant_index(params, variant, model, entries, cache_dir, sparse_dir)
    requests = build_requests(variant.search, split, model.query_vectors, indexed, settings.limit, sparse_queries)
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
                 embeddings_dir: Path, cache_dir: Path, out_dir: Path,
                 sparse_dir: Path | None = None) -> dict[str, Any]:
    """Every variant, then significance of each against the baseline. Writes runs and per-query CSVs."""
    models: dict[ModelSource, ModelContext] = {}
    encoded: dict[TextModelParams, EncodedTexts] = {}
    sparse_queries: dict[str, dict[str, SparseQuery]] = {}
    records, values = {}, {}
    skipped = {}
    views = {False: split, True: split.held_out()}
    for variant in tqdm(experiments.all(), desc="variants", unit="variant"):
        source = model_source(params, variant)
        if isinstance(source, str):
            skipped[variant.name] = source
            continue
        if source not in models:
            models[source] = prepare_model(params, source, embeddings_dir, entries, split, cache_dir, encoded)
        for name in set(variant.search.sparse) - set(sparse_queries):
            vectors = encode_queries(name, [q["text"] for q in split.queries], sparse_dir, params.sparse,
                                     models[source].query_lexical)
            sparse_queries[name] = {q["id"]: vector for q, vector in zip(split.queries, vectors, strict=True)}
        view = views[variant.holdout]
        record, run, values[variant.name] = evaluate_variant(params, variant, models[source], view, entries, cache_dir,
                                                             sparse_dir, sparse_queries)
        records[variant.name] = record | {"holdout": variant.holdout}
        write_trec_run(out_dir / "runs" / f"{variant.name}.trec", run)
        write_per_query_csv(out_dir / "per_query" / f"{variant.name}.csv", list(view.qrels.keys()),
                            values[variant.name], view.categories)
        log.info("%s: %s", variant.name, record["scores"]["all"])
    for reference, members in comparison_families(experiments, values).items():
        view = views[records[reference]["holdout"]]
        groups = scoring.group_positions(list(view.qrels.keys()), view.categories)
        tests = scoring.significance(values[reference], {name: values[name] for name in members}, groups,
                                     params.evaluate.stat_test, params.evaluate.alpha, params.evaluate.correction,
                                     params.seed)
        for name, comparison in tests.items():
            records[name] |= {"compared_to": reference, "vs_baseline": comparison}
    return {"split": params.evaluate.split, "baseline": experiments.baseline.name, "variants": records,
            "skipped": skipped, "stat_test": params.evaluate.stat_test, "alpha": params.evaluate.alpha,
            "correction": params.evaluate.correction}


def comparison_families(experiments: Experiments, evaluated: dict[str, Any]) -> dict[str, list[str]]:
    """{reference variant: the evaluated variants tested against it}; p-values are adjusted per family."""
    families: dict[str, list[str]] = {}
    for variant in experiments.variants:
        reference = experiments.reference_of(variant)
        if reference in evaluated and variant.name in evaluated:
            families.setdefault(reference, []).append(variant.name)
    return families


def write_per_query_csv(path: Path, query_ids: list[str], values: scoring.PerQuery,
                        categories: dict[str, str]) -> None:
    write_csv(path, [{"query_id": query_id, "category": categories[query_id]}
                     | {metric: f"{scores[position]:.6f}" for metric, scores in values.items()}
                     for position, query_id in enumerate(query_ids)])
