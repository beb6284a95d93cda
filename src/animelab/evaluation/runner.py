"""Evaluate every variant on the gold split: build or reuse its index, run, score, compare."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from tqdm import tqdm

from animelab.corpus.schema import AnimeEntry
from animelab.evaluation import scoring
from animelab.evaluation.experiments import Experiments, Variant
from animelab.errors import LabError
from animelab.evaluation.models import ModelContext, ModelSource, model_source, prepare_model
from animelab.evaluation.requests import build_requests
from animelab.evaluation.runs import execute, write_trec_run
from animelab.evaluation.timing import latency_summary, measure
from animelab.encoders.text import EncodedTexts
from animelab.gold.splits import GoldSplit
from animelab.index.backend import BuildReport, SearchIndex
from animelab.index.build import build_index, open_index
from animelab.index.query import SparseQuery, exact_twin
from animelab.index.spec import collection_spec
from animelab.io import atomic_path, write_csv, write_json
from animelab.params import IndexParams, Params, TextModelParams
from animelab.sparse.registry import encode_queries, load_set, sets_key

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VariantIndex:
    params: IndexParams
    directory: Path
    build: BuildReport
    dense_names: list[str]

    def open(self) -> SearchIndex:
        return open_index(self.params, self.directory)


def variant_index(params: Params, variant: Variant, model: ModelContext, entries: list[AnimeEntry],
                  cache_dir: Path, sparse_dir: Path | None = None) -> VariantIndex:
    """Build the variant's collection, or reuse the one built from the same spec and embeddings.

    Variants are always built on the embedded engine (Qdrant Edge): one shard per spec, cached
    side by side, where a server would need one collection and alias per variant.
    """
    index_params = variant.index_params(params.index).model_copy(update={"backend": "edge"})
    spec = collection_spec(index_params, model.dims)
    contents = f"{spec.key()}:{model.manifest_hash}"
    if spec.sparse:  # a re-run sparse stage changes the vectors, not the spec
        contents += f":{sets_key([vector.name for vector in spec.sparse], sparse_dir)}"
    key = hashlib.sha256(contents.encode()).hexdigest()[:16]
    directory = cache_dir / "indexes" / key
    if not (directory / "build.json").is_file():
        with atomic_path(directory) as staging:
            sets = {vector.name: load_set(vector.name, sparse_dir, model.embeddings_dir) for vector in spec.sparse}
            report = build_index(index_params, spec, entries, model.embeddings_dir, staging,
                                 {name: (vectors.ids, vectors.matrix) for name, vectors in sets.items()})
            write_json(staging / "build.json", dataclasses.asdict(report))
    report = BuildReport(**json.loads((directory / "build.json").read_text(encoding="utf-8")))
    return VariantIndex(index_params, directory, report, spec.dense_names)


def evaluate_variant(params: Params, variant: Variant, model: ModelContext, split: GoldSplit,
                     entries: list[AnimeEntry], cache_dir: Path, sparse_dir: Path | None = None,
                     sparse_queries: dict[str, dict[str, SparseQuery]] | None = None,
                     ) -> tuple[dict[str, Any], Any, scoring.PerQuery]:
    """Run one variant; returns its result record, its ranx Run and its per-query metric values."""
    settings = params.evaluate
    built = variant_index(params, variant, model, entries, cache_dir, sparse_dir)
    indexed, build = built.dense_names, built.build
    requests = build_requests(variant.search, split, model.query_vectors, indexed, settings.limit, sparse_queries)
    with measure() as resources:
        index = built.open()
        for request in requests[:50]:  # warm-up: page the index in before timing
            index.search(request)
        run, seconds = execute(index, split, requests, settings.limit, variant.name)
        exact_run = None
        if not variant.search.exact:
            exact_run, _ = execute(index, split, [exact_twin(r) for r in requests], settings.limit, "exact")
        index.close()
    query_ids = [q.id for q in split.queries]
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


def check_variants(params: Params, experiments: Experiments) -> dict[str, ModelSource | str]:
    """Before any work: every variant's vectors are indexed and every model it names can load.
    Returns each variant's model source, or why it is skipped."""
    for variant in experiments.all():
        if isinstance(variant.search.vectors, list):
            missing = [name for name in variant.search.vectors if name not in params.index.vectors]
            if missing and variant.search.dense:
                raise LabError(f"{params.evaluate.experiments}: variant {variant.name} searches {missing}, "
                               f"which index.vectors does not index")
    return {variant.name: model_source(params, variant) for variant in experiments.all()}


def evaluate_all(params: Params, experiments: Experiments, split: GoldSplit, entries: list[AnimeEntry],
                 embeddings_dir: Path, cache_dir: Path, out_dir: Path,
                 sparse_dir: Path | None = None) -> dict[str, Any]:
    """Every variant, then significance of each against the baseline. Writes runs and per-query CSVs."""
    sources = check_variants(params, experiments)
    models: dict[ModelSource, ModelContext] = {}
    encoded: dict[TextModelParams, EncodedTexts] = {}
    sparse_queries: dict[str, dict[str, SparseQuery]] = {}
    records, values = {}, {}
    skipped = {}
    views = {False: split, True: split.held_out(params.evaluate.split)}
    for variant in tqdm(experiments.all(), desc="variants", unit="variant"):
        source = sources[variant.name]
        if isinstance(source, str):
            skipped[variant.name] = source
            continue
        if source not in models:
            models[source] = prepare_model(params, source, embeddings_dir, entries, split, cache_dir, encoded)
        for name in set(variant.search.sparse) - set(sparse_queries):
            vectors = encode_queries(name, [q.text for q in split.queries], sparse_dir, params.sparse,
                                     models[source].query_lexical)
            sparse_queries[name] = {q.id: vector for q, vector in zip(split.queries, vectors, strict=True)}
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
