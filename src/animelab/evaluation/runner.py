"""Evaluate every variant on the gold split: build or reuse its index, run, score, compare."""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from animelab.corpus.schema import AnimeEntry
from animelab.evaluation import scoring
from animelab.evaluation.experiments import Experiments, Variant, coinciding_categories
from animelab.errors import LabError
from animelab.fields import base_vector
from animelab.evaluation.models import ModelContext, ModelSource, model_source, prepare_model
from animelab.evaluation.requests import Coverage, build_requests
from animelab.evaluation.runs import Executed, execute
from animelab.evaluation.timing import latency_summary, measure, timed_search
from animelab.evaluation.workers import map_in_workers, private_copy
from animelab.encoders.text import EncodedTexts
from animelab.gold.splits import GoldSplit, write_trec_run
from animelab.index.backend import BuildReport, SearchIndex
from animelab.index.build import build_index, open_index
from animelab.index.query import Hit, SearchRequest, SparseQuery, Tuning, VectorQuery, demote_hubs, exact_twin
from animelab.index.spec import CollectionSpec, collection_spec
from animelab.io import atomic_path, write_csv, write_json
from animelab.params import IndexParams, Params, TextModelParams
from animelab.payload import point_table
from animelab.sparse.registry import encode_queries, load_set, sets_key

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VariantIndex:
    params: IndexParams
    directory: Path
    build: BuildReport
    dense_names: list[str]

    def open(self, anime_ids: dict[uuid.UUID, str]) -> SearchIndex:
        return open_index(self.params, self.directory, anime_ids)


def index_directory(params: Params, variant: Variant, model: ModelContext, cache_dir: Path,
                    sparse_dir: Path | None = None) -> tuple[IndexParams, CollectionSpec, Path]:
    """Where the variant's collection is cached: one folder per spec and embeddings.

    Variants are always built on the embedded engine (Qdrant Edge): one shard per spec, cached
    side by side, where a server would need one collection and alias per variant.
    """
    index_params = variant.index_params(params.index).model_copy(update={"backend": "edge"})
    spec = collection_spec(index_params, model.dims)
    contents = f"{spec.key()}:{model.manifest_hash}"
    if spec.sparse:  # a re-run sparse stage changes the vectors, not the spec
        contents += f":{sets_key([vector.name for vector in spec.sparse], sparse_dir)}"
    return index_params, spec, cache_dir / "indexes" / hashlib.sha256(contents.encode()).hexdigest()[:16]


def variant_index(params: Params, variant: Variant, model: ModelContext, entries: list[AnimeEntry],
                  cache_dir: Path, sparse_dir: Path | None = None) -> VariantIndex:
    """Build the variant's collection, or reuse the one built from the same spec and embeddings."""
    index_params, spec, directory = index_directory(params, variant, model, cache_dir, sparse_dir)
    if not (directory / "build.json").is_file():
        with atomic_path(directory) as staging:
            sets = {vector.name: load_set(vector.name, sparse_dir, model.embeddings_dir) for vector in spec.sparse}
            report = build_index(index_params, spec, entries, model.embeddings_dir, staging,
                                 {name: (vectors.ids, vectors.matrix) for name, vectors in sets.items()})
            write_json(staging / "build.json", dataclasses.asdict(report))
    report = BuildReport(**json.loads((directory / "build.json").read_text(encoding="utf-8")))
    return VariantIndex(index_params, directory, report, spec.dense_names)


FIDELITY_K = (10, 100)
# A split's queries identify it across processes (an object's id does not).
SplitKey = tuple[str, ...]


def split_key(split: GoldSplit) -> SplitKey:
    return tuple(q.id for q in split.queries)


