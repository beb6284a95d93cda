"""Search settings + encoded query -> one engine-neutral search request: the evaluation's and the CLI's."""

from __future__ import annotations

from dataclasses import dataclass

from animelab.evaluation.experiments import SearchSettings
from animelab.gold.splits import GoldSplit
from animelab.index.query import FilterSpec, SearchRequest, SparseQuery, VectorQuery


@dataclass(frozen=True)
class Coverage:
    """Each dense vector's share of the corpus (embeddings manifest) and the share a vector needs to be
    ``covered`` (``evaluate.min_vector_coverage``)."""

    shares: dict[str, float]
    minimum: float

    def covered(self, name: str) -> bool:
        return self.shares.get(name, 0.0) >= self.minimum


def query_vectors_for(settings: SearchSettings, hint: list[str], indexed: list[str],
                      coverage: Coverage | None = None, routed: list[str] | None = None) -> list[str]:
    if settings.vectors == "all":
        return list(indexed)
    if settings.vectors == "covered":
        if coverage is None:
            raise ValueError("vectors: covered needs the vectors' corpus coverage")
        return [name for name in indexed if coverage.covered(name)] or list(indexed)
    if settings.vectors == "routed":
        if routed is None:
            raise ValueError("vectors: routed needs the router's routes (the route stage's routes.json)")
        wanted = routed
    else:
        wanted = hint if settings.vectors == "hint" else settings.vectors
    chosen = [name for name in wanted if name in indexed]
    return chosen or list(indexed)


def search_request(settings: SearchSettings, dense: dict[str, list[float]], sparse: dict[str, SparseQuery],
                   limit: int, filter: FilterSpec | None = None, weights: tuple[float, ...] | None = None,
                   with_payload: tuple[str, ...] = ("anime_id",), coverage: Coverage | None = None) -> SearchRequest:
    """One prefetch per dense then sparse vector, fused as the settings say; ``weights`` (one per vector)
    override the settings' own (priority, coverage or sparse weights). A dense prefetch's score threshold
    is the settings' ``low_coverage_threshold`` for a vector below the coverage minimum, else ``score_threshold``."""
    def threshold(name: str) -> float | None:
        if name not in dense:
            return None
        if name in settings.extra_vectors:
            return settings.extra_threshold(name)
        rare = coverage is not None and not coverage.covered(name)
        return settings.low_coverage_threshold if rare else settings.score_threshold

    queries = tuple(VectorQuery(name, vector, settings.prefetch_limit, threshold(name))
                    for name, vector in (dense | sparse).items())
    shares = coverage.shares if coverage is not None else None
    return SearchRequest(queries, limit=limit, fusion=settings.fusion, rrf_k=settings.rrf_k,
                         weights=weights or settings.weights_for([*dense, *sparse], shares), filter=filter,
                         tuning=settings.tuning, with_payload=with_payload)


def build_requests(settings: SearchSettings, split: GoldSplit, encoded: dict[str, dict[str, list[float]]],
                   indexed: list[str], limit: int, sparse_queries: dict[str, dict[str, SparseQuery]] | None = None,
                   coverage: Coverage | None = None, routes: dict[str, list[str]] | None = None) -> list[SearchRequest]:
    """One request per gold query; query-by-example sources are fetched extra and dropped later.
    ``encoded``: per dense vector, every query's vector (a tuned model may encode some vectors only).
    ``sparse_queries``: per sparse set the settings name, the query vector of every query.
    ``routes``: per query, the vectors the router chose (``vectors: routed``)."""
    restriction = FilterSpec(anime_id_any=sorted(split.restricted_to)) if split.restricted_to is not None else None
    own = [name for name in indexed if name not in settings.extra_vectors]
    requests = []
    for query in split.queries:
        routed = routes.get(query.id) if routes is not None else None
        names = ([*query_vectors_for(settings, query.vectors, own, coverage, routed), *settings.extra_vectors]
                 if settings.dense else [])
        requests.append(search_request(settings, {name: encoded[name][query.id] for name in names},
                                       {name: sparse_queries[name][query.id] for name in settings.sparse},
                                       limit + len(query.exclude), restriction, coverage=coverage))
    return requests