@dataclasses.dataclass
class Evaluation:
    """What one evaluation shares across variants: per gold split (dev for the baseline's choice, the
    evaluated one), each model's embeddings and encoded queries, the sparse query vectors, and the exact
    single-vector runs every ANN variant of one model is measured against."""

    params: Params
    entries: list[AnimeEntry]
    embeddings_dir: Path
    cache_dir: Path
    sparse_dir: Path | None
    # The query log a hub_penalty row reads its hub shares off (evaluate.query_bank's split: texts only).
    bank: GoldSplit | None = None
    # Each query's routed vectors (the route stage's routes.json), for `vectors: routed` rows.
    routes: dict[str, list[str]] | None = None
    # In a worker process: its folder of index copies (the engine locks an open shard's log).
    private_indexes: Path | None = None
    models: dict[tuple[ModelSource, SplitKey], ModelContext] = dataclasses.field(default_factory=dict)
    encoded: dict[SplitKey, dict[TextModelParams, EncodedTexts]] = dataclasses.field(default_factory=dict)
    sparse_queries: dict[tuple[str, SplitKey], dict[str, SparseQuery]] = dataclasses.field(default_factory=dict)
    exact_runs: dict[tuple[Any, ...], scoring.Rankings] = dataclasses.field(default_factory=dict)
    hub_shares: dict[tuple[str, str], dict[str, float]] = dataclasses.field(default_factory=dict)
    # What result bias is measured on: each anime's start year and MAL members.
    attributes: dict[str, dict[str, float]] = dataclasses.field(init=False)
    # Point id -> anime id: searches name their hits without reading payload.
    anime_ids: dict[uuid.UUID, str] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.anime_ids = point_table(e.id for e in self.entries)
        self.attributes = {
            "year": {e.id: float(e.start_year) for e in self.entries if e.start_year is not None},
            "members": {e.id: float(e.members) for e in self.entries if e.members is not None}}

    def model(self, source: ModelSource, split: GoldSplit) -> ModelContext:
        key = (source, split_key(split))
        if key not in self.models:
            self.models[key] = prepare_model(self.params, source, self.embeddings_dir, self.entries, split,
                                             self.cache_dir, self.encoded.setdefault(split_key(split), {}))
        return self.models[key]

    def sparse_for(self, names: list[str], split: GoldSplit, model: ModelContext) -> dict[str, dict[str, SparseQuery]]:
        for name in names:
            if (name, split_key(split)) not in self.sparse_queries:
                vectors = encode_queries(name, [q.text for q in split.queries], self.sparse_dir, self.params.sparse,
                                         model.query_lexical)
                self.sparse_queries[name, split_key(split)] = {q.id: v for q, v in
                                                               zip(split.queries, vectors, strict=True)}
        return {name: self.sparse_queries[name, split_key(split)] for name in names}


def single_vector(request: SearchRequest, query: VectorQuery) -> SearchRequest:
    return dataclasses.replace(request, queries=(query,), weights=None)


def fidelity(index: SearchIndex, split: GoldSplit, requests: list[SearchRequest], ranked: scoring.Rankings, limit: int,
             evaluation: Evaluation, model: ModelContext, search_key: str) -> dict[str, dict[str, float]]:
    """Recall@10/@100 against exact search of the same request: the fused list, and each dense vector
    searched alone. Exact search reads the original vectors, so each exact run is made once and shared by
    every variant of the model with the same search (``search_key``: its settings less the ANN knobs)."""
    query_ids = [q.id for q in split.queries]
    fused_key = (model.manifest_hash, search_key, tuple(query_ids), split.restricted_to)
    if fused_key not in evaluation.exact_runs:
        evaluation.exact_runs[fused_key] = execute(index, split, [exact_twin(r) for r in requests], limit,
                                                   "exact").ranked
    result = {"fused": {f"@{k}": scoring.fidelity(ranked, evaluation.exact_runs[fused_key], query_ids, k)
                        for k in FIDELITY_K}}
    dense = dict.fromkeys(q.using for r in requests for q in r.queries if not isinstance(q.vector, SparseQuery))
    for name in dense:
        positions = [i for i, r in enumerate(requests) if any(q.using == name for q in r.queries)]
        view = dataclasses.replace(split, queries=[split.queries[i] for i in positions])
        single = [single_vector(requests[i], next(q for q in requests[i].queries if q.using == name))
                  for i in positions]
        view_ids = [q.id for q in view.queries]
        key = (model.manifest_hash, name, tuple(view_ids), split.restricted_to,
               tuple(r.queries[0].score_threshold for r in single))
        if key not in evaluation.exact_runs:
            evaluation.exact_runs[key] = execute(index, view, [exact_twin(r) for r in single], limit, "exact").ranked
        approximate = execute(index, view, single, limit, name).ranked
        result[name] = {f"@{k}": scoring.fidelity(approximate, evaluation.exact_runs[key], view_ids, k)
                        for k in FIDELITY_K}
    return result


def searched_index(evaluation: Evaluation, variant: Variant, model: ModelContext) -> VariantIndex:
    """The variant's built index as this process searches it (a worker: its own copy)."""
    built = variant_index(evaluation.params, variant, model, evaluation.entries, evaluation.cache_dir,
                          evaluation.sparse_dir)
    if evaluation.private_indexes is not None:
        built = dataclasses.replace(built, directory=private_copy(built.directory, evaluation.private_indexes))
    return built


def variant_requests(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit,
                     split: GoldSplit) -> tuple[VariantIndex, ModelContext, list[SearchRequest]]:
    """The variant's index (built or reused), its model, and one search request per query of ``split``
    (``parent`` or a restricted view of it)."""
    params = evaluation.params
    model = evaluation.model(source, parent)
    built = searched_index(evaluation, variant, model)
    coverage = Coverage(model.coverage, params.evaluate.min_vector_coverage)
    # Hub demotion re-ranks: it needs candidates below the cut.
    depth = params.evaluate.limit * (2 if variant.search.hub_penalty else 1)
    requests = build_requests(variant.search, split, model.query_vectors, built.dense_names, depth,
                              evaluation.sparse_for(variant.search.sparse, parent, model), coverage,
                              evaluation.routes)
    return built, model, requests


def without_penalty(variant: Variant) -> Variant:
    """The row with its hub penalty removed: the search its hub shares are read off."""
    return variant.model_copy(update={"search": variant.search.model_copy(update={"hub_penalty": None})})


def hub_share_key(plain: Variant, built: VariantIndex) -> tuple[str, str]:
    """What hub shares depend on: the index (a worker's copy has the same folder name) and the search without
    the penalty (``plain``)."""
    return built.directory.name, plain.search.model_dump_json()


def hub_shares_of(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit) -> dict[str, float]:
    """A hub-penalty row's shares, for a worker to compute."""
    built = searched_index(evaluation, variant, evaluation.model(source, parent))
    return hub_shares(evaluation, variant, source, built)


def hub_shares(evaluation: Evaluation, variant: Variant, source: ModelSource, built: VariantIndex) -> dict[str, float]:
    """Each anime's share of the query bank's top-10 lists under the variant's search without the penalty:
    what a deployment reads off its query log (query texts only, no judgements)."""
    if evaluation.bank is None:
        raise LabError(f"variant {variant.name} has a hub_penalty, which needs the query bank "
                       f"(evaluate.query_bank's split), but none was given")
    plain = without_penalty(variant)
    key = hub_share_key(plain, built)
    if key not in evaluation.hub_shares:
        _, _, requests = variant_requests(evaluation, plain, source, evaluation.bank, evaluation.bank)
        index = built.open(evaluation.anime_ids)
        try:
            found, _, _ = timed_search(index, requests)
        finally:
            index.close()
        counts = Counter(hit.anime_id for hits in found for hit in hits[:10])
        evaluation.hub_shares[key] = {anime: count / len(found) for anime, count in counts.items()}
    return evaluation.hub_shares[key]


def reranker(evaluation: Evaluation, variant: Variant, source: ModelSource,
             built: VariantIndex) -> Callable[[list[Hit]], list[Hit]] | None:
    """What a row applies to the engine's hits: hub demotion, or nothing."""
    penalty = variant.search.hub_penalty
    if penalty is None:
        return None
    return functools.partial(demote_hubs, shares=hub_shares(evaluation, variant, source, built), penalty=penalty)


def run_variant(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit,
                split: GoldSplit) -> Executed:
    """Only the variant's run on ``split``: no timing, fidelity or bias."""
    built, _, requests = variant_requests(evaluation, variant, source, parent, split)
    rerank = reranker(evaluation, variant, source, built)
    index = built.open(evaluation.anime_ids)
    try:
        executed = execute(index, split, requests, evaluation.params.evaluate.limit, variant.name, rerank)
    finally:
        index.close()
    return executed


def score_variant(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit,
                  split: GoldSplit, metrics: list[str]) -> scoring.PerQuery:
    """Only the per-query ``metrics`` of the variant on ``split``."""
    return scoring.per_query(split.qrels, run_variant(evaluation, variant, source, parent, split).run, metrics)


@dataclasses.dataclass(frozen=True)
class Timing:
    """A row's engine calls timed on a sample of its requests, their rankings, and the resident memory
    its open index added."""

    seconds: list[float]
    ranked: dict[str, list[str]]
    ram_mib: float


def latency_positions(count: int, size: int | None, seed: int) -> list[int]:
    """Which of ``count`` requests are timed: a seeded sample of ``size`` (every one when None or more)."""
    if size is None or size >= count:
        return list(range(count))
    return sorted(np.random.default_rng(seed).choice(count, size, replace=False).tolist())


def timed_sample(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit,
                 split: GoldSplit) -> Timing:
    """Time the variant's searches (re-ranking included) on ``evaluate.latency_queries`` of its requests on
    ``split`` (``parent`` or its held-out view); for the stage's own process, with nothing else running."""
    params = evaluation.params
    built, _, requests = variant_requests(evaluation, variant, source, parent, split)
    rerank = reranker(evaluation, variant, source, built)
    positions = latency_positions(len(requests), params.evaluate.latency_queries, params.seed)
    timed = dataclasses.replace(split, queries=[split.queries[i] for i in positions])
    with measure() as resources:
        index = built.open(evaluation.anime_ids)
        try:
            for request in requests[:50]:  # warm-up: page the index in before timing
                index.search(request)
            executed = execute(index, timed, [requests[i] for i in positions], params.evaluate.limit, variant.name,
                               rerank)
        finally:
            index.close()
    return Timing(executed.seconds, executed.ranked, round(resources.peak_rss_mib - resources.start_rss_mib, 1))


def headline(evaluation: Evaluation, split: GoldSplit, design: scoring.Design, ranked: scoring.Rankings,
             values: scoring.PerQuery) -> dict[str, Any]:
    """What a row and a baseline candidate both report: scores, the primary's CI, the hub rate."""
    settings = evaluation.params.evaluate
    return {"scores": scoring.means(values, design),
            "primary_ci": design.bootstrap(values[settings.primary], scoring.MACRO, settings.bootstrap,
                                           evaluation.params.seed),
            # Over the ranking categories: a filter task's queries ("anime from 2016") share one answer set.
            "hub_rate_at_10": scoring.hub_rate(ranked, design.ranking_ids(list(split.qrels.keys())))}


def scored_variant(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit,
                   split: GoldSplit, design: scoring.Design,
                   timing: Timing) -> tuple[dict[str, Any], scoring.PerQuery, scoring.Rankings]:
    """Run the variant on ``split`` (untimed), check it against the timed sample's lists, and score it:
    its result record, per-query metric values and rankings."""
    params = evaluation.params
    settings = params.evaluate
    built, model, requests = variant_requests(evaluation, variant, source, parent, split)
    indexed, build = built.dense_names, built.build
    approximate = not variant.search.exact
    rerank = reranker(evaluation, variant, source, built)  # before opening: hub shares open the same index
    index = built.open(evaluation.anime_ids)
    try:
        executed = execute(index, split, requests, settings.limit, variant.name, rerank)
        # Fidelity is the engine's: the lists before any re-ranking, against the same request done exactly.
        search_key = f"{variant.search.model_dump_json(exclude=set(Tuning.model_fields))}:{','.join(indexed)}"
        fidelities = (fidelity(index, split, requests, executed.engine_ranked, settings.limit, evaluation, model,
                               search_key) if approximate else {})
    finally:
        index.close()
    ranked = executed.ranked
    differing = [query for query, timed in timing.ranked.items() if ranked[query] != timed]
    if differing:
        raise LabError(f"{variant.name}: the timed and the full run returned different lists for "
                       f"{len(differing)} of {len(timing.ranked)} queries (first: {differing[0]}): search is not "
                       "repeatable on this index")
    values = scoring.per_query(split.qrels, executed.run, settings.metrics)
    searched = sorted({q.using for r in requests for q in r.queries if not isinstance(q.vector, SparseQuery)})
    bias_groups = [scoring.MACRO, *sorted(set(design.categories.tolist()))]
    judged = split.judged
    record = {
        "name": variant.name,
        "axis": variant.axis,
        "class": variant.row_class,
        "coincides_with": coinciding_categories(variant.search),
        "description": variant.description,
        "model": model.name,
        "settings": variant.model_dump(mode="json", by_alias=True),
        **headline(evaluation, split, design, ranked, values),
        "hard_negative_intrusion_at_10": scoring.intrusion_rate(ranked, split.hard_negatives),
        "fidelity": fidelities,
        "recall_vs_exact_at_10": fidelities["fused"]["@10"] if approximate else 1.0,
        "latency": latency_summary(timing.seconds),
        "latency_queries": len(timing.seconds),
        "build_seconds": round(build.seconds, 2),
        "disk_mib": round(build.disk_bytes / 2**20, 1),
        "ram_mib": timing.ram_mib,
        "indexed_vectors": indexed,
        # Each searched dense list's corpus coverage (an extra set's vector: that of its base vector).
        "vector_coverage": {name: model.coverage.get(base_vector(name)) for name in searched},
        "bias": {name: scoring.result_bias(ranked, judged, values_by_anime, design, bias_groups, settings.bootstrap,
                                           params.seed)
                 for name, values_by_anime in evaluation.attributes.items()},
        "queries": len(split.queries),
    }
    return record, values, ranked


def build_index_of(evaluation: Evaluation, variant: Variant, source: ModelSource, parent: GoldSplit) -> None:
    variant_index(evaluation.params, variant, evaluation.model(source, parent), evaluation.entries,
                  evaluation.cache_dir, evaluation.sparse_dir)


def prepare_rows(evaluation: Evaluation, rows: list[tuple[Variant, ModelSource, GoldSplit]], workers: int) -> None:
    """Encode the rows' queries here (their split's, and the query bank's for a hub penalty), so that workers
    receive them; then build every missing index, one task per index, and compute the hub-penalty rows' shares,
    one task per index and search, over ``workers`` processes (in the timed pass they left a core idle)."""
    missing = {}
    for variant, source, parent in rows:
        model = evaluation.model(source, parent)
        if variant.search.hub_penalty and evaluation.bank is not None:
            evaluation.model(source, evaluation.bank)
        *_, directory = index_directory(evaluation.params, variant, model, evaluation.cache_dir, evaluation.sparse_dir)
        if not (directory / "build.json").is_file():
            missing.setdefault(directory, (variant, source, parent))
    map_in_workers(evaluation, build_index_of, list(missing.values()), workers)
    if evaluation.bank is None:  # a hub-penalty row says so when it runs
        return
    penalised = {}
    for variant, source, parent in rows:
        if variant.search.hub_penalty:
            key = hub_share_key(without_penalty(variant),
                                searched_index(evaluation, variant, evaluation.model(source, parent)))
            if key not in evaluation.hub_shares:
                penalised.setdefault(key, (variant, source, parent))
    evaluation.hub_shares |= dict(zip(penalised, map_in_workers(evaluation, hub_shares_of, list(penalised.values()),
                                                               workers), strict=True))


def check_variants(params: Params, experiments: Experiments) -> dict[str, ModelSource | str]:
    """Before any work: every variant's vectors are indexed and every model it names can load.
    Returns each variant's model source, or why it is skipped."""
    defined = [*experiments.candidates, *experiments.variants]
    for variant in defined:
        if isinstance(variant.search.vectors, list):
            missing = [name for name in variant.search.vectors if name not in params.index.vectors]
            if missing and variant.search.dense:
                raise LabError(f"{params.evaluate.experiments}: variant {variant.name} searches {missing}, "
                               f"which index.vectors does not index")
    return {variant.name: model_source(params, variant) for variant in defined}


def choose_baseline(evaluation: Evaluation, experiments: Experiments, sources: dict[str, ModelSource | str],
                    tuning: GoldSplit) -> tuple[Variant, dict[str, Any]]:
    """The candidate with the best primary score on the tuning split (the first listed on a tie)."""
    design = scoring.Design.of_split(tuning, evaluation.params.evaluate)
    primary = evaluation.params.evaluate.primary
    for candidate in experiments.candidates:
        if isinstance(sources[candidate.name], str):
            raise LabError(f"baseline candidate {candidate.name} cannot run: {sources[candidate.name]}")
    rows = [(candidate, sources[candidate.name], tuning, tuning, design) for candidate in experiments.candidates]
    workers = evaluation.params.evaluate.workers
    prepare_rows(evaluation, [row[:3] for row in rows], workers)
    log.info("baseline candidates: %d on %s", len(rows), experiments.choose_on)
    table = dict(zip([candidate.name for candidate in experiments.candidates],
                     map_in_workers(evaluation, candidate_summary, rows, workers), strict=True))
    best = max(experiments.candidates, key=lambda c: table[c.name]["scores"][scoring.MACRO][primary])
    return best, {"split": experiments.choose_on, "queries": len(tuning.queries), "chosen": best.name,
                  "candidates": table}


def candidate_summary(evaluation: Evaluation, candidate: Variant, source: ModelSource, parent: GoldSplit,
                      split: GoldSplit, design: scoring.Design) -> dict[str, Any]:
    """A baseline candidate's scores on the tuning split (untimed: the choice reads quality only)."""
    executed = run_variant(evaluation, candidate, source, parent, split)
    values = scoring.per_query(split.qrels, executed.run, evaluation.params.evaluate.metrics)
    return {"description": candidate.description} | headline(evaluation, split, design, executed.ranked, values)


def evaluate_all(params: Params, experiments: Experiments, split: GoldSplit, entries: list[AnimeEntry],
                 embeddings_dir: Path, cache_dir: Path, out_dir: Path, sparse_dir: Path | None = None,
                 tuning: GoldSplit | None = None, bank: GoldSplit | None = None,
                 routes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The baseline (chosen on ``tuning`` when the experiments offer candidates), every variant, then the
    declared families of tests. Writes runs and per-query CSVs."""
    settings = params.evaluate
    sources = check_variants(params, experiments)
    evaluation = Evaluation(params, entries, embeddings_dir, cache_dir, sparse_dir, bank, routes)
    selection = None
    if experiments.choose_on is not None:
        if tuning is None:
            raise LabError(f"the baseline is chosen on the {experiments.choose_on} split, which was not given")
        chosen, selection = choose_baseline(evaluation, experiments, sources, tuning)
        experiments = experiments.with_baseline(chosen)
        sources[experiments.baseline.name] = sources[chosen.name]
        # The on_baseline rows now search the chosen baseline's lists (another set's vectors included).
        sources |= {v.name: model_source(params, v) for v in experiments.variants if v.on_baseline}
    records, values = {}, {}
    skipped = {}
    views = {False: split, True: split.held_out(settings.split)}
    designs = {holdout: scoring.Design.of_split(view, settings) for holdout, view in views.items()}
    rows = []
    for variant in experiments.all():
        if isinstance(sources[variant.name], str):
            skipped[variant.name] = sources[variant.name]
        else:
            rows.append((variant, sources[variant.name], split, views[variant.holdout], designs[variant.holdout]))
    prepare_rows(evaluation, [row[:3] for row in rows], settings.workers)
    # Timed here, one row after another, with no worker alive; then run in full and scored over the workers.
    timings = [timed_sample(evaluation, *row[:4]) for row in tqdm(rows, desc="timed samples", unit="variant")]
    scored = map_in_workers(evaluation, scored_variant,
                            [(*row, timing) for row, timing in zip(rows, timings, strict=True)], settings.workers)
    for (variant, _, _, view, _), (record, values[variant.name], ranked) in zip(rows, scored, strict=True):
        records[variant.name] = record | {"holdout": variant.holdout}
        write_trec_run(out_dir / "runs" / f"{variant.name}.trec", ranked, variant.name)
        write_per_query_csv(out_dir / "per_query" / f"{variant.name}.csv", list(view.qrels.keys()),
                            values[variant.name], view.categories)
        log.info("%s: %s", variant.name, record["scores"][scoring.MACRO])
    test_args = (settings.stat_test, settings.alpha, settings.correction, params.seed)
    # statsmodels' Holm runs a full gc.collect() per family; frozen, the long-lived runs and scores are not rescanned.
    gc.freeze()
    for reference, members in comparison_families(experiments, values).items():
        holdout = records[reference]["holdout"]
        groups = [scoring.MACRO, *sorted(set(designs[holdout].categories.tolist()))]
        tests = scoring.significance(values[reference], {name: values[name] for name in members}, designs[holdout],
                                     groups, *test_args)
        for name, comparison in tests.items():
            records[name] |= {"compared_to": reference, "vs_baseline": comparison}
    best = scoring.top_deployable(records, settings.primary, settings.pairwise_top)
    pairs = scoring.pairwise({name: values[name] for name in best}, designs[False], settings.primary, *test_args)
    gc.unfreeze()
    return {"split": settings.split, "baseline": experiments.baseline.name, "baseline_selection": selection,
            "primary": settings.primary, "ranking_categories": list(designs[False].ranking),
            "query_understanding": settings.query_understanding, "variants": records, "pairwise": pairs,
            "skipped": skipped, "stat_test": settings.stat_test, "alpha": settings.alpha,
            "correction": settings.correction, "bootstrap": settings.bootstrap}


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
